package http_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
)

// TestJourneyDerivedSessions: events without a sessionId get derived
// sessions, the same whatever the page size, the from filter, or
// CAIRN_SESSION_GAP says.
func TestJourneyDerivedSessions(t *testing.T) {
	st := newPebble(t)
	base := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
	var events []cairn.Event
	for i, min := range []int{0, 10, 20, 60, 65, 200} {
		events = append(events, cairn.Event{EventID: "e" + string(rune('a'+i)), UserID: "u", Type: "$page",
			Payload: json.RawMessage(`{}`), OccurredAt: base.Add(time.Duration(min) * time.Minute), ReceivedAt: base})
	}
	events = append(events, cairn.Event{EventID: "own", UserID: "u", SessionID: "s1", Type: "$page",
		Payload: json.RawMessage(`{}`), OccurredAt: base.Add(15 * time.Minute), ReceivedAt: base})
	if _, err := st.InsertEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	id := func(min int) string { return cairn.DerivedSessionID(base.Add(time.Duration(min) * time.Minute)) }
	want := map[string]string{"ea": id(0), "eb": id(0), "ec": id(0), "ed": id(60), "ee": id(60), "ef": id(200), "own": "s1"}

	read := func(t *testing.T, srv *cairnhttp.Server, query string) map[string]string {
		t.Helper()
		got := map[string]string{}
		cursor := ""
		for range 10 {
			q := query
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/users/u/journey?"+q, nil))
			var page struct {
				Events     []struct{ EventID, SessionID string }
				NextCursor *string
			}
			if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
				t.Fatalf("%s: %d %s", q, w.Code, w.Body)
			}
			for _, e := range page.Events {
				got[e.EventID] = e.SessionID
			}
			if page.NextCursor == nil {
				return got
			}
			cursor = *page.NextCursor
		}
		t.Fatal("pagination does not end")
		return nil
	}
	srv := &cairnhttp.Server{Store: st, Ingester: &fakeIngester{}}
	for _, q := range []string{"limit=100", "limit=1", "limit=2", "limit=3"} {
		t.Run(q, func(t *testing.T) {
			if got := read(t, srv, q); len(got) != len(want) || !equalMaps(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("FromFilter", func(t *testing.T) {
		got := read(t, srv, "limit=1&from="+base.Add(15*time.Minute).Format(time.RFC3339))
		if got["ec"] != id(0) || got["ed"] != id(60) || got["ea"] != "" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("Gap", func(t *testing.T) {
		got := read(t, &cairnhttp.Server{Store: st, Ingester: &fakeIngester{}, SessionGap: 5 * time.Minute}, "limit=2")
		if got["eb"] != id(10) || got["ee"] != id(60) || got["ea"] != id(0) {
			t.Fatalf("got %v", got)
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}
