package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/console"
	"github.com/cairn-dev/cairn/live"
	"github.com/cairn-dev/cairn/pebble"
)

type fakeIngester struct{}

func (fakeIngester) Ingest(context.Context, []cairn.Event) error { return nil }
func (fakeIngester) Stats() cairn.IngestStats {
	return cairn.IngestStats{Accepted: 1234567, Stored: 1234000, Backlog: 567, MaxBacklog: 1000000}
}

// openStore opens a small embedded store in a temporary directory, closed
// when the test ends.
func openStore(t *testing.T) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// env is a console over a real embedded store holding a 130-event journey
// in three sessions, and "anon-user"'s 65 events sent without a session id:
// 60 a minute apart from 12:00, then 5 from 14:00 (two derived sessions).
func newConsole(t *testing.T) (http.Handler, *live.Hub) {
	t.Helper()
	st := openStore(t)
	base := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
	var evs []cairn.Event
	for i := range 130 {
		evs = append(evs, cairn.Event{EventID: fmt.Sprintf("j-%03d", i), UserID: "journey-user", SessionID: fmt.Sprintf("sess-%d", i/50),
			Type: "page_view", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), OccurredAt: base.Add(time.Duration(i) * time.Minute), ReceivedAt: base})
	}
	for i := range 65 {
		at := base.Add(2*time.Hour + time.Duration(i)*time.Minute)
		if i >= 60 {
			at = base.Add(4*time.Hour + time.Duration(i-60)*time.Minute)
		}
		evs = append(evs, cairn.Event{EventID: fmt.Sprintf("a-%03d", i), UserID: "anon-user", Type: "track",
			OccurredAt: at, ReceivedAt: base})
	}
	if _, err := st.InsertEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	hub := live.NewHub(16)
	c, err := console.New(console.Config{Ingester: fakeIngester{}, Store: st, Feed: hub})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, h := range c.Routes() {
		mux.Handle(pattern, h)
	}
	return mux, hub
}

func get(t *testing.T, h http.Handler, path string, p *cairn.Principal) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	if p != nil {
		r = r.WithContext(cairn.NewContextWithPrincipal(r.Context(), p))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

var (
	admin  = &cairn.Principal{UserID: "a", Email: "admin@example.com", Role: cairn.RoleAdmin}
	member = &cairn.Principal{UserID: "m", Email: "member@example.com", Role: cairn.RoleMember}
)

func TestPages(t *testing.T) {
	h, hub := newConsole(t)
	hub.Publish([]cairn.Event{{EventID: "e1", UserID: "recent-user", SessionID: "s", Type: "search"}})
	for _, tc := range []struct {
		name, path string
		p          *cairn.Principal
		status     int
		want       []string
	}{
		{"SignInWithoutSession", "/console/users/journey-user", nil, 200, []string{"data-signin", "Sign in"}},
		{"Overview", "/console", member, 200, []string{"1,234,567", "Events per second, last hour", "recent-user", "<svg"}},
		{"Live", "/console/live?userId=u1", member, 200, []string{`name="userId" value="u1"`, "data-live"}},
		{"Users", "/console/users", member, 200, []string{"Open a user"}},
		{"UsersOpen", "/console/users?open=a%2Fb", member, 303, nil},
		{"Journey", "/console/users/journey-user", member, 200, []string{`data-session="sess-2"`, `data-session="sess-1"`, "Watch live", "data-next="}},
		{"JourneyBadDate", "/console/users/journey-user?from=yesterday", member, 400, []string{"is not a date"}},
		{"AccountsMember", "/console/accounts", member, 403, []string{"Admins only"}},
		{"AccountsNoService", "/console/accounts", admin, 404, nil},
		{"Root", "/", nil, 302, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, h, tc.path, tc.p)
			if status != tc.status {
				t.Fatalf("status %d, want %d\n%.2000s", status, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q\n%.3000s", w, body)
				}
			}
		})
	}
}

// TestJourneyScroll follows the fragments a journey page links to until
// the end: 50 + 50 + 30 events, newest first, no repeats.
func TestJourneyScroll(t *testing.T) {
	h, _ := newConsole(t)
	li := regexp.MustCompile(`<li>`)
	next := regexp.MustCompile(`data-next="([^"]+)"`)
	_, body := get(t, h, "/console/users/journey-user", member)
	counts := []int{len(li.FindAllString(body, -1))}
	for range 5 {
		m := next.FindStringSubmatch(body)
		if m == nil {
			break
		}
		url := strings.ReplaceAll(m[1], "&amp;", "&")
		var status int
		status, body = get(t, h, url, member)
		if status != 200 || strings.Contains(body, "<html") {
			t.Fatalf("fragment %s: %d %.300s", url, status, body)
		}
		counts = append(counts, len(li.FindAllString(body, -1)))
	}
	if fmt.Sprint(counts) != "[50 50 30]" {
		t.Errorf("pages of %v events, want [50 50 30]", counts)
	}
}

