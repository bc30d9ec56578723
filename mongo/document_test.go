package mongo

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestEscapeKey(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "50%": "50%", "": "",
		"a.b": "%a%2Eb", "$set": "%%24set", "%p": "%%25p", "a$b": "a$b",
		"n\x00l": "%n%00l", "$a.%": "%%24a%2E%25",
	} {
		if got := escapeKey(in); got != want {
			t.Errorf("escapeKey(%q) = %q, want %q", in, got, want)
		}
		if got := unescapeKey(want); got != in {
			t.Errorf("unescapeKey(%q) = %q, want %q", want, got, in)
		}
	}
}

func FuzzEscapeKey(f *testing.F) {
	for _, s := range []string{"", "a.b", "$x", "%", "%25", "%%2E", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		e := escapeKey(k)
		if len(e) > 0 && (e[0] == '$') || containsByte(e, '.') || containsByte(e, 0) {
			t.Fatalf("escapeKey(%q) = %q still has a forbidden character", k, e)
		}
		if got := unescapeKey(e); got != k {
			t.Fatalf("unescapeKey(escapeKey(%q)) = %q", k, got)
		}
	})
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// FuzzPayloadRoundTrip: any JSON object payload either is rejected
// permanently or comes back from its BSON document as the same JSON value.
func FuzzPayloadRoundTrip(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[1.5,"x",null,true,{"c.d":{}}]}`, `{"$x":-0,"big":123456789012345678901234}`, `{"e":1e400}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		var want map[string]any
		if json.Unmarshal([]byte(payload), &want) != nil || want == nil {
			return
		}
		ev := cairn.Event{EventID: "e", UserID: "u", SessionID: "s", Type: "t", Payload: json.RawMessage(payload),
			OccurredAt: time.UnixMilli(1e12).UTC(), ReceivedAt: time.UnixMilli(1e12 + 5).UTC()}
		doc, err := eventDocument(&ev)
		if err != nil {
			return // rejected permanently (depth)
		}
		got, err := decodeEvent(bson.Raw(doc))
		if err != nil {
			t.Fatalf("decode own document: %v", err)
		}
		var gotPayload map[string]any
		if err := json.Unmarshal(got.Payload, &gotPayload); err != nil {
			t.Fatalf("decoded payload is not JSON: %q", got.Payload)
		}
		if !reflect.DeepEqual(gotPayload, want) {
			t.Fatalf("payload %s came back as %s", payload, got.Payload)
		}
		if got.EventID != "e" || !got.OccurredAt.Equal(ev.OccurredAt) || !got.ReceivedAt.Equal(ev.ReceivedAt) {
			t.Fatalf("event fields changed: %+v", got)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	doc, _ := eventDocument(&cairn.Event{EventID: "e", Payload: json.RawMessage(`{"a":[1,{"b":2}]}`)})
	f.Add(doc)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeEvent(bson.Raw(b)) // must not panic
	})
}
