package http_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/apitest"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/insights"
	"github.com/cairn-dev/cairn/storetest"
)

// denyAuth refuses every request (no session).
type denyAuth struct{}

func (denyAuth) Authenticate(context.Context, string) (*cairn.Principal, error) {
	return nil, cairn.Errorf(cairn.EUNAUTHORIZED, "Authentication required.")
}

func TestInsightsAPI(t *testing.T) {
	st := newPebble(t)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ev := func(id, user, typ string, min int) cairn.Event {
		e := storetest.NewEvent(id, user, day.Add(time.Duration(min)*time.Minute))
		e.Type = typ
		return e
	}
	if _, err := st.InsertEvents(t.Context(), []cairn.Event{
		ev("1", "ann", "page_view", 60), ev("2", "ann", "add_to_cart", 70), ev("3", "ann", "purchase", 80),
		ev("4", "bob", "page_view", 60), ev("5", "bob", "page_view", 24*60+5),
	}); err != nil {
		t.Fatal(err)
	}
	now := day.Add(3 * 24 * time.Hour)
	newServer := func(auth cairn.Authenticator) string {
		srv := &cairnhttp.Server{Ingester: &fakeIngester{}, Store: st, Auth: auth, Insights: insights.New(st),
			Now: func() time.Time { return now }}
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		return hs.URL
	}
	base := newServer(roleAuth{cairn.RoleMember})
	c := apitest.NewClient(t)
	send := func(t *testing.T, url, method, body string) (*http.Response, []byte) {
		t.Helper()
		var req *http.Request
		var err error
		if body == "" {
			req, err = http.NewRequestWithContext(t.Context(), method, url, nil)
		} else {
			req, err = http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
		}
		if err != nil {
			t.Fatal(err)
		}
		return do(t, c, req)
	}
	funnel := func(steps, within string) string {
		return `{"steps":` + steps + `,"within":"` + within + `","from":"2026-12-01","to":"2026-12-03"}`
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"Trends", "GET", "/api/insights/trends?from=2026-12-01&to=2026-12-02T10:00:00Z&type=page_view", "", 200,
			`{"interval":"day","series":[{"type":"page_view","total":3,"points":[{"t":"2026-12-01T00:00:00Z","count":2},{"t":"2026-12-02T00:00:00Z","count":1}]}]}`},
		{"TrendsDefaultRange", "GET", "/api/insights/trends?interval=week&type=purchase,add_to_cart", "", 200,
			`{"interval":"week","series":[{"type":"add_to_cart","total":1,"points":[{"t":"2026-11-23T00:00:00Z","count":0},{"t":"2026-11-30T00:00:00Z","count":1}]},{"type":"purchase","total":1,`},
		{"Users", "GET", "/api/insights/users?from=2026-12-01&to=2026-12-02", "", 200,
			`{"interval":"day","relativeError":0.0041,"points":[{"t":"2026-12-01T00:00:00Z","users":2},{"t":"2026-12-02T00:00:00Z","users":1}]}`},
		{"Funnel", "POST", "/api/insights/funnel", funnel(`[{"type":"page_view"},{"type":"add_to_cart","where":{"url":"/p/2"}},{"type":"purchase"}]`, "1h"), 200,
			`{"within":"1h","steps":[{"type":"page_view","users":2,"conversionFromPrevious":1,"conversionFromFirst":1,"medianSecondsFromPrevious":null,"exampleUsers":["ann","bob"]},` +
				`{"type":"add_to_cart","where":{"url":"/p/2"},"users":1,"conversionFromPrevious":0.5,"conversionFromFirst":0.5,"medianSecondsFromPrevious":600,"exampleUsers":["ann"]},` +
				`{"type":"purchase","users":1,"conversionFromPrevious":1,"conversionFromFirst":0.5,"medianSecondsFromPrevious":600,"exampleUsers":["ann"]}]}`},
		{"FunnelDays", "POST", "/api/insights/funnel", funnel(`[{"type":"page_view"},{"type":"page_view"}]`, "2d"), 200, `"users":1,`},
		{"Retention", "GET", "/api/insights/retention?cohort=page_view&from=2026-12-01&to=2026-12-03", "", 200,
			`{"interval":"day","cohort":"page_view","return":"any","cohorts":[{"t":"2026-12-01T00:00:00Z","users":2,"returned":[2,1,0]},{"t":"2026-12-02T00:00:00Z","users":0,"returned":[0,0]},{"t":"2026-12-03T00:00:00Z","users":0,"returned":[0]}]}`},
		{"Top", "GET", "/api/insights/top?type=page_view&field=url&from=2026-12-01&to=2026-12-03&limit=2", "", 200,
			`{"type":"page_view","field":"url","values":[{"value":"/p/1","count":1},{"value":"/p/4","count":1}]}`},
		{"ErrInterval", "GET", "/api/insights/trends?interval=year", "", 400, `interval must be one of hour, day, week, month, not \"year\"`},
		{"ErrUsersHour", "GET", "/api/insights/users?interval=hour", "", 400, `interval must be one of day, week, month`},
		{"ErrFromAfterTo", "GET", "/api/insights/users?from=2026-12-03&to=2026-12-01", "", 400, `is after to`},
		{"ErrTime", "GET", "/api/insights/retention?from=yesterday", "", 400, `from must be an RFC 3339 time or a YYYY-MM-DD date`},
		{"ErrTooManyBuckets", "GET", "/api/insights/trends?interval=hour&from=2020-01-01", "", 400, `more than 5000`},
		{"ErrSteps", "POST", "/api/insights/funnel", funnel(`[`+strings.Repeat(`{"type":"page_view"},`, 10)+`{"type":"purchase"}]`, "1h"), 400, `at most 10 steps, not 11`},
		{"ErrWindow", "POST", "/api/insights/funnel", funnel(`[{"type":"page_view"}]`, "0s"), 400, `within must be a positive duration`},
		{"ErrWindowSyntax", "POST", "/api/insights/funnel", funnel(`[{"type":"page_view"}]`, "soon"), 400, `within must be a duration such as`},
		{"ErrFunnelBody", "POST", "/api/insights/funnel", `{"steps":[],"within":"1h","extra":1}`, 400, `unknown field`},
		{"ErrTopField", "GET", "/api/insights/top", "", 400, `field is required`},
		{"ErrTopLimit", "GET", "/api/insights/top?field=url&limit=x", "", 400, `limit must be an integer from 1 to 100`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, base+tc.path, tc.method, tc.body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s %s: %d %s\nwant %d with %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
	t.Run("ErrNoSession", func(t *testing.T) {
		denied := newServer(denyAuth{})
		for _, p := range []string{"/api/insights/trends", "/api/insights/users", "/api/insights/retention", "/api/insights/top?field=url"} {
			if resp, body := send(t, denied+p, "GET", ""); resp.StatusCode != 401 {
				t.Errorf("GET %s without a session: %d %s", p, resp.StatusCode, body)
			}
		}
		if resp, body := send(t, denied+"/api/insights/funnel", "POST", funnel(`[{"type":"page_view"}]`, "1h")); resp.StatusCode != 401 {
			t.Errorf("POST funnel without a session: %d %s", resp.StatusCode, body)
		}
	})
}
