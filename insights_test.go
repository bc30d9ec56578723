package cairn_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

func TestIntervalTruncate(t *testing.T) {
	at := time.Date(2026, 12, 3, 17, 45, 12, 5e6, time.UTC) // a Thursday
	cases := []struct {
		iv   cairn.Interval
		want time.Time
	}{
		{cairn.IntervalHour, time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)},
		{cairn.IntervalDay, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		{cairn.IntervalWeek, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{cairn.IntervalMonth, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(string(c.iv), func(t *testing.T) {
			if got := c.iv.Truncate(at); !got.Equal(c.want) {
				t.Errorf("Truncate = %s, want %s", got, c.want)
			}
			// A Monday is the start of its own week; a Sunday belongs to the
			// week of the Monday before.
			if got := c.iv.Truncate(c.want); !got.Equal(c.want) {
				t.Errorf("Truncate(start) = %s, want %s", got, c.want)
			}
		})
	}
	sunday := time.Date(2026, 12, 6, 23, 59, 0, 0, time.UTC)
	if got := cairn.IntervalWeek.Truncate(sunday); !got.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("week of Sunday %s = %s, want Monday 2026-11-30", sunday, got)
	}
}

func TestIntervalBucketsAndIndex(t *testing.T) {
	from := time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC)
	to := time.Date(2027, 2, 2, 1, 0, 0, 0, time.UTC)
	for _, iv := range []cairn.Interval{cairn.IntervalHour, cairn.IntervalDay, cairn.IntervalWeek, cairn.IntervalMonth} {
		bs := iv.Buckets(from, to)
		for i, b := range bs {
			if got := iv.Index(from, b); got != i {
				t.Fatalf("%s: Index(bucket %d = %s) = %d", iv, i, b, got)
			}
			if got := iv.Index(from, b.Add(-time.Millisecond)); got != i-1 {
				t.Fatalf("%s: Index(just before bucket %d) = %d", iv, i, got)
			}
		}
		if got := iv.Index(from, to); got != len(bs)-1 {
			t.Errorf("%s: Index(to) = %d, want %d", iv, got, len(bs)-1)
		}
	}
	if n := len(cairn.IntervalMonth.Buckets(from, to)); n != 4 {
		t.Errorf("months: %d buckets, want 4 (Nov, Dec, Jan, Feb)", n)
	}
}

func TestInsightQueryValidate(t *testing.T) {
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(48 * time.Hour)
	steps := func(n int) []cairn.FunnelStep {
		s := make([]cairn.FunnelStep, n)
		for i := range s {
			s[i].Type = "page_view"
		}
		return s
	}
	cases := []struct {
		name string
		err  error
		msg  string // substring of the message; "" for no error
	}{
		{"TrendsOK", (&cairn.TrendsQuery{From: from, To: to, Interval: cairn.IntervalHour}).Validate(), ""},
		{"ErrUnknownInterval", (&cairn.TrendsQuery{From: from, To: to, Interval: "year"}).Validate(), `not "year"`},
		{"ErrFromAfterTo", (&cairn.TrendsQuery{From: to, To: from, Interval: cairn.IntervalDay}).Validate(), "is after to"},
		{"ErrNoRange", (&cairn.TrendsQuery{Interval: cairn.IntervalDay}).Validate(), "from and to are required"},
		{"ErrTooManyBuckets", (&cairn.TrendsQuery{From: from, To: from.AddDate(1, 0, 0), Interval: cairn.IntervalHour}).Validate(), "more than"},
		{"ErrUsersHour", (&cairn.UsersQuery{From: from, To: to, Interval: cairn.IntervalHour}).Validate(), "interval must be one of day, week, month"},
		{"FunnelOK", (&cairn.FunnelQuery{Steps: steps(10), Within: time.Hour, From: from, To: to}).Validate(), ""},
		{"ErrTooManySteps", (&cairn.FunnelQuery{Steps: steps(11), Within: time.Hour, From: from, To: to}).Validate(), "at most 10 steps"},
		{"ErrNoSteps", (&cairn.FunnelQuery{Within: time.Hour, From: from, To: to}).Validate(), "at least one step"},
		{"ErrWindow", (&cairn.FunnelQuery{Steps: steps(2), From: from, To: to}).Validate(), "within must be a positive duration"},
		{"ErrNegativeWindow", (&cairn.FunnelQuery{Steps: steps(2), Within: -time.Second, From: from, To: to}).Validate(), "within must be a positive duration"},
		{"ErrStepType", (&cairn.FunnelQuery{Steps: []cairn.FunnelStep{{}}, Within: time.Hour, From: from, To: to}).Validate(), "step 1 has no type"},
		{"ErrRetentionMonth", (&cairn.RetentionQuery{From: from, To: to, Interval: cairn.IntervalMonth}).Validate(), "interval must be one of day, week"},
		{"ErrTopField", (&cairn.TopQuery{From: from, To: to, Limit: 10}).Validate(), "field is required"},
		{"ErrTopLimit", (&cairn.TopQuery{Field: "url", From: from, To: to, Limit: 101}).Validate(), "limit must be between 1 and 100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.msg == "" {
				if c.err != nil {
					t.Fatalf("got %v, want nil", c.err)
				}
				return
			}
			if cairn.ErrorCode(c.err) != cairn.EINVALID || !strings.Contains(cairn.ErrorMessage(c.err), c.msg) {
				t.Errorf("got %v, want EINVALID containing %q", c.err, c.msg)
			}
		})
	}
}

