package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
)

// fakeIngester records what it accepts (a unit-test double).
type fakeIngester struct {
	mu     sync.Mutex
	got    []cairn.Event
	err    error
	stats  cairn.IngestStats
	nextID int
}

func (f *fakeIngester) Ingest(ctx context.Context, events []cairn.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	for i := range events {
		if events[i].EventID == "" {
			f.nextID++
			events[i].EventID = fmt.Sprintf("gen-%d", f.nextID)
		}
	}
	f.got = append(f.got, events...)
	return nil
}

func (f *fakeIngester) Stats() cairn.IngestStats { return f.stats }

// nopStore is an empty EventStore (a unit-test double).
type nopStore struct{ pingErr error }

func (nopStore) InsertEvents(context.Context, []cairn.Event) (cairn.InsertResult, error) {
	return cairn.InsertResult{}, nil
}
func (nopStore) Journey(_ context.Context, q cairn.JourneyQuery) (*cairn.JourneyPage, error) {
	return &cairn.JourneyPage{Events: []cairn.Event{}}, nil
}
func (nopStore) CountEvents(context.Context) (int64, error) { return 0, nil }
func (nopStore) ExportEvents(context.Context, string, func(*cairn.Event) error) error {
	return nil
}
func (s nopStore) Ping(context.Context) error { return s.pingErr }
func (nopStore) Close() error                 { return nil }

// newServer returns a Server on ing and store with a fixed clock
// (TestRejectReasons covers OnRejected).
func newServer(ing *fakeIngester, store cairn.EventStore) *cairnhttp.Server {
	return &cairnhttp.Server{
		Ingester: ing, Store: store,
		Now: func() time.Time { return time.Date(2025, 12, 15, 12, 0, 0, 0, time.UTC) },
	}
}

func post(t *testing.T, h http.Handler, body []byte, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", "/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPostEvents(t *testing.T) {
	ev := `{"userId":"u","sessionId":"s","type":"page_view"}`
	gzipped := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	hugeGzip := gzipped("[" + strings.Repeat(" ", 9<<20) + "]")
	cases := []struct {
		name    string
		body    []byte
		headers []string
		status  int
		count   int
	}{
		{"Single", []byte(ev), nil, 202, 1},
		{"Batch", []byte("[" + ev + "," + ev + "]"), nil, 202, 2},
		{"TextPlain", []byte(ev), []string{"Content-Type", "text/plain;charset=UTF-8"}, 202, 1},
		{"NoContentType", []byte(ev), []string{"Content-Type", ""}, 202, 1},
		{"Gzip", gzipped(ev), []string{"Content-Encoding", "gzip"}, 202, 1},
		{"Max1000", []byte("[" + strings.TrimSuffix(strings.Repeat(ev+",", 1000), ",") + "]"), nil, 202, 1000},
		{"Over1000", []byte("[" + strings.TrimSuffix(strings.Repeat(ev+",", 1001), ",") + "]"), nil, 413, 0},
		{"GzipBomb", hugeGzip, []string{"Content-Encoding", "gzip"}, 413, 0},
		{"Empty", []byte(""), nil, 400, 0},
		{"Whitespace", []byte("  \n"), nil, 400, 0},
		{"Scalar", []byte(`"x"`), nil, 400, 0},
		{"Null", []byte(`null`), nil, 400, 0},
		{"TrailingGarbage", []byte(ev + "x"), nil, 400, 0},
		{"FormEncoded", []byte(ev), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, 0},
		{"Deflate", []byte(ev), []string{"Content-Encoding", "deflate"}, 415, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ing := &fakeIngester{}
			s := newServer(ing, nopStore{})
			rec := post(t, s.Handler(), tc.body, tc.headers...)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || rec.Header().Get("X-Request-Id") == "" {
				t.Fatalf("headers: %v", rec.Header())
			}
			if len(ing.got) != tc.count {
				t.Fatalf("ingested %d events, want %d", len(ing.got), tc.count)
			}
			if tc.status == 202 {
				var body cairnhttp.AcceptedResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Message != "Events accepted for processing" || body.Count != tc.count || len(body.EventIDs) != tc.count {
					t.Fatalf("body = %s (%v)", rec.Body, err)
				}
			}
		})
	}
}

