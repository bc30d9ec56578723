package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestTargets(t *testing.T) {
	s := &suite{opts: Options{FixedRate: 5000}, rep: &Report{}, rss: 120}
	store := &Row{EventsPerSec: 100000}
	httpBatch := &Row{EventsPerSec: 200000}
	httpSingle := &Row{RequestsPerSec: 10000}
	e2e := &e2eRows{
		batch:   &Row{EventsPerSec: 90000, StoredPerSec: 75000},
		single:  &Row{RequestsPerSec: 4000},
		fixed:   &Row{P99Ms: 8, RequestsPerSec: 5000},
		journey: &Row{P99Ms: 6, RequestsPerSec: 500},
	}
	replay := &Row{EventsPerSec: 85000}
	s.targets(store, httpBatch, httpSingle, e2e, replay)

	want := map[string]struct {
		value float64
		met   bool
	}{
		"Batched durable ingest (sustained)":      {75000, true},
		"Batched ingest vs store ceiling":         {75, true},
		"Batched ingest vs HTTP ceiling (info)":   {45, true},
		"Single-event throughput vs HTTP ceiling": {40, false},
		"Single-event p99 at 5000 req/s":          {8, true},
		"Journey p99 under ingest":                {6, false},
		"Peak RSS":                                {120, true},
		"Replay drain vs store ceiling":           {85, true},
	}
	if len(s.rep.Targets) != len(want) {
		t.Errorf("%d targets, want %d: %+v", len(s.rep.Targets), len(want), s.rep.Targets)
	}
	for _, tg := range s.rep.Targets {
		w, ok := want[tg.Name]
		if !ok {
			t.Errorf("unexpected target %q", tg.Name)
			continue
		}
		if tg.Value < w.value-1e-9 || tg.Value > w.value+1e-9 || tg.Met != w.met {
			t.Errorf("%s = %v met=%v, want %v met=%v", tg.Name, tg.Value, tg.Met, w.value, w.met)
		}
	}

	// A failed request fails the latency target even when p99 is fine.
	s.rep.Targets = nil
	e2e.fixed.Non2xx = 1
	s.targets(nil, nil, nil, e2e, nil)
	for _, tg := range s.rep.Targets {
		if strings.HasPrefix(tg.Name, "Single-event p99") && tg.Met {
			t.Error("fixed-rate target met despite a failed request")
		}
	}

	md := s.rep.Markdown()
	for _, w := range []string{"| Target | Measured | Goal | Met |", "Journey p99 under ingest", "**no**"} {
		if !strings.Contains(md, w) {
			t.Errorf("Markdown lacks %q:\n%s", w, md)
		}
	}
}

func TestReadRSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	rss, err := readRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("readRSS(self) = %d, %v; want at least 1 MiB", rss, err)
	}
}

func TestServeNoop(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	decode := func(body []byte) (int, error) {
		if !strings.HasPrefix(string(body), "[") {
			return 0, errors.New("not an array")
		}
		return 1, nil
	}
	go func() { done <- ServeNoop(ctx, "127.0.0.1:0", pw, decode) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drains the server's further output; nothing more is expected
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	resp, err := http.Post("http://"+addr+"/events", "application/json", strings.NewReader(`[{"a":1}]`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if err := resp.Body.Close(); err != nil {
		t.Error(err)
	}
	if resp.StatusCode != 202 || !strings.Contains(string(body), `"eventIds"`) {
		t.Errorf("noop POST /events: %d %s", resp.StatusCode, body)
	}
	// The decoding ceiling answers 202 when the body decodes, 400 when not.
	for _, tc := range []struct {
		body string
		want int
	}{{`[{"a":1}]`, 202}, {`{"a":1}`, 400}} {
		resp, err := http.Post("http://"+addr+"/decode/events", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Body.Close(); err != nil {
			t.Error(err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("noop POST /decode/events %s: %d, want %d", tc.body, resp.StatusCode, tc.want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeNoop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeNoop did not return after cancel")
	}
}

func TestServerQuantile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const p = `cairn_http_request_duration_seconds_bucket{route="GET /users/{userId}/journey",status="200",le="`
		io.WriteString(w, "# TYPE x histogram\n"+ //nolint:errcheck // fake server: a failed write shows up at the client under test
			p+`0.001"} 500`+"\n"+
			p+`0.0025"} 900`+"\n"+
			p+`0.005"} 980`+"\n"+
			p+`0.01"} 995`+"\n"+
			p+`+Inf"} 1000`+"\n"+
			`cairn_http_request_duration_seconds_bucket{route="POST /events",status="202",le="0.001"} 7`+"\n")
	}))
	t.Cleanup(srv.Close)
	le, frac, ok := serverQuantile(t.Context(), srv.URL, "GET /users/{userId}/journey", 0.99, 0.005)
	if !ok || le != 0.01 || frac != 0.98 {
		t.Errorf("serverQuantile = %v, %v, %v; want 0.01 (p99 bucket), 0.98 (≤ 5 ms), true", le, frac, ok)
	}
	if _, _, ok := serverQuantile(t.Context(), srv.URL, "GET /nothing", 0.99, 0.005); ok {
		t.Error("serverQuantile found a route that has no samples")
	}
}

func TestRatioTargets(t *testing.T) {
	for _, tc := range []struct {
		name              string
		r                 *ratioRows
		wantSeg, wantLive float64
		liveMet           bool
		targets           int
	}{
		{"Both", &ratioRows{events: &Row{EventsPerSec: 50000}, segment: &Row{EventsPerSec: 40000},
			quiet: &Row{EventsPerSec: 50000}, live: &Row{EventsPerSec: 49000}}, 0.8, 0.98, true, 2},
		{"LiveSlow", &ratioRows{quiet: &Row{EventsPerSec: 50000}, live: &Row{EventsPerSec: 45000}}, 0, 0.9, false, 1},
		{"LiveFailed", &ratioRows{quiet: &Row{EventsPerSec: 50000}, live: &Row{EventsPerSec: 50000, Non2xx: 1}}, 0, 1, false, 1},
		{"Missing", &ratioRows{events: &Row{EventsPerSec: 50000}}, 0, 0, false, 0},
		{"Nil", nil, 0, 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &suite{rep: &Report{}}
			s.ratioTargets(tc.r)
			if d := s.rep.SegmentVsEvents - tc.wantSeg; d > 1e-9 || d < -1e-9 {
				t.Errorf("SegmentVsEvents = %v, want %v", s.rep.SegmentVsEvents, tc.wantSeg)
			}
			if d := s.rep.LiveVsQuiet - tc.wantLive; d > 1e-9 || d < -1e-9 {
				t.Errorf("LiveVsQuiet = %v, want %v", s.rep.LiveVsQuiet, tc.wantLive)
			}
			if len(s.rep.Targets) != tc.targets {
				t.Fatalf("%d targets, want %d: %+v", len(s.rep.Targets), tc.targets, s.rep.Targets)
			}
			for _, tg := range s.rep.Targets {
				if strings.Contains(tg.Name, "live subscribers") && tg.Met != tc.liveMet {
					t.Errorf("%s met = %v, want %v", tg.Name, tg.Met, tc.liveMet)
				}
			}
			data, err := json.Marshal(s.rep)
			if err != nil {
				t.Fatal(err)
			}
			for field, want := range map[string]bool{`"segmentVsEvents"`: tc.wantSeg > 0, `"liveVsQuiet"`: tc.wantLive > 0} {
				if strings.Contains(string(data), field) != want {
					t.Errorf("JSON has %s = %v, want %v: %s", field, !want, want, data)
				}
			}
		})
	}
}
