package loadgen_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/loadgen"
)

// fakeCairn is a small in-memory stand-in for Cairn's HTTP API: it validates
// events with the real decoder (http.DecodeEvents), acknowledges them like Cairn, and
// serves journeys with cursor pagination. Faults can be injected.
type fakeCairn struct {
	t *testing.T

	mu       sync.Mutex
	arrivals []time.Time
	events   map[string][]cairn.Event // by user, in arrival order
	ids      map[string]bool
	total    int
	gzipped  int
	invalid  int
	pending  []cairn.Event // acknowledged, not yet visible (async store)

	// Faults.
	dropEvery  int           // acknowledge but never store every n-th event
	dupEvery   int           // store every n-th event twice
	stallFirst time.Duration // first request takes this long
	async      bool          // events become visible only after 25 journey reads
	reads      int
	cookie     string // journey requires this Cookie header when set
	password   string // sign-in password for cookie
	signIns    int
}

func newFake(t *testing.T) *fakeCairn {
	return &fakeCairn{t: t, events: map[string][]cairn.Event{}, ids: map[string]bool{}}
}

func (f *fakeCairn) start(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", f.postEvents)
	mux.HandleFunc("GET /users/{userId}/journey", f.journey)
	mux.HandleFunc("POST /api/auth/sign-in/email", f.signIn)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeCairn) postEvents(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	first := len(f.arrivals) == 0
	f.arrivals = append(f.arrivals, time.Now())
	f.mu.Unlock()
	if first && f.stallFirst > 0 {
		// A simulated slow server, not a wait for a condition: the test
		// measures how the load generator charges this stall to the
		// requests queued behind it.
		select {
		case <-time.After(f.stallFirst):
		case <-r.Context().Done():
		}
	}
	var body io.Reader = r.Body
	gz := r.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", 400)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "read", 400)
		return
	}
	evs, err := cairnhttp.DecodeEvents(data, time.Now(), cairn.NewEventRules(nil, 24*time.Hour))
	if err != nil {
		f.mu.Lock()
		f.invalid++
		f.mu.Unlock()
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"error":"invalid","code":"invalid","details":%q}`, err.Error()) //nolint:errcheck // fake server: a failed write shows up at the client under test
		return
	}
	ids := make([]string, len(evs))
	f.mu.Lock()
	if gz {
		f.gzipped++
	}
	for i, ev := range evs {
		ids[i] = ev.EventID
		f.total++
		if f.dropEvery > 0 && f.total%f.dropEvery == 0 {
			continue
		}
		copies := 1
		if f.dupEvery > 0 && f.total%f.dupEvery == 0 {
			copies = 2
		}
		for range copies {
			if f.async {
				f.pending = append(f.pending, ev)
			} else {
				f.store(ev)
			}
		}
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	out, _ := json.Marshal(map[string]any{"message": "Events accepted for processing", "count": len(ids), "eventIds": ids})
	w.Write(out) //nolint:errcheck // fake server: a failed write shows up at the client under test
}

func (f *fakeCairn) store(ev cairn.Event) {
	f.events[ev.UserID] = append(f.events[ev.UserID], ev)
}

// flush makes pending events visible; f.mu is held.
func (f *fakeCairn) flush() {
	for _, ev := range f.pending {
		f.store(ev)
	}
	f.pending = nil
}

func (f *fakeCairn) signIn(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	if in.Password != f.password {
		w.WriteHeader(401)
		w.Write([]byte(`{"code":"INVALID_EMAIL_OR_PASSWORD"}`)) //nolint:errcheck // fake server: a failed write shows up at the client under test
		return
	}
	f.mu.Lock()
	f.signIns++
	f.mu.Unlock()
	name, value, _ := strings.Cut(f.cookie, "=")
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true})
	w.Write([]byte(`{"redirect":false,"token":"x","user":{}}`)) //nolint:errcheck // fake server: a failed write shows up at the client under test
}

func (f *fakeCairn) journey(w http.ResponseWriter, r *http.Request) {
	if f.cookie != "" && r.Header.Get("Cookie") != f.cookie {
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"unauthorized","code":"unauthorized"}`)) //nolint:errcheck // fake server: a failed write shows up at the client under test
		return
	}
	user := r.PathValue("userId")
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	off := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		off, _ = strconv.Atoi(c)
	}
	f.mu.Lock()
	if f.reads++; f.async && f.reads > 25 {
		f.flush()
	}
	evs := slices.Clone(f.events[user])
	f.mu.Unlock()
	slices.Reverse(evs)
	page := evs[min(off, len(evs)):min(off+limit, len(evs))]
	var next any
	if off+limit < len(evs) {
		next = strconv.Itoa(off + limit)
	}
	if page == nil {
		page = []cairn.Event{}
	}
	out, _ := json.Marshal(map[string]any{"userId": user, "count": len(page), "events": page, "nextCursor": next})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out) //nolint:errcheck // fake server: a failed write shows up at the client under test
}

