package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairn-dev/cairn/loadgen"
)

// LiveSubscribers is the number of GET /api/live streams open during the
// live-subscriber ingest phase (issue 11).
const LiveSubscribers = 10

// ratioRows are the means of the paired phases behind the Segment and
// live-subscriber ratios: each pair runs a, b, b, a on the same server with
// the same connections and duration.
type ratioRows struct {
	events, segment *Row // issue 10: POST /events vs POST /v1/batch, 100 events/req
	quiet, live     *Row // issue 11: batched /events without and with live subscribers
}

// pairSide is one side of a paired comparison.
type pairSide struct {
	name, setup string
	cfg         loadgen.Config
}

// meanRow averages the rates of equally long runs and sums their failures.
func meanRow(rows []*Row) *Row {
	m := &Row{}
	for _, r := range rows {
		m.EventsPerSec += r.EventsPerSec / float64(len(rows))
		m.StoredPerSec += r.StoredPerSec / float64(len(rows))
		m.Non2xx += r.Non2xx
		m.Errors += r.Errors
	}
	return m
}

// signUpSession creates an account through the Better Auth API (the first
// one of the bench's fresh server is its admin) and returns its session
// cookies as a Cookie header value.
func signUpSession(ctx context.Context, base, email, password string) (string, error) {
	body, err := json.Marshal(map[string]string{"email": email, "password": password, "name": "Bench"})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/auth/sign-up/email", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("sign up: %w", err)
	}
	defer resp.Body.Close() //nolint:errcheck // the body was read to the end (or is abandoned); closing it only releases the connection
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("sign up: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign up: status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	var parts []string
	for _, c := range resp.Cookies() {
		if c.Value != "" && c.MaxAge >= 0 {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("sign up: no session cookie in the response")
	}
	return strings.Join(parts, "; "), nil
}

// createSource creates an unlimited source through POST /api/sources with
// the admin session cookie and returns its write key.
func createSource(ctx context.Context, base, cookie string) (string, error) {
	body := []byte(`{"name":"bench","rateLimit":{"eventsPerSecond":0,"burst":0}}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/sources", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Origin", base) // a cookie-carrying write needs a trusted Origin
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("create source: %w", err)
	}
	defer resp.Body.Close() //nolint:errcheck // the body was read to the end (or is abandoned); closing it only releases the connection
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("create source: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create source: status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	var out struct {
		WriteKey string `json:"writeKey"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.WriteKey == "" {
		return "", fmt.Errorf("create source: no write key in %s", bytes.TrimSpace(data))
	}
	return out.WriteKey, nil
}

// liveClients are open GET /api/live streams, each read continuously.
type liveClients struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	bytes  atomic.Int64
}

// subscribe opens n live streams with cookie and returns once every one
// answered 200; the streams are read (and discarded) until Stop.
func subscribe(ctx context.Context, base, cookie string, n int) (*liveClients, error) {
	ctx, cancel := context.WithCancel(ctx)
	lc := &liveClients{cancel: cancel}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: n}}
	errc := make(chan error, n)
	for range n {
		lc.wg.Add(1)
		go func() {
			defer lc.wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/live", nil)
			if err != nil {
				errc <- err
				return
			}
			req.Header.Set("Cookie", cookie)
			resp, err := client.Do(req)
			if err != nil {
				errc <- fmt.Errorf("live: %w", err)
				return
			}
			defer resp.Body.Close() //nolint:errcheck // the stream is cancelled; closing only releases the connection
			if resp.StatusCode != http.StatusOK {
				errc <- fmt.Errorf("live: status %d", resp.StatusCode)
				return
			}
			errc <- nil
			buf := make([]byte, 32<<10)
			for {
				k, err := resp.Body.Read(buf)
				lc.bytes.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			lc.Stop()
			return nil, err
		}
	}
	return lc, nil
}

// Stop closes the streams and returns the bytes they read.
func (lc *liveClients) Stop() int64 {
	lc.cancel()
	lc.wg.Wait()
	return lc.bytes.Load()
}

// ratioTargets adds the Segment (issue 10) and live-subscriber (issue 11)
// ratios to the report's targets.
func (s *suite) ratioTargets(r *ratioRows) {
	if r == nil {
		return
	}
	add := func(t Target) { s.rep.Targets = append(s.rep.Targets, t) }
	if r.events != nil && r.segment != nil && sustained(r.events) > 0 {
		v := sustained(r.segment) / sustained(r.events) * 100
		s.rep.SegmentVsEvents = v / 100
		add(Target{Name: "Segment /v1/batch vs POST /events, sustained (info)", Value: v, Unit: "%", Goal: "–", Met: true,
			Detail: fmt.Sprintf("%.0f / %.0f events/s sustained, 100 events/req, mean of runs a b b a; acknowledged %.0f / %.0f",
				sustained(r.segment), sustained(r.events), r.segment.EventsPerSec, r.events.EventsPerSec)})
	}
	if r.quiet != nil && r.live != nil && sustained(r.quiet) > 0 {
		v := sustained(r.live) / sustained(r.quiet) * 100
		s.rep.LiveVsQuiet = v / 100
		add(Target{Name: fmt.Sprintf("Batched ingest with %d live subscribers vs none, sustained", LiveSubscribers), Value: v, Unit: "%",
			Goal: "≥ 95%", Met: v >= 95 && r.live.Failed() == 0,
			Detail: fmt.Sprintf("%.0f / %.0f events/s sustained, mean of runs a b b a; acknowledged %.0f / %.0f",
				sustained(r.live), sustained(r.quiet), r.live.EventsPerSec, r.quiet.EventsPerSec)})
	}
}
