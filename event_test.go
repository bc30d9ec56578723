package cairn_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

var now = time.Date(2025, 12, 15, 10, 30, 0, 123e6, time.UTC)

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