// TestJourneyDerivedSessions: events sent without a session id are
// grouped by their derived session (as GET /users/{userId}/journey
// returns them), with the same id on both sides of a page boundary.
func TestJourneyDerivedSessions(t *testing.T) {
	h, _ := newConsole(t)
	base := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
	early, late := cairn.DerivedSessionID(base.Add(2*time.Hour)), cairn.DerivedSessionID(base.Add(4*time.Hour))
	session := regexp.MustCompile(`data-session="([^"]*)"`)
	next := regexp.MustCompile(`data-next="([^"]+)"`)
	_, body := get(t, h, "/console/users/anon-user", member)
	var got [][]string
	for range 3 {
		var page []string
		for _, m := range session.FindAllStringSubmatch(body, -1) {
			page = append(page, m[1])
		}
		got = append(got, page)
		m := next.FindStringSubmatch(body)
		if m == nil {
			break
		}
		_, body = get(t, h, strings.ReplaceAll(m[1], "&amp;", "&"), member)
	}
	if want := [][]string{{late, early}, {early}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sessions per page %v, want %v", got, want)
	}
}

type fakeTracked struct{}

func (fakeTracked) TrackedUser(context.Context, string) (*cairn.TrackedUser, error) {
	return nil, cairn.Errorf(cairn.ENOTFOUND, "not found")
}

func (fakeTracked) LinkedUser(context.Context, string) (string, error) { return "", nil }

func (fakeTracked) TrackedUsers(_ context.Context, q cairn.TrackedUserQuery) (*cairn.TrackedUserPage, error) {
	at := time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)
	page := &cairn.TrackedUserPage{Users: []cairn.TrackedUser{{UserID: q.Prefix + "-a", FirstSeen: at, LastSeen: at, EventCount: 1234, SessionCount: 5}}}
	if q.After == "" {
		page.Next = "c1"
	}
	return page, nil
}

func TestUsersView(t *testing.T) {
	st := openStore(t)
	c, err := console.New(console.Config{Ingester: fakeIngester{}, Store: st, Feed: live.NewHub(1), TrackedUsers: fakeTracked{}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, h := range c.Routes() {
		mux.Handle(pattern, h)
	}
	status, body := get(t, mux, "/console/users?prefix=shop", member)
	for _, want := range []string{`href="/console/users/shop-a"`, "1,234", `cursor=c1`} {
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("%d: body lacks %q\n%.3000s", status, want, body)
		}
	}
	if _, body := get(t, mux, "/console/users?prefix=shop&cursor=c1", member); strings.Contains(body, "cursor=") {
		t.Errorf("last page links a next page")
	}
}

// TestSourcesRate: the Sources view shows each source's events/s over the
// last minute, with a sparkline, from the live hub's per-source history.
func TestSourcesRate(t *testing.T) {
	st := openStore(t)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	hub := live.NewHub(16)
	hub.SetClock(clock)
	c, err := console.New(console.Config{Ingester: fakeIngester{}, Store: st, Feed: hub, Sources: st, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, h := range c.Routes() {
		mux.Handle(pattern, h)
	}
	busy := &cairn.Source{Name: "busy", Enabled: true, CreatedAt: now, UpdatedAt: now}
	quiet := &cairn.Source{Name: "quiet", Enabled: true, CreatedAt: now, UpdatedAt: now}
	for _, s := range []*cairn.Source{busy, quiet} {
		if err := st.CreateSource(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	evs := make([]cairn.Event, 300)
	for i := range evs {
		evs[i] = cairn.Event{EventID: fmt.Sprint(i), UserID: "u", SessionID: "s", Type: "track", SourceID: busy.ID}
	}
	hub.Publish(evs) // 300 events in the last minute: 5 events/s

	code, body := get(t, mux, "/console/sources", admin)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	// Both sources share a creation time, so their order on the page is not
	// fixed: read each rate from its own card.
	rates := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<h2>(\w+) .*?data-source-rate>([^<]*)<`).FindAllStringSubmatch(body, -1) {
		rates[m[1]] = m[2]
	}
	if len(rates) != 2 || rates["busy"] != "5.00" || rates["quiet"] != "0" {
		t.Errorf("rates %v, want busy 5.00 and quiet 0", rates)
	}
	if n := strings.Count(body, `<svg class="spark"`); n != 2 {
		t.Errorf("%d sparklines, want 2", n)
	}
}
