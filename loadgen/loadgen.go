// Package loadgen is Cairn's traffic generator: it drives POST /events (or
// the Segment-compatible POST /v1/batch, or GET /users/{id}/journey) on any
// Cairn URL with realistic events from many users and sessions, and reports
// throughput, latency percentiles and status codes.
//
// Two load models:
//
//   - open (Rate > 0): request i is due at start + i/Rate whatever happened
//     to earlier requests, and its latency is measured from that due time, so
//     a stalled server shows up as latency instead of being hidden by the
//     generator slowing down (coordinated omission). Concurrency only bounds
//     the requests in flight.
//   - closed (Rate == 0): Concurrency workers each send their next request as
//     soon as the previous one is answered: maximum throughput.
//
// Every event carries a client-side eventId (runID-request-index), so Verify
// can prove afterwards, through the journey API, that each acknowledged event
// is stored exactly once.
package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Mode selects the kind of request a run sends.
type Mode string

// Modes.
const (
	// ModeIngest posts events to POST /events.
	ModeIngest Mode = "ingest"
	// ModeJourney reads GET /users/{id}/journey for random users.
	ModeJourney Mode = "journey"
	// ModeSegment posts the same events as Segment track messages (with
	// messageIds) to POST /v1/batch, authenticated with Config.WriteKey as
	// the HTTP Basic user name.
	ModeSegment Mode = "segment"
)

// Auth says how to authenticate journey reads (POST /events needs none).
type Auth struct {
	// Cookie is a session cookie: "name=value", or a bare token taken as
	// better-auth.session_token.
	Cookie string
	// Token is sent as "Authorization: Bearer <token>".
	Token string
	// Email and Password sign in through POST /api/auth/sign-in/email before
	// the run when Cookie and Token are empty.
	Email, Password string
}

// Config describes one run.
type Config struct {
	// URL is the base URL of the Cairn server, e.g. http://127.0.0.1:3000.
	URL string
	// URLs are more base URLs of the same cluster (multi-node ingest):
	// requests are spread over URL and URLs round-robin by request number.
	// Authentication and verification use URL.
	URLs []string
	// Mode is ModeIngest (default) or ModeJourney.
	Mode Mode
	// EventsPerRequest is the number of events per POST (1 = one JSON
	// object; more = an array). Default 1.
	EventsPerRequest int
	// Concurrency is the number of workers, and so of connections and
	// requests in flight. Default 16.
	Concurrency int
	// Rate is the fixed request rate (requests/s) of the open model; 0 runs
	// the closed model at maximum throughput.
	Rate float64
	// Duration bounds the run; TotalEvents bounds the events sent (journey
	// mode: requests). At least one must be set; the first reached ends the
	// run.
	Duration    time.Duration
	TotalEvents int64
	// Gzip compresses request bodies (Content-Encoding: gzip).
	Gzip bool
	// Users and SessionsPerUser size the population events are drawn from
	// (defaults 1000 and 3). User n is UserPrefix+n (default "user-").
	Users           int
	SessionsPerUser int
	UserPrefix      string
	// JourneyLimit is the limit of journey reads (default 100).
	JourneyLimit int
	// Verify records every acknowledged eventId and checks after the run
	// that each is stored exactly once (ingest mode only).
	Verify bool
	// VerifyTimeout bounds how long verification waits for the batcher to
	// store every acknowledged event (default 60s).
	VerifyTimeout time.Duration
	// Auth authenticates journey reads.
	Auth Auth
	// WriteKey is the source write key of segment mode (required there).
	WriteKey string
	// Timeout bounds each request of the default client (default 30s).
	Timeout time.Duration
	// Seed makes the generated traffic reproducible (0 = random).
	Seed uint64
	// RunID prefixes every eventId (default: random 8 hex digits).
	RunID string
	// Client overrides the HTTP client (default: one tuned for Concurrency
	// keep-alive connections).
	Client *http.Client
}

// base returns the base URL request i goes to.
func (c *Config) base(i int64) string {
	if len(c.URLs) == 0 {
		return c.URL
	}
	if k := i % int64(len(c.URLs)+1); k > 0 {
		return c.URLs[k-1]
	}
	return c.URL
}