func TestPostEventsUnavailable(t *testing.T) {
	ing := &fakeIngester{err: &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Backlog full."}}
	s := newServer(ing, nopStore{})
	rec := post(t, s.Handler(), []byte(`{"userId":"u","sessionId":"s","type":"page_view"}`))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("got %d Retry-After=%q", rec.Code, rec.Header().Get("Retry-After"))
	}
	var body cairnhttp.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code != "unavailable" {
		t.Fatalf("body = %s (%v)", rec.Body, err)
	}
}

func TestRequestIDEchoedOrGenerated(t *testing.T) {
	s := newServer(&fakeIngester{}, nopStore{})
	req := httptest.NewRequest("GET", "/health", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("X-Request-Id = %q, want echo", got)
	}
	req.Header.Set("X-Request-Id", "bad id\n")
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Fatalf("X-Request-Id = %q, want a generated id", got)
	}
}

func TestHealthDegradedWhenStoreDown(t *testing.T) {
	s := newServer(&fakeIngester{stats: cairn.IngestStats{Backlog: 7}}, nopStore{pingErr: cairn.Errorf(cairn.EUNAVAILABLE, "down")})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	var h cairnhttp.HealthResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || rec.Code != 503 || h.Status != "degraded" || h.Database != "disconnected" || h.BufferSize != 7 {
		t.Fatalf("got %d %s (%v)", rec.Code, rec.Body, err)
	}
	s = newServer(&fakeIngester{}, nopStore{})
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || rec.Code != 200 || h.Status != "ok" || h.Database != "connected" {
		t.Fatalf("got %d %s (%v)", rec.Code, rec.Body, err)
	}
}

func TestObserveRequestSeesRoutePattern(t *testing.T) {
	var routes []string
	s := &cairnhttp.Server{Ingester: &fakeIngester{}, Store: nopStore{},
		ObserveRequest: func(route string, status int, d time.Duration) {
			routes = append(routes, fmt.Sprintf("%s %d", route, status))
		}}
	for _, path := range []string{"/users/abc/journey", "/nope"} {
		s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	want := []string{"GET /users/{userId}/journey 200", "unmatched 404"}
	if fmt.Sprint(routes) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", routes, want)
	}
}

// FuzzDecodeEvents fuzzes the decoder production runs: any body gives
// events or a 4xx-class error, never a panic or an internal error; only
// valid JSON is accepted; every accepted event is normalized, survives the
// journey JSON and spool binary encodings, and re-encoded decodes to itself.
func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`[{"userId":"u","sessionId":"s","type":"page_view"}]`))
	f.Add([]byte(`{"userId":"u","sessionId":"s","type":"search","payload":{"q":[1,{"a":null}]}}`))
	f.Add([]byte(`[[],{},1,"x",null]`))
	f.Add([]byte(`  [ ]  `))
	f.Add([]byte(`{"userId":"u","sessionId":"s","type":"page_view","payload":{"url":"/"},"occurredAt":"2025-12-15T10:30:00Z","eventId":"e-1"}`))
	f.Add([]byte(`{"userId":"u","sessionId":"s","type":"purchase","occurredAt":1765794600000}`))
	f.Add([]byte(`{"userId":"\u0000","sessionId":" ","type":null,"payload":[]}`))
	f.Add([]byte(`{"userId":"u","sessionId":"s","type":"search","occurredAt":"2025-12-15"}`))
	f.Add([]byte(`{"UserId":"u","sessionId":"s","type":"search","user\u0049d":"v"}`))
	now := time.Date(2025, 12, 15, 12, 0, 0, 0, time.UTC)
	rules := cairn.NewEventRules(nil, 24*time.Hour)
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := cairnhttp.DecodeEvents(body, now, rules)
		if err != nil {
			switch cairn.ErrorCode(err) {
			case cairn.EINVALID, cairn.ETOOLARGE:
			default:
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > cairnhttp.MaxEventsPerRequest {
			t.Fatalf("%d events accepted", len(evs))
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		// Each accepted event, re-encoded, decodes to itself.
		for i, e := range evs {
			checkAccepted(t, e)
			if e.EventID == "" {
				e.EventID = "assigned-by-server"
			}
			again, err := cairnhttp.DecodeEvents(e.AppendJSON(nil), now, rules)
			if err != nil {
				t.Fatalf("event %d re-encoded is refused: %v", i, err)
			}
			g := again[0]
			if g.EventID != e.EventID || g.UserID != e.UserID || g.SessionID != e.SessionID || g.Type != e.Type ||
				!g.OccurredAt.Equal(e.OccurredAt) || string(g.Payload) != string(e.Payload) {
				t.Fatalf("event %d round trip: %+v != %+v", i, g, e)
			}
		}
	})
}

