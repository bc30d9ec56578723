package cairn_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// TestDecodeBatchVersion1 decodes a spool record written by the binary
// before sourceId and anonymousId existed (testdata/batch-v1.hex, made by
// that version's AppendBatch): records in old spools must still replay.
func TestDecodeBatchVersion1(t *testing.T) {
	raw, err := os.ReadFile("testdata/batch-v1.hex")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)
	want := []cairn.Event{
		{EventID: "evt-1", UserID: "user123", SessionID: "sess456", Type: "page_view", Payload: json.RawMessage(`{"url":"/products/123"}`), OccurredAt: at, ReceivedAt: at.Add(1500 * time.Millisecond)},
		{EventID: "evt-2", UserID: "user123", SessionID: "", Type: "$identify", Payload: json.RawMessage(`{}`), OccurredAt: at.Add(time.Second), ReceivedAt: at.Add(2 * time.Second)},
	}
	got, err := cairn.DecodeBatch(nil, b)
	if err != nil {
		t.Fatalf("DecodeBatch(v1 record): %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameEvent(got[i], want[i]) {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// Events without the new ids are still written in version 1, byte for
	// byte, so older binaries read what this one writes for seed events.
	if again := cairn.AppendBatch(nil, got); !bytes.Equal(again, b) {
		t.Errorf("re-encoding changed the v1 record:\n got %x\nwant %x", again, b)
	}
}

func sameEvent(a, b cairn.Event) bool {
	return a.EventID == b.EventID && a.UserID == b.UserID && a.SessionID == b.SessionID && a.Type == b.Type &&
		a.SourceID == b.SourceID && a.AnonymousID == b.AnonymousID && string(a.Payload) == string(b.Payload) &&
		a.OccurredAt.Equal(b.OccurredAt) && a.ReceivedAt.Equal(b.ReceivedAt)
}

// TestBinaryIDsRoundTrip checks that sourceId and anonymousId survive the
// codec, alone or together, in a batch mixing both versions.
func TestBinaryIDsRoundTrip(t *testing.T) {
	at := time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)
	evs := []cairn.Event{
		{EventID: "a", UserID: "u", Type: "t", Payload: json.RawMessage(`{}`), OccurredAt: at, ReceivedAt: at},
		{EventID: "b", UserID: "u", Type: "t", SourceID: "src_1", Payload: json.RawMessage(`{}`), OccurredAt: at, ReceivedAt: at},
		{EventID: "c", UserID: "u", Type: "t", AnonymousID: "anon-\u00e9", Payload: json.RawMessage(`{}`), OccurredAt: at, ReceivedAt: at},
		{EventID: "d", UserID: "u", Type: "t", SourceID: "src_2", AnonymousID: "anon", Payload: json.RawMessage(`{}`), OccurredAt: at, ReceivedAt: at},
	}
	b := cairn.AppendBatch(nil, evs)
	got, err := cairn.DecodeBatch(nil, b)
	if err != nil || len(got) != len(evs) {
		t.Fatalf("DecodeBatch: %d events, %v", len(got), err)
	}
	for i := range evs {
		if !sameEvent(got[i], evs[i]) {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], evs[i])
		}
	}
	for cut := 1; cut < len(b); cut++ {
		if _, err := cairn.DecodeBatch(nil, b[:cut]); err == nil {
			t.Fatalf("batch truncated at %d of %d bytes decoded", cut, len(b))
		}
	}
}

// TestEventJSONIDs checks that sourceId and anonymousId appear in JSON only
// when set, and decode back.
func TestEventJSONIDs(t *testing.T) {
	at := time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		ev   cairn.Event
		want string
	}{
		{"Seed", cairn.Event{EventID: "e", UserID: "u", SessionID: "s", Type: "t", OccurredAt: at, ReceivedAt: at},
			`{"eventId":"e","userId":"u","sessionId":"s","type":"t","payload":{},"occurredAt":"2025-12-15T10:30:00.000Z","receivedAt":"2025-12-15T10:30:00.000Z"}`},
		{"Both", cairn.Event{EventID: "e", UserID: "u", SessionID: "s", Type: "t", SourceID: "src_1", AnonymousID: "a1", Payload: json.RawMessage(`{"k":1}`), OccurredAt: at, ReceivedAt: at},
			`{"eventId":"e","userId":"u","sessionId":"s","type":"t","sourceId":"src_1","anonymousId":"a1","payload":{"k":1},"occurredAt":"2025-12-15T10:30:00.000Z","receivedAt":"2025-12-15T10:30:00.000Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.ev)
			if err != nil || string(b) != tc.want {
				t.Fatalf("Marshal = %s, %v; want %s", b, err, tc.want)
			}
			var back cairn.Event
			if err := json.Unmarshal(b, &back); err != nil || back.SourceID != tc.ev.SourceID || back.AnonymousID != tc.ev.AnonymousID {
				t.Fatalf("Unmarshal = %+v, %v", back, err)
			}
		})
	}
}

func TestEventTraits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     string
		payload string
		want    map[string]string
	}{
		{"Identify", "$identify", `{"traits":{"plan":"pro","n": 1,"":"x","o":{"a" : 1}},"userId":"u"}`, map[string]string{"plan": `"pro"`, "n": "1", "o": `{"a":1}`}},
		{"NotIdentify", "page_view", `{"traits":{"plan":"pro"}}`, nil},
		{"NoTraits", "$identify", `{"userId":"u"}`, nil},
		{"TraitsNotObject", "$identify", `{"traits":[1]}`, nil},
		{"EmptyTraits", "$identify", `{"traits":{}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cairn.EventTraits(&cairn.Event{Type: tc.typ, Payload: json.RawMessage(tc.payload)})
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if string(got[k]) != v {
					t.Errorf("trait %q = %s, want %s", k, got[k], v)
				}
			}
		})
	}
}
