package http_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/apitest"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/storetest"
)

func TestErase(t *testing.T) {
	now := time.Date(2025, 12, 16, 8, 0, 0, 0, time.UTC)
	newServer := func(t *testing.T, role string, withEraser bool) (string, cairn.EventStore) {
		t.Helper()
		st := newPebble(t)
		at := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
		link := storetest.NewEvent("u2", "alice", at.Add(time.Minute))
		link.AnonymousID = "anon-1"
		if _, err := st.InsertEvents(t.Context(), []cairn.Event{
			storetest.NewEvent("u1", "alice", at), link,
			storetest.NewEvent("a1", "anon-1", at.Add(-time.Minute)),
			storetest.NewEvent("b1", "bob", at),
		}); err != nil {
			t.Fatal(err)
		}
		srv := &cairnhttp.Server{Ingester: &fakeIngester{}, Store: st, Auth: roleAuth{role}, TrackedUsers: st,
			Now: func() time.Time { return now }}
		if withEraser {
			srv.Eraser = st
		}
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		return hs.URL, st
	}
	c := apitest.NewClient(t)
	del := func(t *testing.T, url string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return do(t, c, req)
	}
	for _, tc := range []struct {
		name, role, user string
		eraser           bool
		status           int
		events           int64
		anons            []string
	}{
		{"Admin", cairn.RoleAdmin, "alice", true, 200, 3, []string{"anon-1"}},
		{"UnknownUser", cairn.RoleAdmin, "nobody", true, 200, 0, []string{}},
		{"ErrMember", cairn.RoleMember, "alice", true, 403, 0, nil},
		{"ErrUserTooLong", cairn.RoleAdmin, longID(), true, 400, 0, nil},
		{"ErrNoEraser", cairn.RoleAdmin, "alice", false, 501, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, st := newServer(t, tc.role, tc.eraser)
			resp, body := del(t, url+"/api/users/"+tc.user+"/events")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			n, err := st.CountEvents(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if want := 4 - tc.events; n != want {
				t.Errorf("stored events after the call: %d, want %d", n, want)
			}
			if tc.status != 200 {
				return
			}
			var got struct {
				UserID             string   `json:"userId"`
				ErasedEvents       int64    `json:"erasedEvents"`
				ErasedAnonymousIDs []string `json:"erasedAnonymousIds"`
				ErasedAt           string   `json:"erasedAt"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.UserID != tc.user || got.ErasedEvents != tc.events || !slices.Equal(got.ErasedAnonymousIDs, tc.anons) ||
				got.ErasedAt != "2025-12-16T08:00:00.000Z" {
				t.Errorf("body %s, want %d events, ids %q", body, tc.events, tc.anons)
			}
			if resp, body := get(t, c, url+"/users/"+tc.user); resp.StatusCode != 404 {
				t.Errorf("GET /users/%s after erasure: %d %s, want 404", tc.user, resp.StatusCode, body)
			}
			resp, body = get(t, c, url+"/users/"+tc.user+"/journey")
			if resp.StatusCode != 200 || !json.Valid(body) {
				t.Fatalf("journey after erasure: %d %s", resp.StatusCode, body)
			}
			var j struct {
				Events []json.RawMessage `json:"events"`
			}
			if err := json.Unmarshal(body, &j); err != nil || len(j.Events) != 0 {
				t.Errorf("journey after erasure: %s, want no events", body)
			}
		})
	}
}

func longID() string {
	b := make([]byte, cairn.MaxIDBytes+1)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}
