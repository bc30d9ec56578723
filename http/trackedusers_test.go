package http_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
)

// fakeTracked answers tracked-user queries from a fixed list (a unit-test
// double), recording the last query.
type fakeTracked struct{ last cairn.TrackedUserQuery }

func (*fakeTracked) TrackedUser(context.Context, string) (*cairn.TrackedUser, error) {
	return nil, cairn.Errorf(cairn.ENOTFOUND, "not found")
}

func (*fakeTracked) LinkedUser(context.Context, string) (string, error) { return "", nil }

func (f *fakeTracked) TrackedUsers(_ context.Context, q cairn.TrackedUserQuery) (*cairn.TrackedUserPage, error) {
	f.last = q
	if q.After == "bad" {
		return nil, cairn.Errorf(cairn.EINVALID, "invalid cursor")
	}
	at := time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)
	return &cairn.TrackedUserPage{Users: []cairn.TrackedUser{{UserID: q.Prefix + "1", FirstSeen: at, LastSeen: at, EventCount: 3, SessionCount: 1}}, Next: "next"}, nil
}

func TestTrackedUsers(t *testing.T) {
	tracked := &fakeTracked{}
	s := &cairnhttp.Server{Ingester: &fakeIngester{}, Store: nopStore{}, TrackedUsers: tracked}
	for _, tc := range []struct {
		name, query string
		status      int
		want        string
	}{
		{"OK", "?prefix=user&limit=10&cursor=abc", 200, `{"users":[{"userId":"user1","firstSeen":"2025-12-15T10:30:00.000Z","lastSeen":"2025-12-15T10:30:00.000Z","events":3,"sessions":1}],"count":1,"nextCursor":"next"}`},
		{"ErrLimit", "?limit=0", 400, `"code":"invalid"`},
		{"ErrCursor", "?cursor=bad", 400, `"code":"invalid"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/tracked-users"+tc.query, nil))
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("%d %s, want %d with %s", w.Code, w.Body, tc.status, tc.want)
			}
		})
	}
	if tracked.last.Prefix != "" || tracked.last.After != "bad" {
		t.Errorf("last query %+v", tracked.last)
	}
}
