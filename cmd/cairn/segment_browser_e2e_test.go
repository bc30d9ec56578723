package main

// @segment/analytics-next 1.84.3 in headless Chromium against a real Cairn:
// test/segment-clients/browser.html, served by the test from another origin
// (another 127.0.0.1 port), loads the SDK's UMD build from node_modules with
// inline cdnSettings (no CDN) and sends track/identify/page/group calls,
// one request per call (/v1/t, /v1/i, ...) or batched (/v1/b), and once
// into a full backlog: the 503 is retried without duplicates. Since
// analytics-next sends Authorization (Basic write key), every call is
// preflighted: the test watches the DevTools Network events to prove each
// tracking URL was preflighted and answered.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// browserCall is one call of the page's plan: an analytics-next method and
// its arguments.
type browserCall struct {
	Method string `json:"method"`
	Args   []any  `json:"args"`
}

// browserCalls: page and track while anonymous, identify, then track, page
// and group as the identified user.
func browserCalls(ids testIDs) []browserCall {
	return []browserCall{
		{"page", []any{"Docs", "Getting Started", map[string]any{"variant": "B"}}},
		{"track", []any{"Viewed Pricing", map[string]any{"plan": "pro"}}},
		{"identify", []any{ids.User, map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"}}},
		{"track", []any{"Order Completed", map[string]any{"orderId": "o-1001", "revenue": 42.5}}},
		{"page", []any{"Shop", "Checkout"}},
		{"group", []any{ids.Group, map[string]any{"name": "Analytical Engines"}}},
	}
}

// netLog records the browser's requests to Cairn from DevTools Network
// events.
type netLog struct {
	mu        sync.Mutex
	cairn     string              // Cairn's origin: only its requests are kept
	preflight map[string]int      // URL → preflights
	posts     map[string]int      // URL → POSTs
	statuses  map[int]int         // status → responses to POSTs
	types     map[string]string   // requestId → "Preflight" or the method
	failed    map[string][]string // "Preflight" or "POST" → loading errors
	got503    chan struct{}       // signalled when a POST is answered 503
	bodies    []string            // the POST bodies, in order
}

func newNetLog(cairnURL string) *netLog {
	return &netLog{cairn: cairnURL, preflight: map[string]int{}, posts: map[string]int{}, statuses: map[int]int{},
		types: map[string]string{}, failed: map[string][]string{}, got503: make(chan struct{}, 1)}
}

func (n *netLog) event(method string, params json.RawMessage) {
	var ev struct {
		RequestID string `json:"requestId"`
		Type      string `json:"type"`
		Request   struct {
			URL      string `json:"url"`
			Method   string `json:"method"`
			PostData string `json:"postData"`
		} `json:"request"`
		Response struct {
			URL    string `json:"url"`
			Status int    `json:"status"`
		} `json:"response"`
		ErrorText string `json:"errorText"`
	}
	if json.Unmarshal(params, &ev) != nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch method {
	case "Network.requestWillBeSent":
		if !strings.HasPrefix(ev.Request.URL, n.cairn) {
			return
		}
		switch {
		case ev.Type == "Preflight" || ev.Request.Method == http.MethodOptions:
			n.preflight[ev.Request.URL]++
			n.types[ev.RequestID] = "Preflight"
		case ev.Request.Method == http.MethodPost:
			n.posts[ev.Request.URL]++
			n.types[ev.RequestID] = http.MethodPost
			n.bodies = append(n.bodies, ev.Request.PostData)
		}
	case "Network.responseReceived":
		if n.types[ev.RequestID] == http.MethodPost && ev.Type != "Preflight" {
			n.statuses[ev.Response.Status]++
			if ev.Response.Status == http.StatusServiceUnavailable {
				select {
				case n.got503 <- struct{}{}:
				default:
				}
			}
		}
	case "Network.loadingFailed":
		if t, ok := n.types[ev.RequestID]; ok {
			n.failed[t] = append(n.failed[t], ev.ErrorText)
		}
	}
}

// wire returns the messages the browser posted (a retry's copies once),
// in the order first sent, as they went over the wire: analytics-next
// completes a message (userId, context) when it sends it, so the page's
// view of a call may differ.
func (n *netLog) wire(t *testing.T) []sdkMessage {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []sdkMessage
	seen := map[string]bool{}
	for _, body := range n.bodies {
		var b struct {
			Batch []sdkMessage `json:"batch"`
		}
		if err := json.Unmarshal([]byte(body), &b); err != nil {
			t.Fatalf("the browser posted a body that is not JSON (%v): %.200q", err, body)
		}
		if b.Batch == nil {
			var m sdkMessage
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatal(err)
			}
			b.Batch = []sdkMessage{m}
		}
		for _, m := range b.Batch {
			if !seen[m.MessageID] {
				seen[m.MessageID] = true
				m.Index = len(out)
				out = append(out, m)
			}
		}
	}
	return out
}

// runBrowserPlan opens the page (served from its own origin) in a fresh
// headless Chromium, runs the plan against p and returns the messages
// analytics-next reports and what the network log saw.
// While the plan runs (the page awaits deliveries, retries included),
// during(netlog) runs on its own goroutine when not nil.
func runBrowserPlan(t *testing.T, bin, dir string, p *proc, writeKey string, calls []browserCall, batching bool, during func(*netLog)) ([]sdkMessage, *netLog) {
	t.Helper()
	pages := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(pages.Close)
	if pages.URL == p.URL {
		t.Fatal("the page must come from another origin than Cairn")
	}
	cairn, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	netlog := newNetLog(p.URL + "/v1/")
	b := startBrowser(t, bin)
	b.mu.Lock()
	b.onEvent = netlog.event
	b.mu.Unlock()
	page := b.open("about:blank")
	page.b.send(page.session, "Network.enable", map[string]any{}, nil)
	page.b.send(page.session, "Page.navigate", map[string]any{"url": pages.URL + "/browser.html"}, nil)
	page.waitFor(`window.cairnPageReady && window.AnalyticsNext`)
	plan, err := json.Marshal(map[string]any{"apiHost": cairn.Host + "/v1", "writeKey": writeKey, "calls": calls, "batching": batching})
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		AnonymousID string       `json:"anonymousId"`
		Messages    []sdkMessage `json:"messages"`
	}
	if during != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { defer close(done); during(netlog) }()
	}
	page.evalInto(&res, "runPlan("+string(plan)+")")
	if len(res.Messages) != len(calls) || res.AnonymousID == "" {
		t.Fatalf("the page reports %d messages (anonymousId %q), want %d", len(res.Messages), res.AnonymousID, len(calls))
	}
	return res.Messages, netlog
}