func (c *Config) setDefaults() error {
	if c.URL == "" {
		return errors.New("loadgen: URL is required")
	}
	if _, err := url.Parse(c.URL); err != nil {
		return fmt.Errorf("loadgen: bad URL: %w", err)
	}
	c.URL = strings.TrimRight(c.URL, "/")
	for i, u := range c.URLs {
		if _, err := url.Parse(u); err != nil {
			return fmt.Errorf("loadgen: bad URL: %w", err)
		}
		c.URLs[i] = strings.TrimRight(u, "/")
	}
	if c.Mode == "" {
		c.Mode = ModeIngest
	}
	if c.Mode != ModeIngest && c.Mode != ModeJourney && c.Mode != ModeSegment {
		return fmt.Errorf("loadgen: unknown mode %q", c.Mode)
	}
	if c.Mode == ModeSegment && c.WriteKey == "" {
		return errors.New("loadgen: segment mode needs a write key")
	}
	if c.EventsPerRequest <= 0 {
		c.EventsPerRequest = 1
	}
	if c.EventsPerRequest > 1000 {
		return errors.New("loadgen: at most 1000 events per request")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Rate < 0 {
		return errors.New("loadgen: rate must not be negative")
	}
	if c.Duration <= 0 && c.TotalEvents <= 0 {
		return errors.New("loadgen: set a duration or a total number of events")
	}
	if c.Users <= 0 {
		c.Users = 1000
	}
	if c.SessionsPerUser <= 0 {
		c.SessionsPerUser = 3
	}
	if c.UserPrefix == "" {
		c.UserPrefix = "user-"
	}
	if c.JourneyLimit <= 0 {
		c.JourneyLimit = 100
	}
	if c.VerifyTimeout <= 0 {
		c.VerifyTimeout = 60 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			c.Seed = c.Seed<<8 | uint64(x)
		}
	}
	if c.RunID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.RunID = "lg" + hex.EncodeToString(b[:])
	}
	if c.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = c.Concurrency * 2
		tr.MaxIdleConnsPerHost = c.Concurrency * 2
		tr.DisableCompression = true
		c.Client = &http.Client{Transport: tr, Timeout: c.Timeout}
	}
	return nil
}

// Progress is a live snapshot of a run.
type Progress struct {
	Elapsed  time.Duration
	Requests int64 // answered or failed
	Events   int64 // acknowledged (2xx)
	Non2xx   int64
	Errors   int64 // transport errors
	// Verifying is set once the traffic is over and verification runs.
	Verifying bool
}

// Result is the outcome of a run.
type Result struct {
	Mode             Mode             `json:"mode"`
	Model            string           `json:"model"` // "open" or "closed"
	URL              string           `json:"url"`
	RunID            string           `json:"runId"`
	EventsPerRequest int              `json:"eventsPerRequest"`
	Concurrency      int              `json:"concurrency"`
	TargetRate       float64          `json:"targetRequestsPerSec,omitempty"`
	Gzip             bool             `json:"gzip"`
	ElapsedSec       float64          `json:"elapsedSec"`
	Requests         int64            `json:"requests"`
	Events           int64            `json:"events"` // acknowledged events (journey mode: events read)
	RequestsPerSec   float64          `json:"requestsPerSec"`
	EventsPerSec     float64          `json:"eventsPerSec"`
	BytesSent        int64            `json:"bytesSent"`
	Latency          Latency          `json:"latency"`
	Status           map[string]int64 `json:"status"` // by HTTP status code
	Errors           map[string]int64 `json:"errors,omitempty"`
	Verify           *VerifyResult    `json:"verify,omitempty"`

	// Hist is the full latency histogram (all requests).
	Hist *Histogram `json:"-"`
}

// Runner runs one load test. Create it with New, then call Run once;
// Progress may be called concurrently.
type Runner struct {
	cfg    Config
	start  atomic.Int64 // unix nanos
	next   atomic.Int64 // next request index
	reqs   atomic.Int64
	events atomic.Int64
	non2xx atomic.Int64
	errs   atomic.Int64
	end    atomic.Int64 // unix nanos when the traffic ended
	verify atomic.Bool
}

// New validates cfg, fills in defaults and returns a Runner.
func New(cfg Config) (*Runner, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Verify && cfg.Mode != ModeIngest {
		return nil, errors.New("loadgen: verify works in ingest mode only")
	}
	return &Runner{cfg: cfg}, nil
}

// Config returns the configuration with defaults filled in.
func (r *Runner) Config() Config { return r.cfg }

