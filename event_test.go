package cairn_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

var now = time.Date(2025, 12, 15, 10, 30, 0, 123e6, time.UTC)

func rules() cairn.EventRules { return cairn.NewEventRules(nil, 24*time.Hour) }

func TestDecodeEventValid(t *testing.T) {
	cases := []struct {
		name  string
		input string
		check func(t *testing.T, e cairn.Event)
	}{
		{"Minimal", `{"userId":"u","sessionId":"s","type":"page_view"}`, func(t *testing.T, e cairn.Event) {
			if string(e.Payload) != "{}" || !e.OccurredAt.Equal(now.Truncate(time.Millisecond)) || !e.ReceivedAt.Equal(e.OccurredAt) || e.EventID != "" {
				t.Errorf("defaults wrong: %+v", e)
			}
		}},
		{"TrimsIDs", `{"userId":"  u1 ","sessionId":"\ts\n","type":"purchase"}`, func(t *testing.T, e cairn.Event) {
			if e.UserID != "u1" || e.SessionID != "s" {
				t.Errorf("not trimmed: %q %q", e.UserID, e.SessionID)
			}
		}},
		{"ISODate", `{"userId":"u","sessionId":"s","type":"search","occurredAt":"2025-12-15T10:30:00+02:00"}`, func(t *testing.T, e cairn.Event) {
			if want := time.Date(2025, 12, 15, 8, 30, 0, 0, time.UTC); !e.OccurredAt.Equal(want) || e.OccurredAt.Location() != time.UTC {
				t.Errorf("occurredAt = %v", e.OccurredAt)
			}
		}},
		{"FractionTruncatedToMillis", `{"userId":"u","sessionId":"s","type":"search","occurredAt":"2025-12-15T10:30:00.123456Z"}`, func(t *testing.T, e cairn.Event) {
			if e.OccurredAt.Nanosecond() != 123e6 {
				t.Errorf("occurredAt = %v", e.OccurredAt)
			}
		}},
		{"DateOnly", `{"userId":"u","sessionId":"s","type":"search","occurredAt":"2025-12-14"}`, func(t *testing.T, e cairn.Event) {
			if !e.OccurredAt.Equal(time.Date(2025, 12, 14, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("occurredAt = %v", e.OccurredAt)
			}
		}},
		{"EpochMillis", `{"userId":"u","sessionId":"s","type":"search","occurredAt":1765794600000}`, func(t *testing.T, e cairn.Event) {
			if e.OccurredAt.UnixMilli() != 1765794600000 {
				t.Errorf("occurredAt = %v", e.OccurredAt)
			}
		}},
		{"ClientEventID", `{"userId":"u","sessionId":"s","type":"video_play","eventId":"evt_01:A-b.c"}`, func(t *testing.T, e cairn.Event) {
			if e.EventID != "evt_01:A-b.c" {
				t.Errorf("eventId = %q", e.EventID)
			}
		}},
		{"UnknownFieldsIgnored", `{"userId":"u","sessionId":"s","type":"video_pause","extra":{"x":1},"receivedAt":"1999-01-01T00:00:00Z"}`, func(t *testing.T, e cairn.Event) {
			if !e.ReceivedAt.Equal(now.Truncate(time.Millisecond)) {
				t.Errorf("receivedAt must be the server's: %v", e.ReceivedAt)
			}
		}},
		{"PayloadCompacted", `{"userId":"u","sessionId":"s","type":"form_submit","payload":{ "a" : [1, 2] , "b":{"c":null}}}`, func(t *testing.T, e cairn.Event) {
			if string(e.Payload) != `{"a":[1,2],"b":{"c":null}}` {
				t.Errorf("payload = %s", e.Payload)
			}
		}},
		{"NullPayloadDefaults", `{"userId":"u","sessionId":"s","type":"add_to_cart","payload":null,"occurredAt":null,"eventId":null}`, func(t *testing.T, e cairn.Event) {
			if string(e.Payload) != "{}" || e.EventID != "" {
				t.Errorf("got %+v", e)
			}
		}},
		{"FutureWithinLimit", `{"userId":"u","sessionId":"s","type":"remove_from_cart","occurredAt":"2025-12-16T10:00:00Z"}`, func(t *testing.T, e cairn.Event) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, errs := cairn.DecodeEvent([]byte(tc.input), 0, now, rules())
			if errs != nil {
				t.Fatalf("unexpected errors: %+v", errs)
			}
			tc.check(t, e)
		})
	}
}

