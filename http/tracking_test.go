package http_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/apitest"
	"github.com/cairn-dev/cairn/auth"
	"github.com/cairn-dev/cairn/betterauth"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/pebble"
)

// trackingEnv is a server with sources on an embedded store, a recording
// ingester, Better Auth's CORS middleware (with a trusted origin, to show
// it does not touch /v1/*), and recorded metrics hooks.
type trackingEnv struct {
	url      string
	client   *http.Client // validates every exchange against the OpenAPI document
	ing      *fakeIngester
	store    *pebble.Store
	now      time.Time
	mu       sync.Mutex
	rejected map[string]int // reason → events
	bySource map[string]int // source/outcome → events
	web      cairn.Source   // enabled, unlimited
	off      cairn.Source   // disabled
	slow     cairn.Source   // 1 event/s, burst 2
}

const trustedOrigin = "http://console.example"

func newTrackingEnv(t *testing.T, requireKey bool) *trackingEnv {
	t.Helper()
	st := newPebble(t)
	e := &trackingEnv{ing: &fakeIngester{}, store: st, now: time.Date(2025, 12, 15, 12, 0, 0, 0, time.UTC),
		rejected: map[string]int{}, bySource: map[string]int{}}
	for _, src := range []*cairn.Source{
		{Name: "web", Enabled: true},
		{Name: "off", Enabled: false},
		{Name: "slow", Enabled: true, RateLimit: cairn.RateLimit{EventsPerSecond: 1, Burst: 2}},
	} {
		src.CreatedAt, src.UpdatedAt = e.now, e.now
		if err := st.CreateSource(t.Context(), src); err != nil {
			t.Fatal(err)
		}
	}
	list, err := st.ListSources(t.Context())
	if err != nil || len(list) != 3 {
		t.Fatalf("sources: %v %v", list, err)
	}
	for _, s := range list {
		switch s.Name {
		case "web":
			e.web = s
		case "off":
			e.off = s
		case "slow":
			e.slow = s
		}
	}
	accounts := auth.New(st, auth.Config{})
	api, err := betterauth.New(accounts, betterauth.Config{Secret: "tracking-test-secret-0123456789abcdef",
		TrustedOrigins: []string{trustedOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &cairnhttp.Server{
		Ingester: e.ing, Store: nopStore{}, Sources: st, Accounts: api, RequireWriteKey: requireKey,
		Middleware: []func(http.Handler) http.Handler{api.CORS},
		Now:        func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now },
		OnRejected: func(reason string, n int) { e.mu.Lock(); e.rejected[reason] += n; e.mu.Unlock() },
		OnSourceEvents: func(id, outcome string, n int) {
			e.mu.Lock()
			e.bySource[id+"/"+outcome] += n
			e.mu.Unlock()
		},
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e.url = hs.URL
	e.client = apitest.NewClient(t)
	return e
}

func basic(key string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":")) }

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// send posts body to path with headers (name, value pairs); validate
// checks the exchange against the OpenAPI document.
func (e *trackingEnv) send(t *testing.T, validate bool, method, path string, body []byte, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := http.DefaultClient
	if validate {
		c = e.client
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close() //nolint:errcheck // read to the end
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func (e *trackingEnv) ingested() []cairn.Event {
	e.ing.mu.Lock()
	defer e.ing.mu.Unlock()
	return append([]cairn.Event(nil), e.ing.got...)
}

func (e *trackingEnv) reset() {
	e.ing.mu.Lock()
	e.ing.got, e.ing.err = nil, nil
	e.ing.mu.Unlock()
}

// TestTrackingAPI is the table of the tracking API's rules: auth, bodies,
// limits, errors, per-message rejections and what is ingested.
func TestTrackingAPI(t *testing.T) {
	e := newTrackingEnv(t, false)
	key := e.web.WriteKey
	track := func(id, user string) string {
		return `{"type":"track","event":"Signed Up","userId":"` + user + `","messageId":"` + id + `","timestamp":"2025-12-15T11:00:00Z"}`
	}
	batch := func(items ...string) string { return `{"batch":[` + strings.Join(items, ",") + `]}` }
	big := strings.Repeat("x", 33<<10)
	var many []string
	for i := range 2501 {
		many = append(many, `{"type":"track","event":"e","userId":"u","messageId":"m`+strconv.Itoa(i)+`"}`)
	}

	for _, tc := range []struct {
		name     string
		path     string
		body     []byte
		headers  []string
		noVerify bool // the exchange is outside what the document can describe
		status   int
		contains string   // substring of the response body
		types    []string // types of the ingested events, in order
		ids      []string // their eventIds
	}{
		{name: "BatchBasicAuth", path: "/v1/batch", body: []byte(batch(track("m1", "u1"), `{"type":"identify","userId":"u1","anonymousId":"a1","traits":{"plan":"pro"}}`)),
			headers: []string{"Authorization", basic(key), "Content-Type", "application/json"}, status: 200, contains: `{"success":true}`,
			types: []string{"Signed Up", "$identify"}, ids: []string{"m1", ""}},
		{name: "BodyWriteKey", path: "/v1/batch", body: []byte(`{"writeKey":"` + key + `","batch":[` + track("m2", "u") + `]}`),
			headers: []string{"Content-Type", "application/json"}, status: 200, types: []string{"Signed Up"}, ids: []string{"m2"}},
		{name: "EventWriteKeyTextPlain", path: "/v1/p", body: []byte(`{"type":"page","anonymousId":"a9","name":"Home","writeKey":"` + key + `","messageId":"ajs-1"}`),
			headers: []string{"Content-Type", "text/plain"}, status: 200, types: []string{"$page"}, ids: []string{"ajs-1"}},
		{name: "NoContentType", path: "/v1/track", body: []byte(`{"event":"Clicked","userId":"u"}`),
			headers: []string{"Authorization", basic(key)}, status: 200, types: []string{"Clicked"}, ids: []string{""}},
		{name: "GzipFormContentType", path: "/v1/batch", body: gz(t, batch(track("m3", "u"))), noVerify: true,
			headers: []string{"Authorization", basic(key), "Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "gzip"},
			status:  200, types: []string{"Signed Up"}, ids: []string{"m3"}},
		{name: "GzipJSON", path: "/v1/batch", body: gz(t, batch(track("m4", "u"))),
			headers: []string{"Authorization", basic(key), "Content-Type", "application/json", "Content-Encoding", "gzip"},
			status:  200, types: []string{"Signed Up"}, ids: []string{"m4"}},
		{name: "ShortForms", path: "/v1/b", body: []byte(batch(`{"type":"screen","userId":"u","name":"S"}`, `{"type":"group","userId":"u","groupId":"g"}`, `{"type":"alias","userId":"u","previousId":"a"}`)),
			headers: []string{"Authorization", basic(key)}, status: 200, types: []string{"$screen", "$group", "$alias"}, ids: []string{"", "", ""}},
		{name: "DollarTrackEscaped", path: "/v1/t", body: []byte(`{"event":"$identify","userId":"u"}`),
			headers: []string{"Authorization", basic(key)}, status: 200, types: []string{"$$identify"}, ids: []string{""}},
		{name: "BasicWinsOverBody", path: "/v1/track", body: []byte(`{"event":"e","userId":"u","writeKey":"not-a-key"}`),
			headers: []string{"Authorization", basic(key)}, status: 200, types: []string{"e"}, ids: []string{""}},
		{name: "RejectedListed", path: "/v1/batch", body: []byte(batch(track("ok1", "u"), `{"type":"track","event":"e","messageId":"anon-less"}`, `{"type":"nope","userId":"u"}`)),
			headers: []string{"Authorization", basic(key)}, status: 200,
			contains: `"rejected":[{"index":1,"messageId":"anon-less","reason":"no_user_anon_id"},{"index":2,"reason":"invalid_type"}]`,
			types:    []string{"Signed Up"}, ids: []string{"ok1"}},
		{name: "AllRejected", path: "/v1/identify", body: []byte(`{"traits":{}}`),
			headers: []string{"Authorization", basic(key)}, status: 200, contains: `"reason":"no_user_anon_id"`},
		{name: "NoKey", path: "/v1/batch", body: []byte(batch(track("k", "u"))), status: 401, contains: `"code":"unauthorized"`},
		{name: "UnknownKey", path: "/v1/batch", body: []byte(batch(track("k", "u"))), headers: []string{"Authorization", basic("nope")}, status: 401, contains: "Unknown write key"},
		{name: "UnknownBodyKey", path: "/v1/batch", body: []byte(`{"writeKey":"nope","batch":[]}`), status: 401, contains: "Unknown write key"},
		{name: "Disabled", path: "/v1/batch", body: []byte(batch(track("k", "u"))), headers: []string{"Authorization", basic(e.off.WriteKey)}, status: 401, contains: "disabled"},
		{name: "Malformed", path: "/v1/batch", body: []byte(`{"batch":[`), headers: []string{"Authorization", basic(key)}, status: 400, contains: `"code":"invalid"`},
		{name: "NotObject", path: "/v1/track", body: []byte(`[1]`), headers: []string{"Authorization", basic(key)}, status: 400, contains: `"code":"invalid"`},
		{name: "BadGzip", path: "/v1/batch", body: []byte("not gzip"), headers: []string{"Authorization", basic(key), "Content-Encoding", "gzip"}, status: 400, contains: "gzip"},
		{name: "OtherEncoding", path: "/v1/batch", body: []byte("{}"), headers: []string{"Authorization", basic(key), "Content-Encoding", "br"}, noVerify: true, status: 415},
		{name: "SingleOver32KiB", path: "/v1/track", body: []byte(`{"event":"e","userId":"u","properties":{"x":"` + big + `"}}`),
			headers: []string{"Authorization", basic(key)}, status: 400, contains: `"code":"invalid"`},
		{name: "BatchOver500KiB", path: "/v1/batch", body: []byte(batch(strings.Repeat(`{"type":"track","event":"e","userId":"u","properties":{"x":"`+strings.Repeat("y", 1000)+`"}},`, 600) + track("last", "u"))),
			headers: []string{"Authorization", basic(key)}, status: 400, contains: `"code":"invalid"`},
		{name: "GzipOver500KiBDecoded", path: "/v1/batch", body: gz(t, `{"batch":[],"pad":"`+strings.Repeat("z", 600<<10)+`"}`),
			headers: []string{"Authorization", basic(key), "Content-Encoding", "gzip"}, status: 400, contains: "exceeds"},
		{name: "Over2500Messages", path: "/v1/batch", body: []byte(batch(many...)), headers: []string{"Authorization", basic(key)}, status: 400, contains: `"code":"invalid"`},
		{name: "UnknownCall", path: "/v1/m", body: []byte(`{}`), headers: []string{"Authorization", basic(key)}, status: 404, contains: `"code":"not_found"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.reset()
			resp, body := e.send(t, !tc.noVerify, "POST", tc.path, tc.body, tc.headers...)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.contains) {
				t.Fatalf("%d %s, want %d containing %s", resp.StatusCode, body, tc.status, tc.contains)
			}
			got := e.ingested()
			if len(got) != len(tc.types) {
				t.Fatalf("ingested %d events, want %d: %+v", len(got), len(tc.types), got)
			}
			for i, ev := range got {
				if ev.Type != tc.types[i] || (tc.ids[i] != "" && ev.EventID != tc.ids[i]) || ev.UserID == "" {
					t.Errorf("event %d: type %q id %q user %q, want %q %q", i, ev.Type, ev.EventID, ev.UserID, tc.types[i], tc.ids[i])
				}
			}
		})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rejected["no_user_anon_id"] != 2 || e.rejected["invalid_type"] != 1 {
		t.Errorf("rejections counted %v", e.rejected)
	}
	if e.bySource[e.web.ID+"/rejected"] != 3 || e.bySource[e.web.ID+"/accepted"] < 10 {
		t.Errorf("source metrics %v", e.bySource)
	}
}

// TestTrackingDurableAndIdempotent: the 200 comes only after Ingest
// returned; a spool refusal is 503 + Retry-After; an SDK retry (new
// sentAt, same messageIds) maps to the same eventIds and occurredAt.
func TestTrackingDurableAndIdempotent(t *testing.T) {
	e := newTrackingEnv(t, false)
	auth := []string{"Authorization", basic(e.web.WriteKey)}
	body := func(sentAt string) []byte {
		return []byte(`{"batch":[{"type":"track","event":"Buy","userId":"u","messageId":"node-next-1-abc","timestamp":"2025-12-15T11:59:00.000Z"},` +
			`{"type":"page","anonymousId":"a","messageId":"` + strings.Repeat("é", 70) + `","timestamp":"2025-12-15T11:59:00.000Z"}],"sentAt":"` + sentAt + `"}`)
	}
	e.ing.mu.Lock()
	e.ing.err = &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Backlog full; retry later."}
	e.ing.mu.Unlock()
	resp, out := e.send(t, true, "POST", "/v1/batch", body("2025-12-15T11:59:30.000Z"), auth...)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(out, `"code":"unavailable"`) {
		t.Fatalf("overload: %d %s %v", resp.StatusCode, out, resp.Header)
	}
	if len(e.ingested()) != 0 {
		t.Fatal("events recorded on a refused request")
	}
	e.reset()
	var first []cairn.Event
	for i, sentAt := range []string{"2025-12-15T11:59:30.000Z", "2025-12-15T11:59:45.000Z"} {
		resp, out := e.send(t, true, "POST", "/v1/batch", body(sentAt), auth...)
		if resp.StatusCode != 200 || out != `{"success":true}`+"\n" {
			t.Fatalf("try %d: %d %s", i, resp.StatusCode, out)
		}
		got := e.ingested()
		e.reset()
		if len(got) != 2 {
			t.Fatalf("try %d: %d events", i, len(got))
		}
		if i == 0 {
			first = got
			continue
		}
		for j := range got {
			if got[j].EventID != first[j].EventID || got[j].EventID == "" {
				t.Errorf("event %d: retry id %q, first %q", j, got[j].EventID, first[j].EventID)
			}
		}
	}
	// Skew correction: receivedAt 12:00:00 − (sentAt 11:59:30 − 11:59:00).
	if want := e.now.Add(-30 * time.Second); !first[0].OccurredAt.Equal(want) {
		t.Errorf("occurredAt %v, want %v", first[0].OccurredAt, want)
	}
}

// TestTrackingRateLimit: a source's token bucket counts events; over it is
// 429 with Retry-After and X-RateLimit-Reset and nothing is ingested; the
// bucket refills with time; POST /events with the key shares the bucket.
func TestTrackingRateLimit(t *testing.T) {
	e := newTrackingEnv(t, false)
	auth := []string{"Authorization", basic(e.slow.WriteKey)}
	two := []byte(`{"batch":[{"type":"track","event":"a","userId":"u"},{"type":"track","event":"b","userId":"u"}]}`)
	if resp, out := e.send(t, true, "POST", "/v1/batch", two, auth...); resp.StatusCode != 200 {
		t.Fatalf("first batch: %d %s", resp.StatusCode, out)
	}
	resp, out := e.send(t, true, "POST", "/v1/track", []byte(`{"event":"c","userId":"u"}`), auth...)
	if resp.StatusCode != 429 || !strings.Contains(out, `"code":"rate_limited"`) || resp.Header.Get("Retry-After") != "1" ||
		resp.Header.Get("X-RateLimit-Reset") != strconv.FormatInt(e.now.Unix()+1, 10) {
		t.Fatalf("over the limit: %d %s %v", resp.StatusCode, out, resp.Header)
	}
	ev := []byte(`{"userId":"u","sessionId":"s","type":"page_view"}`)
	if resp, out := e.send(t, true, "POST", "/events", ev, "X-Write-Key", e.slow.WriteKey); resp.StatusCode != 429 {
		t.Fatalf("POST /events shares the bucket: %d %s", resp.StatusCode, out)
	}
	if n := len(e.ingested()); n != 2 {
		t.Fatalf("ingested %d events, want 2", n)
	}
	e.mu.Lock()
	e.now = e.now.Add(time.Second)
	e.mu.Unlock()
	if resp, out := e.send(t, true, "POST", "/v1/track", []byte(`{"event":"c","userId":"u"}`), auth...); resp.StatusCode != 200 {
		t.Fatalf("after a second: %d %s", resp.StatusCode, out)
	}
	// A batch larger than the bucket passes when the bucket is full, then
	// waits for the debt to be repaid.
	e.mu.Lock()
	e.now = e.now.Add(time.Minute)
	e.mu.Unlock()
	five := []byte(`{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","event":"x","userId":"u"},`, 5), ",") + `]}`)
	if resp, out := e.send(t, true, "POST", "/v1/batch", five, auth...); resp.StatusCode != 200 {
		t.Fatalf("big batch on a full bucket: %d %s", resp.StatusCode, out)
	}
	if resp, _ := e.send(t, true, "POST", "/v1/track", []byte(`{"event":"c","userId":"u"}`), auth...); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "4" {
		t.Fatalf("after the big batch: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.bySource[e.slow.ID+"/rate_limited"] != 3 || e.bySource[e.slow.ID+"/accepted"] != 8 || e.rejected["rate_limited"] != 3 {
		t.Errorf("metrics: %v %v", e.bySource, e.rejected)
	}
}

// TestTrackingCORS: any origin, trusted or not, gets the tracking API's own
// CORS answers — no credentials — and Better Auth's policy stays on the
// other routes.
func TestTrackingCORS(t *testing.T) {
	e := newTrackingEnv(t, false)
	for _, origin := range []string{"http://shop.example", trustedOrigin} {
		t.Run(origin, func(t *testing.T) {
			resp, _ := e.send(t, true, "OPTIONS", "/v1/t", nil, "Origin", origin, "Access-Control-Request-Method", "POST",
				"Access-Control-Request-Headers", "authorization,content-type,x-retry-count")
			h := resp.Header
			if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" ||
				h.Get("Access-Control-Allow-Methods") != "POST, OPTIONS" || h.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type, X-Retry-Count" {
				t.Fatalf("preflight: %d %v", resp.StatusCode, h)
			}
			resp, out := e.send(t, true, "POST", "/v1/t", []byte(`{"event":"e","anonymousId":"a"}`), "Origin", origin,
				"Authorization", basic(e.web.WriteKey), "Content-Type", "text/plain", "X-Retry-Count", "0")
			if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("POST: %d %s %v", resp.StatusCode, out, resp.Header)
			}
			resp, _ = e.send(t, true, "POST", "/v1/t", []byte(`{}`), "Origin", origin)
			if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Fatalf("401 without CORS headers cannot be read by the page: %v", resp.Header)
			}
		})
	}
	if resp, _ := e.send(t, true, "OPTIONS", "/v1/nope", nil, "Origin", "http://shop.example", "Access-Control-Request-Method", "POST"); resp.StatusCode != 404 {
		t.Errorf("preflight of an unknown call: %d", resp.StatusCode)
	}
	// Other routes keep Better Auth's policy: credentials for the trusted origin.
	resp, _ := e.send(t, true, "GET", "/health", nil, "Origin", trustedOrigin)
	if resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("GET /health from the trusted origin: %v", resp.Header)
	}
	if resp, _ := e.send(t, true, "GET", "/v1/batch", nil); resp.StatusCode != 405 {
		t.Errorf("GET /v1/batch: %d", resp.StatusCode)
	}
}

// TestEventsWriteKey: POST /events stays anonymous by default, accepts a
// write key in Basic auth or X-Write-Key, refuses unknown or disabled ones,
// and with RequireWriteKey refuses requests without one.
func TestEventsWriteKey(t *testing.T) {
	ev := []byte(`{"userId":"u","sessionId":"s","type":"page_view"}`)
	for _, tc := range []struct {
		name     string
		require  bool
		headers  func(e *trackingEnv) []string
		status   int
		contains string
	}{
		{"Anonymous", false, func(*trackingEnv) []string { return nil }, 202, ""},
		{"BearerIsNotAWriteKey", false, func(*trackingEnv) []string { return []string{"Authorization", "Bearer abc"} }, 202, ""},
		{"Basic", false, func(e *trackingEnv) []string { return []string{"Authorization", basic(e.web.WriteKey)} }, 202, ""},
		{"XWriteKey", false, func(e *trackingEnv) []string { return []string{"X-Write-Key", e.web.WriteKey} }, 202, ""},
		{"UnknownBasic", false, func(*trackingEnv) []string { return []string{"Authorization", basic("nope")} }, 401, "Unknown write key"},
		{"UnknownHeader", false, func(*trackingEnv) []string { return []string{"X-Write-Key", "nope"} }, 401, "Unknown write key"},
		{"Disabled", false, func(e *trackingEnv) []string { return []string{"X-Write-Key", e.off.WriteKey} }, 401, "disabled"},
		{"RequiredMissing", true, func(*trackingEnv) []string { return nil }, 401, "write key is required"},
		{"RequiredPresent", true, func(e *trackingEnv) []string { return []string{"Authorization", basic(e.web.WriteKey)} }, 202, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTrackingEnv(t, tc.require)
			h := append([]string{"Content-Type", "application/json"}, tc.headers(e)...)
			resp, out := e.send(t, true, "POST", "/events", ev, h...)
			if resp.StatusCode != tc.status || !strings.Contains(out, tc.contains) {
				t.Fatalf("%d %s, want %d %q", resp.StatusCode, out, tc.status, tc.contains)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.status == 202]; len(e.ingested()) != want {
				t.Fatalf("ingested %d", len(e.ingested()))
			}
		})
	}
}