// Progress returns a snapshot of the run so far.
func (r *Runner) Progress() Progress {
	var el time.Duration
	if s := r.start.Load(); s != 0 {
		end := time.Now()
		if e := r.end.Load(); e != 0 {
			end = time.Unix(0, e)
		}
		el = end.Sub(time.Unix(0, s))
	}
	return Progress{Elapsed: el, Requests: r.reqs.Load(), Events: r.events.Load(),
		Non2xx: r.non2xx.Load(), Errors: r.errs.Load(), Verifying: r.verify.Load()}
}

// worker holds one worker's private state, merged into the Result at the end.
type worker struct {
	r      *Runner
	gen    *generator
	hist   *Histogram
	status map[int]int64
	errs   map[string]int64
	acked  []Ack
	ids    []Ack
	bytes  int64
	timer  *time.Timer
	gz     *gzip.Writer
	gzbuf  bytes.Buffer
	auth   func(*http.Request)
}

// Run sends the traffic and returns the result. It stops early, returning
// what was measured so far, when ctx is done. Verification (if configured)
// runs after the traffic and is bounded by VerifyTimeout.
func (r *Runner) Run(ctx context.Context) (*Result, error) {
	cfg := &r.cfg
	var auth func(*http.Request)
	if cfg.Mode == ModeJourney || cfg.Verify {
		var err error
		if auth, err = Authenticate(ctx, cfg.Client, cfg.URL, cfg.Auth); err != nil {
			return nil, err
		}
	}

	totalReqs := int64(-1)
	if cfg.TotalEvents > 0 {
		per := int64(cfg.EventsPerRequest)
		if cfg.Mode == ModeJourney {
			per = 1
		}
		totalReqs = (cfg.TotalEvents + per - 1) / per
	}
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	r.start.Store(start.UnixNano())

	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{r: r, hist: NewHistogram(), status: map[int]int64{}, errs: map[string]int64{},
			gen:  newGenerator(cfg.Seed, i, cfg.RunID, cfg.UserPrefix, cfg.Users, cfg.SessionsPerUser),
			auth: auth}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, start, deadline, totalReqs)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r.end.Store(start.Add(elapsed).UnixNano())

	res := &Result{Mode: cfg.Mode, Model: "closed", URL: cfg.URL, RunID: cfg.RunID,
		EventsPerRequest: cfg.EventsPerRequest, Concurrency: cfg.Concurrency, Gzip: cfg.Gzip,
		ElapsedSec: elapsed.Seconds(), Status: map[string]int64{}, Errors: map[string]int64{}, Hist: NewHistogram()}
	if cfg.Rate > 0 {
		res.Model, res.TargetRate = "open", cfg.Rate
	}
	var acked []Ack
	for _, w := range workers {
		res.Hist.Merge(w.hist)
		for k, v := range w.status {
			res.Status[strconv.Itoa(k)] += v
		}
		for k, v := range w.errs {
			res.Errors[k] += v
		}
		res.BytesSent += w.bytes
		acked = append(acked, w.acked...)
	}
	res.Requests = r.reqs.Load()
	res.Events = r.events.Load()
	res.RequestsPerSec = float64(res.Requests) / elapsed.Seconds()
	res.EventsPerSec = float64(res.Events) / elapsed.Seconds()
	res.Latency = res.Hist.Summary()

	if cfg.Verify {
		r.verify.Store(true)
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.VerifyTimeout)
		defer cancel()
		res.Verify = Verify(vctx, cfg.Client, cfg.URL, cfg.RunID, acked, auth)
	}
	return res, nil
}

// loop sends requests until the run ends.
func (w *worker) loop(ctx context.Context, start, deadline time.Time, totalReqs int64) {
	cfg := &w.r.cfg
	var interval float64
	if cfg.Rate > 0 {
		interval = float64(time.Second) / cfg.Rate
	}
	for ctx.Err() == nil {
		i := w.r.next.Add(1) - 1
		if totalReqs >= 0 && i >= totalReqs {
			return
		}
		var due time.Time
		if interval > 0 {
			due = start.Add(time.Duration(float64(i) * interval))
			if !deadline.IsZero() && !due.Before(deadline) {
				return
			}
			if !w.sleepUntil(ctx, due) {
				return
			}
		} else {
			due = time.Now()
			if !deadline.IsZero() && !due.Before(deadline) {
				return
			}
		}
		n := cfg.EventsPerRequest
		if cfg.TotalEvents > 0 && cfg.Mode != ModeJourney {
			n = int(min(int64(n), cfg.TotalEvents-i*int64(n)))
		}
		w.do(ctx, i, n, due)
	}
}

