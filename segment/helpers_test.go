package segment_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/segment"
)

// checkEvent checks that e passes Cairn's event validation: it re-encodes
// e in the shape of POST /events and decodes it with cairn.DecodeEvent,
// allowing e's type (track names are open-ended) and standing in for the
// session id when e has none (sessions are derived later).
func checkEvent(t testing.TB, e cairn.Event) {
	t.Helper()
	if !utf8.ValidString(e.Type) || e.Type == "" || utf8.RuneCountInString(e.Type) > segment.MaxEventNameLen+1 {
		t.Fatalf("bad type %q", e.Type)
	}
	if e.EventID != "" {
		if msg := cairn.ValidateEventID(e.EventID); msg != "" {
			t.Fatalf("eventId %q: %s", e.EventID, msg)
		}
	}
	if !json.Valid(e.Payload) || len(e.Payload) == 0 || e.Payload[0] != '{' {
		t.Fatalf("payload is not a JSON object: %s", e.Payload)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(e.Payload, &top); err != nil {
		t.Fatalf("payload: %v", err)
	}
	if _, ok := top["writeKey"]; ok {
		t.Fatalf("payload keeps writeKey: %s", e.Payload)
	}
	sess := e.SessionID
	if sess == "" {
		sess = "derived-later"
	}
	seed := map[string]any{"userId": e.UserID, "sessionId": sess, "type": e.Type,
		"payload": json.RawMessage(e.Payload), "occurredAt": cairn.FormatTime(e.OccurredAt)}
	if e.EventID != "" {
		seed["eventId"] = e.EventID
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep the payload's bytes as they are
	if err := enc.Encode(seed); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	evs, err := cairnhttp.DecodeEvents(b, e.ReceivedAt, cairn.NewEventRules([]string{e.Type}, segment.DefaultMaxFuture))
	if err != nil || len(evs) != 1 {
		t.Fatalf("event fails cairn validation: %v\nevent: %s", err, b)
	}
	got := evs[0]
	if got.UserID != e.UserID || got.EventID != e.EventID || !got.OccurredAt.Equal(e.OccurredAt) ||
		!bytes.Equal(got.Payload, e.Payload) {
		t.Fatalf("event changed by cairn normalization:\n got %+v\nwant %+v", got, e)
	}
	if e.OccurredAt.Location() != time.UTC || e.ReceivedAt.Location() != time.UTC ||
		!e.OccurredAt.Equal(e.OccurredAt.Truncate(time.Millisecond)) {
		t.Fatalf("times not UTC milliseconds: %v %v", e.OccurredAt, e.ReceivedAt)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