func TestDecodeEventInvalid(t *testing.T) {
	long := strings.Repeat("x", 257)
	cases := []struct {
		name   string
		input  string
		fields []string
	}{
		{"NotAnObject", `[1]`, []string{""}},
		{"Malformed", `{"userId":`, []string{""}},
		{"MissingAll", `{}`, []string{"userId", "sessionId", "type"}},
		{"EmptyUserID", `{"userId":"  ","sessionId":"s","type":"page_view"}`, []string{"userId"}},
		{"UserIDNotString", `{"userId":12,"sessionId":"s","type":"page_view"}`, []string{"userId"}},
		{"UserIDTooLong", `{"userId":"` + long + `","sessionId":"s","type":"page_view"}`, []string{"userId"}},
		{"SessionIDNull", `{"userId":"u","sessionId":null,"type":"page_view"}`, []string{"sessionId"}},
		{"UnknownType", `{"userId":"u","sessionId":"s","type":"PAGE_VIEW"}`, []string{"type"}},
		{"TypeNotString", `{"userId":"u","sessionId":"s","type":["page_view"]}`, []string{"type"}},
		{"PayloadArray", `{"userId":"u","sessionId":"s","type":"page_view","payload":[1]}`, []string{"payload"}},
		{"PayloadString", `{"userId":"u","sessionId":"s","type":"page_view","payload":"x"}`, []string{"payload"}},
		{"BadDate", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":"yesterday"}`, []string{"occurredAt"}},
		{"DateBool", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":true}`, []string{"occurredAt"}},
		{"EpochFraction", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":1.5}`, []string{"occurredAt"}},
		{"EpochNegative", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":-1}`, []string{"occurredAt"}},
		{"TooFarInFuture", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":"2025-12-17T10:00:00Z"}`, []string{"occurredAt"}},
		{"Before1970", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":"1969-12-31T23:59:59Z"}`, []string{"occurredAt"}},
		{"EventIDBadChars", `{"userId":"u","sessionId":"s","type":"page_view","eventId":"a b"}`, []string{"eventId"}},
		{"EventIDEmpty", `{"userId":"u","sessionId":"s","type":"page_view","eventId":""}`, []string{"eventId"}},
		{"EventIDTooLong", `{"userId":"u","sessionId":"s","type":"page_view","eventId":"` + strings.Repeat("a", 129) + `"}`, []string{"eventId"}},
		{"EventIDNumber", `{"userId":"u","sessionId":"s","type":"page_view","eventId":7}`, []string{"eventId"}},
		{"Several", `{"userId":"","sessionId":"s","type":"x","payload":1}`, []string{"userId", "type", "payload"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := cairn.DecodeEvent([]byte(tc.input), 3, now, rules())
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
				if e.Index != 3 || e.Message == "" {
					t.Errorf("bad FieldError %+v", e)
				}
			}
			if !reflect.DeepEqual(got, tc.fields) {
				t.Fatalf("fields = %q, want %q (errors %+v)", got, tc.fields, errs)
			}
		})
	}
}

func TestCustomEventTypes(t *testing.T) {
	r := cairn.NewEventRules([]string{"signup"}, time.Hour)
	if _, errs := cairn.DecodeEvent([]byte(`{"userId":"u","sessionId":"s","type":"signup"}`), 0, now, r); errs != nil {
		t.Fatalf("custom type refused: %v", errs)
	}
	if _, errs := cairn.DecodeEvent([]byte(`{"userId":"u","sessionId":"s","type":"page_view"}`), 0, now, r); errs == nil {
		t.Fatal("type outside the custom list accepted")
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	e := cairn.Event{EventID: "id", UserID: "u\"ser\u00e9", SessionID: "s", Type: "search",
		Payload: json.RawMessage(`{"q":"x"}`), OccurredAt: now, ReceivedAt: now.Add(time.Second)}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"occurredAt":"2025-12-15T10:30:00.123Z"`) {
		t.Fatalf("time format: %s", b)
	}
	var back cairn.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.UserID != e.UserID || !back.OccurredAt.Equal(e.OccurredAt) || string(back.Payload) != string(e.Payload) {
		t.Fatalf("round trip: %+v != %+v", back, e)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := &cairn.Cursor{OccurredAt: now, EventID: "evt-1"}
	got, err := cairn.DecodeCursor(c.Encode())
	if err != nil || !got.OccurredAt.Equal(c.OccurredAt) || got.EventID != c.EventID {
		t.Fatalf("DecodeCursor(Encode) = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "!!", "AA", c.Encode() + "%"} {
		if _, err := cairn.DecodeCursor(bad); cairn.ErrorCode(err) != cairn.EINVALID {
			t.Errorf("DecodeCursor(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestBinaryBatchRoundTrip(t *testing.T) {
	evs := []cairn.Event{
		{EventID: "a", UserID: "u", SessionID: "s", Type: "page_view", Payload: json.RawMessage(`{}`), OccurredAt: now, ReceivedAt: now},
		{EventID: "b", UserID: "\u00fc", SessionID: "", Type: "x", Payload: nil, OccurredAt: time.UnixMilli(0).UTC(), ReceivedAt: now},
	}
	b := cairn.AppendBatch(nil, evs)
	if n, err := cairn.BatchLen(b); err != nil || n != 2 {
		t.Fatalf("BatchLen = %d, %v", n, err)
	}
	got, err := cairn.DecodeBatch(nil, b)
	if err != nil || len(got) != 2 {
		t.Fatalf("DecodeBatch: %v %v", got, err)
	}
	for i := range evs {
		if got[i].EventID != evs[i].EventID || got[i].UserID != evs[i].UserID || !got[i].OccurredAt.Equal(evs[i].OccurredAt) || string(got[i].Payload) != string(evs[i].Payload) {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], evs[i])
		}
	}
	if _, err := cairn.DecodeBatch(nil, b[:len(b)-1]); err == nil {
		t.Error("truncated batch decoded")
	}
}

// FuzzDecodeEvent: never panics; an accepted event is normalized and its
// JSON encoding decodes back to the same event.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"userId":"u","sessionId":"s","type":"page_view","payload":{"url":"/"},"occurredAt":"2025-12-15T10:30:00Z","eventId":"e-1"}`))
	f.Add([]byte(`{"userId":"u","sessionId":"s","type":"purchase","occurredAt":1765794600000}`))
	f.Add([]byte(`{"userId":"\u0000","sessionId":" ","type":null,"payload":[]}`))
	f.Add([]byte(`{"userId":"u","sessionId":"s","type":"search","occurredAt":"2025-12-15"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, errs := cairn.DecodeEvent(data, 0, now, rules())
		if errs != nil {
			return
		}
		if e.UserID == "" || e.SessionID == "" || e.Type == "" || len(e.Payload) == 0 || e.Payload[0] != '{' {
			t.Fatalf("accepted event not normalized: %+v", e)
		}
		if !json.Valid(e.Payload) {
			t.Fatalf("payload not valid JSON: %q", e.Payload)
		}
		e.EventID = "x"
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back cairn.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
		if back.UserID != e.UserID || back.SessionID != e.SessionID || !back.OccurredAt.Equal(e.OccurredAt) {
			t.Fatalf("round trip changed the event: %+v != %+v", back, e)
		}
		bin := cairn.AppendBatch(nil, []cairn.Event{e})
		got, err := cairn.DecodeBatch(nil, bin)
		if err != nil || got[0].UserID != e.UserID || string(got[0].Payload) != string(e.Payload) {
			t.Fatalf("binary round trip: %v %+v", err, got)
		}
	})
}

// FuzzDecodeBatch: arbitrary bytes never panic the binary decoder.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(cairn.AppendBatch(nil, []cairn.Event{{EventID: "a", UserID: "u", SessionID: "s", Type: "t", Payload: json.RawMessage(`{}`), OccurredAt: now, ReceivedAt: now}}))
	f.Add(cairn.AppendBatch(nil, []cairn.Event{{EventID: "a", UserID: "u", SessionID: "s", Type: "t", SourceID: "src", AnonymousID: "anon", Payload: json.RawMessage(`{}`), OccurredAt: now, ReceivedAt: now}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := cairn.DecodeBatch(nil, data)
		if err != nil {
			return
		}
		again := cairn.AppendBatch(nil, evs)
		if len(again) == 0 {
			t.Fatal("re-encode produced nothing")
		}
		back, err := cairn.DecodeBatch(nil, again)
		if err != nil || len(back) != len(evs) {
			t.Fatalf("re-encoded batch does not decode: %d events, %v", len(back), err)
		}
		for i := range evs {
			if back[i].SourceID != evs[i].SourceID || back[i].AnonymousID != evs[i].AnonymousID || back[i].EventID != evs[i].EventID {
				t.Fatalf("event %d changed in a round trip: %+v != %+v", i, back[i], evs[i])
			}
		}
	})
}
