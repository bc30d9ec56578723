package segment_test

import (
	"testing"

	"github.com/cairn-dev/cairn/segment"
)

// TestDecodeLinkAnonymousID checks Event.AnonymousID, the anonymous id that
// stores link to the event's user.
func TestDecodeLinkAnonymousID(t *testing.T) {
	for _, tc := range []struct {
		name, call, body string
		user, anon       string
	}{
		{"IdentifyBoth", "identify", `{"userId":"u1","anonymousId":"a1","traits":{"plan":"pro"}}`, "u1", "a1"},
		{"TrackBoth", "track", `{"userId":"u1","anonymousId":"a1","event":"E"}`, "u1", "a1"},
		{"AnonymousOnly", "track", `{"anonymousId":"a1","event":"E"}`, "a1", ""},
		{"UserOnly", "page", `{"userId":"u1"}`, "u1", ""},
		{"SameIDs", "identify", `{"userId":"u1","anonymousId":"u1"}`, "u1", ""},
		{"AliasPreviousID", "alias", `{"userId":"u1","previousId":"a9","anonymousId":"a1"}`, "u1", "a9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := segment.Decode([]byte(tc.body), tc.call, recv, segment.Options{})
			if err != nil || len(req.Messages) != 1 {
				t.Fatalf("Decode: %+v, %v", req, err)
			}
			e := req.Messages[0].Event
			if e.UserID != tc.user || e.AnonymousID != tc.anon {
				t.Fatalf("userId %q anonymousId %q, want %q %q", e.UserID, e.AnonymousID, tc.user, tc.anon)
			}
		})
	}
}