// BenchmarkDecodeEvents decodes and validates a 100-event batch.
func BenchmarkDecodeEvents(b *testing.B) {
	var evs []string
	for i := range 100 {
		evs = append(evs, fmt.Sprintf(`{"eventId":"evt-%d","userId":"user-%d","sessionId":"sess-%d","type":"page_view","payload":{"url":"/products/%d","referrer":"https://example.com/search?q=shoes","items":[1,2,3],"price":19.99},"occurredAt":"2025-12-15T10:30:00.000Z"}`, i, i%10, i%3, i))
	}
	body := []byte("[" + strings.Join(evs, ",") + "]")
	now := time.Date(2025, 12, 15, 12, 0, 0, 0, time.UTC)
	rules := cairn.NewEventRules(nil, 24*time.Hour)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cairnhttp.DecodeEvents(body, now, rules); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPostEventsRejectReason: the handler reports why Ingest failed from the
// error itself (cairn.RejectReason), not from the ingester's stats; the
// status and body stay 503 "unavailable".
func TestPostEventsRejectReason(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		reason string
	}{
		{"BacklogFull", &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Backlog full.", Err: cairn.ErrBacklogFull}, cairn.RejectBacklogFull},
		{"SpoolFailed", &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Spool unavailable.", Err: fmt.Errorf("%w: disk full", cairn.ErrSpoolFailed)}, cairn.RejectSpoolError},
		{"Closed", &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Shutting down.", Err: cairn.ErrIngestClosed}, cairn.RejectClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			s := &cairnhttp.Server{Ingester: &fakeIngester{err: tc.err}, Store: nopStore{},
				OnRejected: func(reason string, n int) { got = append(got, reason) }}
			rec := post(t, s.Handler(), []byte(`{"userId":"u","sessionId":"s","type":"page_view"}`))
			var body cairnhttp.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 503 || body.Code != cairn.EUNAVAILABLE {
				t.Fatalf("got %d %s (%v), want 503 unavailable", rec.Code, rec.Body, err)
			}
			if len(got) != 1 || got[0] != tc.reason {
				t.Fatalf("reasons %v, want [%s]", got, tc.reason)
			}
		})
	}
}

// TestUnavailableLogRateLimited sends many requests refused with 503 (the
// spool failing on a full disk) and checks that they do not each log a
// WARN line: one line per interval, with the count of the others.
func TestUnavailableLogRateLimited(t *testing.T) {
	var buf bytes.Buffer
	ing := &fakeIngester{err: &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Spool unavailable; retry later.", Err: cairn.ErrSpoolFailed}}
	s := newServer(ing, nopStore{})
	s.Logger = slog.New(slog.NewJSONHandler(&syncWriter{w: &buf}, nil))
	h := s.Handler()
	for range 500 {
		if rec := post(t, h, []byte(`{"userId":"u","sessionId":"s","type":"page_view"}`)); rec.Code != 503 {
			t.Fatalf("status %d, want 503", rec.Code)
		}
	}
	warns := 0
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(line, `"level":"WARN"`) {
			warns++
		}
	}
	if warns == 0 || warns > 2 {
		t.Errorf("%d WARN lines for 500 refused requests, want 1 (rate-limited):\n%s", warns, buf.String())
	}
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
