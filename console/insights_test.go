package console_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/console"
	"github.com/cairn-dev/cairn/insights"
	"github.com/cairn-dev/cairn/live"
)

func newInsightsConsole(t *testing.T) http.Handler {
	t.Helper()
	st := openStore(t)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var evs []cairn.Event
	n := 0
	add := func(user, typ string, at time.Time, payload string) {
		n++
		evs = append(evs, cairn.Event{EventID: fmt.Sprintf("e-%03d", n), UserID: user, SessionID: "s-" + user, Type: typ,
			Payload: []byte(payload), OccurredAt: at, ReceivedAt: at})
	}
	for u := range 10 {
		user := fmt.Sprintf("buyer-%d", u)
		at := day.Add(time.Duration(u) * 7 * time.Hour)
		add(user, "session_start", at, `{}`)
		add(user, "page_view", at.Add(time.Minute), `{"url":"/pricing"}`)
		if u%2 == 0 {
			add(user, "add_to_cart", at.Add(5*time.Minute), `{}`)
		}
		if u%4 == 0 {
			add(user, "purchase", at.Add(9*time.Minute), `{}`)
		}
		add(user, "page_view", at.Add(26*time.Hour), `{"url":"/"}`)
	}
	if _, err := st.InsertEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Config{Ingester: fakeIngester{}, Store: st, Feed: live.NewHub(16), Insights: insights.New(st),
		Now: func() time.Time { return day.Add(4 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, h := range c.Routes() {
		mux.Handle(pattern, h)
	}
	return mux
}

func TestInsightsPage(t *testing.T) {
	h := newInsightsConsole(t)
	for _, tc := range []struct {
		name, path string
		status     int
		want       []string
	}{
		{"Default", "/console/insights", 200, []string{
			`<h1>Insights</h1>`, `aria-current="page">Insights</a>`, `Events per day by type`, `page_view <strong>20</strong>`,
			`Unique users`, `<svg class="chart"`, `1. page_view</a>`, `<td class="num">10</td>`, `3. purchase</a>`,
			`data-pct="30.0"`, `+4</th>`, `/pricing</td><td class="num">10</td>`}},
		{"FunnelStep", "/console/insights?steps=page_view[url%3D/pricing],add_to_cart,purchase&within=30m&step=3", 200, []string{
			`1. page_view[url=/pricing]</a>`, `Users who reached step 3 (purchase)`,
			`<a href="/console/users/buyer-0">buyer-0</a>`, `<a href="/console/users/buyer-4">buyer-4</a>`, `<a href="/console/users/buyer-8">buyer-8</a>`,
			`<td class="num">4m0s</td>`}},
		{"Weekly", "/console/insights?interval=week&from=2026-11-30&to=2026-12-06", 200, []string{`Events per week by type`, `Mon Nov 30`}},
		{"ErrWindow", "/console/insights?within=0s", 400, []string{`Funnel: within must be a positive duration`, `Events per day by type`}},
		{"ErrInterval", "/console/insights?interval=year", 400, []string{`Trends: interval must be one of`}},
		{"ErrStep", "/console/insights?steps=page_view[url]", 400, []string{`cannot read the step`}},
		{"ErrDates", "/console/insights?from=yesterday", 400, []string{`from and to must be dates`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, h, tc.path, member)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("page:\n%s", body)
			}
		})
	}
	if _, body := get(t, h, "/console", member); !strings.Contains(body, `href="/console/insights"`) {
		t.Errorf("the overview does not link to the insights")
	}
}
