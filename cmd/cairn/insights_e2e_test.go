package main

// Insights end to end: events posted to a real Cairn (twice, so every one
// is also a duplicate) answer the insights API exactly, and the console's
// Insights view in Chromium shows the charts, the funnel (a step's
// examples link to their journeys), retention and top values.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// insightEvents returns a batch, as a JSON array: 20 buyers who each start
// a session and view /pricing, 12 of whom add to cart and 5 of whom buy,
// within minutes, the day before now; and a return visit today (at
// midnight UTC, never in the future) for the first 8.
func insightEvents(now time.Time) []byte {
	day := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	var evs []string
	add := func(id, user, typ string, at time.Time, payload string) {
		evs = append(evs, fmt.Sprintf(`{"eventId":%q,"userId":%q,"sessionId":"s-%s","type":%q,"payload":%s,"occurredAt":%q}`,
			id, user, user, typ, payload, at.Format(time.RFC3339)))
	}
	for u := range 20 {
		user := fmt.Sprintf("buyer-%02d", u)
		at := day.Add(time.Duration(u) * 30 * time.Minute)
		add(user+"-1", user, "session_start", at, `{}`)
		add(user+"-2", user, "page_view", at.Add(time.Minute), `{"url":"/pricing"}`)
		if u < 12 {
			add(user+"-3", user, "add_to_cart", at.Add(3*time.Minute), `{"sku":"A"}`)
		}
		if u < 5 {
			add(user+"-4", user, "purchase", at.Add(6*time.Minute), `{}`)
		}
		if u < 8 {
			add(user+"-5", user, "page_view", day.AddDate(0, 0, 1), `{"url":"/"}`)
		}
	}
	return []byte("[" + strings.Join(evs, ",") + "]")
}

func TestE2EInsights(t *testing.T) {
	p := startMain(t, "", "CAIRN_FLUSH_INTERVAL=50ms")
	p.login()
	now := time.Now().UTC()
	body := insightEvents(now)
	for range 2 {
		if status, _, b := p.do("POST", "/events", body); status != 202 {
			t.Fatalf("POST /events: %d %s", status, b)
		}
	}
	p.waitDrained()
	today := now.Truncate(24 * time.Hour)
	from, to := today.AddDate(0, 0, -1).Format(time.DateOnly), today.Format(time.DateOnly)

	var trends struct {
		Series []struct {
			Type   string
			Total  int64
			Points []struct{ Count int64 }
		}
	}
	p.getJSON("/api/insights/trends?from="+from+"&to="+to, &trends)
	totals := map[string]int64{}
	for _, s := range trends.Series {
		totals[s.Type] = s.Total
	}
	if want := map[string]int64{"session_start": 20, "page_view": 28, "add_to_cart": 12, "purchase": 5}; fmt.Sprint(totals) != fmt.Sprint(want) {
		t.Errorf("trends totals %v, want %v (duplicates must not count)", totals, want)
	}
	var users struct{ Points []struct{ Users int64 } }
	p.getJSON("/api/insights/users?from="+from+"&to="+to, &users)
	if len(users.Points) != 2 || users.Points[0].Users != 20 || users.Points[1].Users != 8 {
		t.Errorf("unique users %+v, want 20 then 8", users.Points)
	}
	status, _, b := p.do("POST", "/api/insights/funnel", []byte(`{"steps":[{"type":"page_view","where":{"url":"/pricing"}},{"type":"add_to_cart"},{"type":"purchase"}],"within":"1h","from":"`+from+`","to":"`+now.Format(time.RFC3339)+`"}`))
	var funnel struct {
		Steps []struct {
			Users                     int64
			MedianSecondsFromPrevious *float64
			ExampleUsers              []string
		}
	}
	if status != 200 || json.Unmarshal(b, &funnel) != nil || len(funnel.Steps) != 3 {
		t.Fatalf("funnel: %d %s", status, b)
	}
	if f := funnel.Steps; f[0].Users != 20 || f[1].Users != 12 || f[2].Users != 5 || *f[1].MedianSecondsFromPrevious != 120 ||
		strings.Join(f[2].ExampleUsers, ",") != "buyer-00,buyer-01,buyer-02,buyer-03,buyer-04" {
		t.Errorf("funnel %s", b)
	}
	var ret struct {
		Cohorts []struct {
			Users    int64
			Returned []int64
		}
	}
	p.getJSON("/api/insights/retention?cohort=session_start&from="+from+"&to="+to, &ret)
	if len(ret.Cohorts) != 2 || ret.Cohorts[0].Users != 20 || fmt.Sprint(ret.Cohorts[0].Returned) != "[20 8]" {
		t.Errorf("retention %+v, want a cohort of 20 with 8 back the next day", ret.Cohorts)
	}
	var top struct{ Values []struct{ Value string } }
	p.getJSON("/api/insights/top?type=page_view&field=url&from="+from+"&to="+now.Format(time.RFC3339), &top)
	if len(top.Values) != 2 || top.Values[0].Value != "/pricing" || top.Values[1].Value != "/" {
		t.Errorf("top values %+v, want /pricing then /", top.Values)
	}
	for _, bad := range []string{"/api/insights/trends?interval=fortnight", "/api/insights/users?from=" + to + "&to=" + from} {
		if status, _, b := p.do("GET", bad, nil); status != 400 || !strings.Contains(string(b), `"code":"invalid"`) {
			t.Errorf("GET %s: %d %s, want 400", bad, status, b)
		}
	}
}