func TestE2ESegmentBrowser(t *testing.T) {
	dir := segmentClientsDir(t)
	bin := chromiumPath(t)
	tb := newSDKTable(t, "@segment/analytics-next 1.84.3 (headless Chromium, cross-origin)")

	for _, tc := range []struct {
		name     string
		batching bool
		force503 bool     // fill the backlog so that the batch is refused with 503 first
		binary   bool     // the real binary, not Main in process
		paths    []string // the tracking routes the SDK must have used
	}{
		{"standard, binary", false, false, true, []string{"/v1/p", "/v1/t", "/v1/i", "/v1/g"}},
		{"batching", true, false, false, []string{"/v1/b"}},
		{"503 then retry", true, true, false, []string{"/v1/b"}},
	} {
		t.Run(strings.NewReplacer(" ", "_", ",", "").Replace(tc.name), func(t *testing.T) {
			var p *proc
			switch {
			case tc.force503:
				p = startMain503(t)
			case tc.binary:
				p = startCairn(t, "", "CAIRN_FLUSH_INTERVAL=50ms")
			default:
				p = startMain(t, "", "CAIRN_FLUSH_INTERVAL=50ms")
			}
			p.login()
			src := p.createSource("web", 0, 0)
			ids := newTestIDs("web")
			var during func(*netLog)
			unblocked := make(chan error, 1)
			if tc.force503 {
				p.postFillers(backlogFill)
				// On the 503, 2 more fillers reach the flush size: the
				// backlog is written and the SDK's retry is accepted. This
				// runs while the page awaits its deliveries, so it uses a
				// plain client and reports back instead of failing the test.
				during = func(n *netLog) {
					select {
					case <-n.got503:
					case <-time.After(45 * time.Second):
						unblocked <- fmt.Errorf("no 503 within 45s")
						return
					}
					body := `[{"userId":"filler","sessionId":"s","type":"page_view"},{"userId":"filler","sessionId":"s","type":"page_view"}]`
					resp, err := http.Post(p.URL+"/events", "application/json", strings.NewReader(body))
					if err == nil {
						_ = resp.Body.Close() // only the status matters
						if resp.StatusCode != http.StatusAccepted {
							err = fmt.Errorf("POST /events: %s", resp.Status)
						}
					}
					unblocked <- err
				}
			}
			from := time.Now()
			msgs, netlog := runBrowserPlan(t, bin, dir, p, src.WriteKey, browserCalls(ids), tc.batching, during)
			if tc.force503 {
				if err := <-unblocked; err != nil {
					t.Fatalf("unblocking the backlog after the 503: %v", err)
				}
			}
			// Delivery may end after the calls resolve: wait until every
			// POST was answered and the last answer was a 200.
			waitFor(t, 60*time.Second, "the browser's tracking requests to be answered 200", func() bool {
				netlog.mu.Lock()
				defer netlog.mu.Unlock()
				posts, answered := 0, 0
				for _, n := range netlog.posts {
					posts += n
				}
				for _, n := range netlog.statuses {
					answered += n
				}
				return posts > 0 && answered >= posts && netlog.statuses[http.StatusOK] > 0
			})
			to := time.Now()
			if tc.force503 {
				p.flushRest()
			}
			// What was sent is what went over the wire; it must be what the
			// page's calls report.
			sent := netlog.wire(t)
			var reported, onWire []string
			for _, m := range msgs {
				reported = append(reported, m.MessageID)
				if m.Failed != "" {
					t.Errorf("analytics-next reports message %d (%s) as failed: %s", m.Index, m.MessageID, m.Failed)
				}
			}
			for _, m := range sent {
				onWire = append(onWire, m.MessageID)
				if m.AnonymousID == "" {
					t.Errorf("message %d (%s) has no anonymousId", m.Index, m.Type)
				}
			}
			slices.Sort(reported)
			slices.Sort(onWire)
			if !slices.Equal(reported, onWire) {
				t.Fatalf("the page's calls report messageIds %v, the wire carried %v", reported, onWire)
			}
			msgs = sent
			if !tc.batching && (msgs[0].UserID != "" || msgs[2].UserID != ids.User) {
				t.Errorf("want the calls before identify sent anonymous, the later ones as %s: %+v", ids.User, msgs)
			}
			stored, dups := checkStored(t, p, src, msgs, from, to)

			netlog.mu.Lock()
			defer netlog.mu.Unlock()
			row := sdkRow{Case: tc.name, Sent: len(msgs), Stored: stored, Duplicates: dups, Statuses: maps.Clone(netlog.statuses)}
			for u, n := range netlog.posts {
				row.Requests += n
				if netlog.preflight[u] == 0 {
					t.Errorf("POST %s was not preflighted (the page's origin differs from Cairn's)", u)
				}
			}
			if tc.batching {
				row.Retries = row.Requests - 1 // one batch: every further request is a retry
			}
			tb.add(row)
			for _, path := range tc.paths {
				if netlog.posts[p.URL+path] == 0 {
					t.Errorf("analytics-next did not post to %s; posts: %v", path, netlog.posts)
				}
			}
			switch {
			case tc.force503 && (row.Statuses[http.StatusServiceUnavailable] == 0 || row.Statuses[http.StatusOK] != 1):
				t.Errorf("want a 503, then the retry answered 200: %+v", row)
			case !tc.force503 && row.Statuses[http.StatusOK] != row.Requests:
				t.Errorf("want every tracking request answered 200: %+v", row)
			}
			if len(netlog.failed) > 0 {
				t.Errorf("requests failed in the browser: %v", netlog.failed)
			}
			t.Logf("preflights: %v; posts: %v", netlog.preflight, netlog.posts)
		})
	}
}