func TestPayloadValue(t *testing.T) {
	cases := []struct {
		payload, field, want string
		ok                   bool
	}{
		{`{"url":"/pricing"}`, "url", "/pricing", true},
		{`{"n":42}`, "n", "42", true},
		{`{"ok":true,"o":{"a": 1}}`, "o", `{"a":1}`, true},
		{`{"u\u0072l":"/x"}`, "url", "/x", true},
		{`{"url":"/x"}`, "path", "", false},
		{`[1]`, "url", "", false},
		{``, "url", "", false},
	}
	for _, c := range cases {
		got, ok := cairn.PayloadValue([]byte(c.payload), c.field)
		if got != c.want || ok != c.ok {
			t.Errorf("PayloadValue(%s, %s) = %q, %v; want %q, %v", c.payload, c.field, got, ok, c.want, c.ok)
		}
	}
}

func TestDecodeBinaryKey(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC)
	for _, e := range []cairn.Event{
		{EventID: "e1", UserID: "u", SessionID: "s", Type: "page_view", Payload: []byte(`{"url":"/"}`), OccurredAt: at, ReceivedAt: at},
		{EventID: "e2", UserID: "u", Type: "purchase", SourceID: "src", AnonymousID: "a", OccurredAt: at.Add(-time.Hour), ReceivedAt: at},
	} {
		b := e.AppendBinary(nil)
		id, typ, ms, ok := cairn.DecodeBinaryKey(b)
		if !ok || string(id) != e.EventID || string(typ) != e.Type || ms != e.OccurredAt.UnixMilli() {
			t.Errorf("DecodeBinaryKey(%s) = %q %q %d %v", e.EventID, id, typ, ms, ok)
		}
		// Everything up to occurredAt (the fields before it and the time
		// itself) must be there.
		tail := len(binary.AppendVarint(nil, e.ReceivedAt.UnixMilli()))
		if e.SourceID != "" || e.AnonymousID != "" {
			tail += 2 + len(e.SourceID) + len(e.AnonymousID)
		}
		for n := range len(b) - tail {
			if _, _, _, ok := cairn.DecodeBinaryKey(b[:n]); ok {
				t.Errorf("DecodeBinaryKey accepts %d of %d bytes", n, len(b))
			}
		}
	}
}

func TestFormatWindow(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Minute: "30m", 45 * time.Second: "45s",
		time.Hour + time.Second: "1h0m1s", 7 * 24 * time.Hour: "7d", 36 * time.Hour: "36h", 1500 * time.Millisecond: "1.5s",
	} {
		if got := cairn.FormatWindow(d); got != want {
			t.Errorf("FormatWindow(%s) = %q, want %q", d, got, want)
		}
		if back, err := cairn.ParseWindow(want); err != nil || back != d {
			t.Errorf("ParseWindow(%q) = %s, %v, want %s", want, back, err, d)
		}
	}
	for _, bad := range []string{"soon", "", "0d", "-1d", "3651d", "7days"} {
		if _, err := cairn.ParseWindow(bad); cairn.ErrorCode(err) != cairn.EINVALID {
			t.Errorf("ParseWindow(%q): %v, want EINVALID", bad, err)
		}
	}
}
