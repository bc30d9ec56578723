package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
)

// countingIngester accepts everything and keeps only a count, so the test
// measures the handler's memory, not the double's.
type countingIngester struct{ n atomic.Int64 }

func (c *countingIngester) Ingest(_ context.Context, events []cairn.Event) error {
	c.n.Add(int64(len(events)))
	return nil
}
func (c *countingIngester) Stats() cairn.IngestStats { return cairn.IngestStats{} }

// bombBody is a gzip body of a few KB that inflates to just under
// MaxDecodedBytes of valid events (the compressed-body attack of issue 15).
func bombBody(t *testing.T) []byte {
	t.Helper()
	ev := `{"userId":"u","sessionId":"s","type":"page_view","payload":{"p":"` + strings.Repeat("a", 8000) + `"}}`
	var raw bytes.Buffer
	raw.WriteByte('[')
	for i := range cairnhttp.MaxEventsPerRequest {
		if i > 0 {
			raw.WriteByte(',')
		}
		raw.WriteString(ev)
	}
	raw.WriteByte(']')
	if raw.Len() > cairnhttp.MaxDecodedBytes {
		t.Fatalf("bomb inflates to %d bytes, over the %d limit", raw.Len(), cairnhttp.MaxDecodedBytes)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestBodyMemoryBudget fires 200 compressed bodies at once, each inflating
// to the per-request limit (1.6 GB in all), and checks that the memory held
// by request decoding never exceeded the budget and that the excess was
// refused with 503 JSON and Retry-After.
func TestBodyMemoryBudget(t *testing.T) {
	const budget = 64 << 20
	ing := &countingIngester{}
	s := &cairnhttp.Server{Ingester: ing, Store: nopStore{}, BodyMemory: budget, BodyMemoryWait: 50 * time.Millisecond}
	h := s.Handler()
	body := bombBody(t)
	const n = 200
	var wg sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			req := httptest.NewRequest("POST", "/events", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", "gzip")
			rec := httptest.NewRecorder()
			<-start
			h.ServeHTTP(rec, req)
			recs[i] = rec
		})
	}
	close(start)
	wg.Wait()
	var accepted, refused int
	for i, rec := range recs {
		switch rec.Code {
		case http.StatusAccepted:
			accepted++
		case http.StatusServiceUnavailable:
			refused++
			var e cairnhttp.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != cairn.EUNAVAILABLE {
				t.Errorf("request %d: 503 body %q (err %v), want JSON with code %q", i, rec.Body, err, cairn.EUNAVAILABLE)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("request %d: 503 Content-Type %q, want application/json", i, ct)
			}
			if rec.Header().Get("Retry-After") == "" {
				t.Errorf("request %d: 503 without Retry-After", i)
			}
		default:
			t.Errorf("request %d: status %d %s, want 202 or 503", i, rec.Code, rec.Body)
		}
	}
	high := s.BodyMemoryHighWater()
	t.Logf("accepted %d, refused %d, high-water %d bytes of %d", accepted, refused, high, budget)
	if high > budget {
		t.Errorf("body memory high-water %d bytes exceeds the budget of %d", high, budget)
	}
	if high == 0 {
		t.Errorf("body memory high-water is 0: the budget was not used")
	}
	if refused == 0 {
		t.Errorf("no request was refused: 200 bodies of %d decoded bytes fit a %d-byte budget?", cairnhttp.MaxDecodedBytes, budget)
	}
	if accepted == 0 {
		t.Errorf("no request was accepted")
	}
	if got, want := ing.n.Load(), int64(accepted*cairnhttp.MaxEventsPerRequest); got != want {
		t.Errorf("ingested %d events, want %d", got, want)
	}
	if held := s.BodyMemoryHeld(); held != 0 {
		t.Errorf("%d bytes still held after every request finished", held)
	}
}
