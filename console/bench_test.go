package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/console"
	"github.com/cairn-dev/cairn/live"
	"github.com/cairn-dev/cairn/pebble"
)

// BenchmarkPages measures the server time of the console's pages over an
// embedded store holding CAIRN_CONSOLE_BENCH_EVENTS events (default
// 100,000; the target is 1,000,000) spread over 1,000 users, with a
// full hour of in-memory rate history, and one user whose events carry no
// session id (derived sessions, the longest look-back):
//
//	CAIRN_CONSOLE_BENCH_EVENTS=1000000 go test ./console -run x -bench Pages -benchtime 200x
func BenchmarkPages(b *testing.B) {
	n := 100_000
	if v := os.Getenv("CAIRN_CONSOLE_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	st, err := pebble.Open(b.TempDir(), pebble.Options{CacheSize: 128 << 20, DeferSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := st.Close(); err != nil {
			b.Error(err)
		}
	})
	const users = 1000
	base := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	hub := live.NewHub(16)
	now := time.Now()
	batch := make([]cairn.Event, 0, 5000)
	for i := range n {
		batch = append(batch, cairn.Event{EventID: fmt.Sprintf("e%09d", i), UserID: fmt.Sprintf("user-%04d", i%users),
			SessionID: fmt.Sprintf("s%d", i/users/20), Type: cairn.DefaultEventTypes[i%len(cairn.DefaultEventTypes)],
			Payload: []byte(`{"url":"/products/123","ref":"campaign"}`), OccurredAt: base.Add(time.Duration(i) * time.Second), ReceivedAt: now})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := st.InsertEvents(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// The worst case of session derivation: a user whose 6,000 events,
	// sent without a session id, form one gap-free session in one day, so
	// the newest page reads cairn.MaxSessionLookBack older events to find
	// where it starts.
	anon := make([]cairn.Event, 6000)
	for i := range anon {
		anon[i] = cairn.Event{EventID: fmt.Sprintf("a%09d", i), UserID: "anon-user", Type: "page_view",
			Payload: []byte(`{"url":"/products/123"}`), OccurredAt: base.Add(time.Duration(i) * 10 * time.Second), ReceivedAt: now}
	}
	if _, err := st.InsertEvents(b.Context(), anon); err != nil {
		b.Fatal(err)
	}
	for s := range 3600 {
		t := now.Add(-time.Duration(s) * time.Second)
		hub.SetClock(func() time.Time { return t })
		hub.Publish(make([]cairn.Event, 1+s%50))
	}
	c, err := console.New(console.Config{Ingester: fakeIngester{}, Store: st, Feed: hub})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, h := range c.Routes() {
		mux.Handle(pattern, h)
	}
	p := &cairn.Principal{UserID: "a", Email: "admin@example.com", Role: cairn.RoleAdmin}
	for _, page := range []string{"/console", "/console/live", "/console/users", "/console/users/user-0042", "/console/users/user-0042?from=2025-12-05&to=2025-12-06", "/console/users/anon-user"} {
		b.Run(page, func(b *testing.B) {
			for range b.N {
				r := httptest.NewRequest("GET", page, nil)
				r = r.WithContext(cairn.NewContextWithPrincipal(r.Context(), p))
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("%s: %d", page, w.Code)
				}
			}
		})
	}
}