// sleepUntil waits for t; it returns false if ctx ended first.
func (w *worker) sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// do sends request i carrying n events and records its outcome; latency is
// measured from due.
func (w *worker) do(ctx context.Context, i int64, n int, due time.Time) {
	cfg := &w.r.cfg
	req, err := w.request(ctx, i, n)
	if err != nil {
		w.fail(err)
		return
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // the run was cancelled: not a server failure
		}
		w.hist.Record(time.Since(due))
		w.fail(err)
		return
	}
	var body []byte
	if cfg.Verify && resp.StatusCode == http.StatusAccepted || cfg.Mode == ModeJourney && resp.StatusCode == http.StatusOK {
		body, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close() //nolint:errcheck // the body was read to the end (or is abandoned); closing it only releases the connection
	lat := time.Since(due)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		w.hist.Record(lat)
		w.fail(err)
		return
	}
	w.hist.Record(lat)
	w.status[resp.StatusCode]++
	w.r.reqs.Add(1)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		w.r.non2xx.Add(1)
		return
	}
	switch {
	case cfg.Mode == ModeJourney:
		var page struct {
			Count int `json:"count"`
		}
		if json.Unmarshal(body, &page) != nil {
			w.errs["bad journey body"]++
			return
		}
		w.r.events.Add(int64(page.Count))
	case cfg.Verify:
		if msg := checkAck(body, w.ids); msg != "" {
			w.errs[msg]++
			return
		}
		w.acked = append(w.acked, w.ids...)
		w.r.events.Add(int64(n))
	default:
		w.r.events.Add(int64(n))
	}
}

// checkAck checks that a 202 body lists exactly the eventIds sent.
func checkAck(body []byte, ids []Ack) string {
	var ack struct {
		Count    int      `json:"count"`
		EventIDs []string `json:"eventIds"`
	}
	if err := json.Unmarshal(body, &ack); err != nil {
		return "bad 202 body"
	}
	if ack.Count != len(ids) || len(ack.EventIDs) != len(ids) {
		return "202 count mismatch"
	}
	for k, id := range ack.EventIDs {
		if id != ids[k].EventID {
			return "202 eventId mismatch"
		}
	}
	return ""
}

func (w *worker) request(ctx context.Context, i int64, n int) (*http.Request, error) {
	cfg := &w.r.cfg
	if cfg.Mode == ModeJourney {
		u := w.gen.rng.IntN(cfg.Users)
		target := cfg.base(i) + "/users/" + url.PathEscape(userID(cfg.UserPrefix, u)) + "/journey?limit=" + strconv.Itoa(cfg.JourneyLimit)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, err
		}
		if w.auth != nil {
			w.auth(req)
		}
		return req, nil
	}
	var body []byte
	path := "/events"
	if cfg.Mode == ModeSegment {
		path = "/v1/batch"
		body = w.gen.segmentBody(i, n, time.Now())
	} else {
		body, w.ids = w.gen.body(i, n, time.Now(), cfg.Verify, w.ids[:0])
	}
	if cfg.Gzip {
		w.gzbuf.Reset()
		if w.gz == nil {
			w.gz = gzip.NewWriter(&w.gzbuf)
		} else {
			w.gz.Reset(&w.gzbuf)
		}
		if _, err := w.gz.Write(body); err != nil {
			return nil, err
		}
		if err := w.gz.Close(); err != nil {
			return nil, err
		}
		body = w.gzbuf.Bytes()
	}
	w.bytes += int64(len(body))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.base(i)+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.Mode == ModeSegment {
		req.SetBasicAuth(cfg.WriteKey, "")
	}
	if cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	return req, nil
}

func (w *worker) fail(err error) {
	w.r.errs.Add(1)
	w.r.reqs.Add(1)
	w.errs[classify(err)]++
}

// classify names a transport error briefly, without addresses, so equal
// failures group together.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by server"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// SortedStatus returns the status codes of res in ascending order.
func (res *Result) SortedStatus() []string {
	keys := make([]string, 0, len(res.Status))
	for k := range res.Status {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