// getJSON GETs path, expects 200 and decodes the body into v.
func (p *proc) getJSON(path string, v any) {
	p.t.Helper()
	status, _, b := p.do("GET", path, nil)
	if status != 200 {
		p.t.Fatalf("GET %s: %d %s", path, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		p.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

func TestInsightsInChromium(t *testing.T) {
	bin := chromiumPath(t)
	port := freePort(t)
	p := startCairn(t, "", "PORT="+port)
	base := "http://127.0.0.1:" + port
	shots := screenshotDir(t)
	b := startBrowser(t, bin)
	if status, _, body := p.do("POST", "/events", insightEvents(time.Now())); status != 202 {
		t.Fatalf("POST /events: %d %s", status, body)
	}
	p.waitDrained()

	tb := b.newContextTab(base + "/console")
	tb.waitFor(`document.querySelector("[data-signin]")`)
	tb.signInForm("up", "insights@example.com", "insights-horse-7")
	tb.waitFor(`document.querySelector(".tiles")`)
	// The overview links to the view, and so does the menu.
	tb.eval(`document.querySelector('main a[href="/console/insights"]').click()`)
	tb.waitFor(`document.title.startsWith("Insights") && document.querySelector("#funnel table")`)
	var page struct {
		Nav        bool
		Charts     int
		Lines      int
		FunnelRows []string
		Retention  int
		Top        string
	}
	tb.evalInto(&page, `({
		Nav: !!document.querySelector('header nav a[href="/console/insights"][aria-current="page"]'),
		Charts: document.querySelectorAll("svg.chart").length,
		Lines: document.querySelectorAll("#trends svg.chart polyline").length,
		FunnelRows: [...document.querySelectorAll("#funnel tbody tr")].map(r => [...r.querySelectorAll("td")].slice(0, 2).map(td => td.textContent.trim()).join("=")),
		Retention: document.querySelectorAll("#retention tbody tr").length,
		Top: [...document.querySelectorAll("#top tbody tr")].map(r => r.querySelector("td").textContent).join(","),
	})`)
	if !page.Nav || page.Charts != 2 || page.Lines != 4 || page.Retention != 7 || page.Top != "/pricing,/" {
		t.Errorf("insights page %+v", page)
	}
	// The funnel builder: a step with a payload condition and a window.
	tb.eval(`(() => { const f = document.querySelector('form[aria-label="Funnel"]');
		f.steps.value = "session_start, page_view[url=/pricing], add_to_cart, purchase"; f.within.value = "30m"; f.requestSubmit(); })()`)
	tb.waitFor(`location.search.includes("within=30m") && document.querySelectorAll("#funnel tbody tr").length === 4`)
	tb.evalInto(&page.FunnelRows, `[...document.querySelectorAll("#funnel tbody tr")].map(r => [...r.querySelectorAll("td")].slice(0, 2).map(td => td.textContent.trim()).join("="))`)
	if strings.Join(page.FunnelRows, "|") != "1. session_start=20|2. page_view[url=/pricing]=20|3. add_to_cart=12|4. purchase=5" {
		t.Errorf("funnel rows %q", page.FunnelRows)
	}
	// Clicking a step lists example users, each linking to its journey.
	tb.eval(`document.querySelectorAll("#funnel tbody tr a")[3].click()`)
	tb.waitFor(`document.querySelector(".examples li a")`)
	var examples []string
	tb.evalInto(&examples, `[...document.querySelectorAll(".examples li a")].map(a => a.getAttribute("href"))`)
	if len(examples) != 5 || examples[0] != "/console/users/buyer-00" {
		t.Errorf("example users %v, want the 5 buyers' journeys", examples)
	}
	tb.eval(`window.scrollTo(0, 0)`)
	tb.screenshot(shots, "insights", 1280, 2000)
	tb.screenshot(shots, "insights", 400, 3200)
	tb.eval(`document.querySelector(".examples li a").click()`)
	tb.waitFor(`location.pathname === "/console/users/buyer-00" && document.querySelectorAll("ol.events li").length === 5`)
}