func run(t *testing.T, cfg loadgen.Config) *loadgen.Result {
	t.Helper()
	r, err := loadgen.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestClosedModelTotalEvents(t *testing.T) {
	f := newFake(t)
	srv := f.start(t)
	res := run(t, loadgen.Config{URL: srv.URL, EventsPerRequest: 7, Concurrency: 4, TotalEvents: 1000, Users: 50})

	// ceil(1000/7) = 143 requests, the last one carrying 6 events.
	if res.Requests != 143 || res.Events != 1000 || res.Status["202"] != 143 {
		t.Errorf("requests %d events %d status %v, want 143, 1000, 202:143", res.Requests, res.Events, res.Status)
	}
	if f.total != 1000 || f.invalid != 0 {
		t.Errorf("server saw %d events (%d invalid), want 1000 valid", f.total, f.invalid)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	if res.Model != "closed" || res.Latency.Count != 143 {
		t.Errorf("model %q latency count %d", res.Model, res.Latency.Count)
	}
	// Generated traffic is varied: many users, every event type, unique ids.
	types := map[string]bool{}
	ids := map[string]bool{}
	users := 0
	for _, evs := range f.events {
		users++
		for _, e := range evs {
			types[e.Type] = true
			if ids[e.EventID] {
				t.Errorf("eventId %s sent twice", e.EventID)
			}
			ids[e.EventID] = true
			if e.EventID == "" || len(e.Payload) < 3 {
				t.Errorf("event without id or payload: %+v", e)
			}
		}
	}
	if len(types) != len(cairn.DefaultEventTypes) || users < 40 {
		t.Errorf("%d event types over %d users, want all %d types and ~50 users", len(types), users, len(cairn.DefaultEventTypes))
	}
}

func TestGzipAndSingleEvents(t *testing.T) {
	f := newFake(t)
	srv := f.start(t)
	res := run(t, loadgen.Config{URL: srv.URL, EventsPerRequest: 1, Concurrency: 2, TotalEvents: 20, Gzip: true})
	if res.Events != 20 || f.gzipped != 20 || f.invalid != 0 {
		t.Errorf("events %d, gzipped requests %d, invalid %d; want 20, 20, 0", res.Events, f.gzipped, f.invalid)
	}
}

func TestOpenModelNeverAheadOfSchedule(t *testing.T) {
	f := newFake(t)
	srv := f.start(t)
	const rate = 200.0
	start := time.Now()
	res := run(t, loadgen.Config{URL: srv.URL, Rate: rate, Concurrency: 8, TotalEvents: 60})
	if res.Requests != 60 || res.Model != "open" {
		t.Fatalf("requests %d model %s, want 60 open", res.Requests, res.Model)
	}
	// Request i is due at start + i/rate: by any time t, at most rate*t+1
	// requests may have arrived (whatever the machine's speed).
	f.mu.Lock()
	arr := slices.Clone(f.arrivals)
	f.mu.Unlock()
	slices.SortFunc(arr, func(a, b time.Time) int { return a.Compare(b) })
	for i, a := range arr {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if a.Before(due.Add(-time.Millisecond)) {
			t.Fatalf("request %d arrived %v before it was due", i, due.Sub(a))
		}
	}
}

func TestOpenModelDurationBound(t *testing.T) {
	f := newFake(t)
	srv := f.start(t)
	res := run(t, loadgen.Config{URL: srv.URL, Rate: 100, Concurrency: 4, Duration: 300 * time.Millisecond})
	// Requests due at 0, 10, ..., 290 ms: exactly 30, none after the end.
	if res.Requests != 30 {
		t.Errorf("requests = %d, want 30 (100/s for 300ms)", res.Requests)
	}
}

func TestOpenModelCountsQueueingDelay(t *testing.T) {
	// One connection, 100 req/s, the first request stalls 300 ms: requests
	// due during the stall wait for it, and the open model must charge that
	// wait to them (no coordinated omission).
	f := newFake(t)
	f.stallFirst = 300 * time.Millisecond
	srv := f.start(t)
	res := run(t, loadgen.Config{URL: srv.URL, Rate: 100, Concurrency: 1, TotalEvents: 50})
	if res.Requests != 50 {
		t.Fatalf("requests = %d, want 50", res.Requests)
	}
	// Requests 0..19 were due at 0..190 ms and sent after 300 ms, so at
	// least 20 of the 50 samples are >= 110 ms and the 31st smallest (the
	// 62nd percentile, nearest rank) is one of them. A slower machine only
	// adds latency.
	if got := res.Hist.Quantile(0.62); got < 100*time.Millisecond {
		t.Errorf("p62 = %v, want >= 100ms: queueing behind the stall was not counted", got)
	}
	if got := res.Hist.Max(); got < 300*time.Millisecond {
		t.Errorf("max = %v, want >= 300ms", got)
	}
}

func TestVerify(t *testing.T) {
	cases := []struct {
		name         string
		setup        func(f *fakeCairn)
		ok           bool
		missing, dup int
	}{
		{name: "OK", setup: func(f *fakeCairn) {}, ok: true},
		{name: "Async", setup: func(f *fakeCairn) { f.async = true }, ok: true},
		{name: "Missing", setup: func(f *fakeCairn) { f.dropEvery = 97 }, missing: 3},
		{name: "Duplicated", setup: func(f *fakeCairn) { f.dupEvery = 50 }, dup: 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			srv := f.start(t)
			r, err := loadgen.New(loadgen.Config{URL: srv.URL, EventsPerRequest: 10, Concurrency: 3,
				TotalEvents: 300, Users: 20, Verify: true, VerifyTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			tc.setup(f)
			res, err := r.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verify
			if v == nil {
				t.Fatal("no verify result")
			}
			if v.OK != tc.ok || v.Missing != tc.missing || v.Duplicated != tc.dup || v.Acknowledged != 300 {
				t.Errorf("verify = %+v, want ok=%v missing=%d duplicated=%d acknowledged=300", v, tc.ok, tc.missing, tc.dup)
			}
			if tc.name == "Async" && v.Pages <= v.Users {
				t.Errorf("async store: %d pages for %d users, want verification to have polled again", v.Pages, v.Users)
			}
			if tc.ok && (v.Found != 300 || v.Users == 0 || v.Pages < v.Users) {
				t.Errorf("verify = %+v, want 300 found over every user", v)
			}
			if tc.missing > 0 && len(v.MissingSample) == 0 {
				t.Error("missing events but no sample")
			}
		})
	}
}

func TestVerifyPaginates(t *testing.T) {
	// 1 user, 2,500 events: the journey takes three pages of 1,000.
	f := newFake(t)
	srv := f.start(t)
	res := run(t, loadgen.Config{URL: srv.URL, EventsPerRequest: 100, Concurrency: 2, TotalEvents: 2500,
		Users: 1, Verify: true, VerifyTimeout: 5 * time.Second})
	if v := res.Verify; !v.OK || v.Found != 2500 || v.Pages != 3 {
		t.Errorf("verify = %+v, want ok with 2500 found in 3 pages", v)
	}
}

func TestVerifySignsIn(t *testing.T) {
	f := newFake(t)
	f.cookie, f.password = "better-auth.session_token=abc.sig", "pw-123456"
	srv := f.start(t)
	res := run(t, loadgen.Config{URL: srv.URL, EventsPerRequest: 5, TotalEvents: 50, Verify: true,
		Auth: loadgen.Auth{Email: "a@example.com", Password: "pw-123456"}})
	if !res.Verify.OK || f.signIns != 1 {
		t.Errorf("verify %+v after %d sign-ins, want ok after 1", res.Verify, f.signIns)
	}

	// A bare cookie value is taken as the session token.
	res = run(t, loadgen.Config{URL: srv.URL, TotalEvents: 5, Verify: true, Auth: loadgen.Auth{Cookie: "abc.sig"}})
	if !res.Verify.OK {
		t.Errorf("verify with --cookie: %+v", res.Verify)
	}

	// Without credentials the journey answers 401 and verification says so.
	res = run(t, loadgen.Config{URL: srv.URL, TotalEvents: 5, Verify: true, VerifyTimeout: 500 * time.Millisecond})
	if res.Verify.OK || !strings.Contains(res.Verify.Error, "401") {
		t.Errorf("verify without auth = %+v, want a 401 error", res.Verify)
	}

	// Wrong password fails the run up front.
	r, err := loadgen.New(loadgen.Config{URL: srv.URL, TotalEvents: 5, Verify: true,
		Auth: loadgen.Auth{Email: "a@example.com", Password: "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Run with a bad password: err = %v, want a 401 sign-in error", err)
	}
}

func TestJourneyMode(t *testing.T) {
	f := newFake(t)
	srv := f.start(t)
	run(t, loadgen.Config{URL: srv.URL, EventsPerRequest: 50, TotalEvents: 1000, Users: 5})
	res := run(t, loadgen.Config{URL: srv.URL, Mode: loadgen.ModeJourney, TotalEvents: 40, Users: 5, JourneyLimit: 100})
	if res.Requests != 40 || res.Status["200"] != 40 {
		t.Errorf("journey requests %d status %v, want 40 x 200", res.Requests, res.Status)
	}
	// Each of the 5 users has ~200 events, so every read returns a full page.
	if res.Events != 40*100 {
		t.Errorf("events read = %d, want %d", res.Events, 40*100)
	}
}

func TestErrorsAndStatuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // fake server: only drains the request
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(503)
	}))
	t.Cleanup(srv.Close)
	res := run(t, loadgen.Config{URL: srv.URL, TotalEvents: 10})
	if res.Status["503"] != 10 || res.Events != 0 {
		t.Errorf("status %v events %d, want 10 x 503 and no acknowledged events", res.Status, res.Events)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	res = run(t, loadgen.Config{URL: url, TotalEvents: 3})
	if res.Errors["connection refused"] != 3 {
		t.Errorf("errors = %v, want 3 x connection refused", res.Errors)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]loadgen.Config{
		"NoURL":         {TotalEvents: 1},
		"NoBound":       {URL: "http://127.0.0.1:1"},
		"TooBig":        {URL: "http://127.0.0.1:1", TotalEvents: 1, EventsPerRequest: 1001},
		"VerifyJourney": {URL: "http://127.0.0.1:1", TotalEvents: 1, Mode: loadgen.ModeJourney, Verify: true},
		"BadMode":       {URL: "http://127.0.0.1:1", TotalEvents: 1, Mode: "x"},
	} {
		if _, err := loadgen.New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

// TestSpreadsOverURLs: with several URLs (ingest nodes of one cluster) the
// requests are spread evenly over all of them.
func TestSpreadsOverURLs(t *testing.T) {
	fakes := []*fakeCairn{newFake(t), newFake(t), newFake(t)}
	var urls []string
	for _, f := range fakes {
		urls = append(urls, f.start(t).URL)
	}
	res := run(t, loadgen.Config{URL: urls[0], URLs: urls[1:], EventsPerRequest: 5, Concurrency: 3, TotalEvents: 300})
	if res.Status["202"] != 60 {
		t.Fatalf("status %v, want 60 × 202", res.Status)
	}
	for i, f := range fakes {
		f.mu.Lock()
		n := f.total
		f.mu.Unlock()
		if n != 100 {
			t.Errorf("node %d got %d events, want 100 (a third)", i, n)
		}
	}
}
