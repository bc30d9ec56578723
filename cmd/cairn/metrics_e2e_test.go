package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricsE2EServer starts Cairn in process (embedded store) on a loopback
// port and returns its base URL.
func metricsE2EServer(t *testing.T) string {
	t.Helper()
	return startMain(t, "", "CAIRN_FLUSH_INTERVAL=20ms").URL
}

// scrapeMetrics fetches /metrics and returns every sample as
// `name{labels}` -> value, labels as exposed.
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer func() {
		if err := resp.Body.Close(); err != nil {
			t.Errorf("GET /metrics: close body: %v", err)
		}
	}()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics Content-Type %q, want the Prometheus text format", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func postEvents(t *testing.T, base, contentType, body string) int {
	t.Helper()
	resp, err := http.Post(base+"/events", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /events: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Errorf("POST /events: read body: %v", err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Errorf("POST /events: close body: %v", err)
	}
	return resp.StatusCode
}

// waitMetric polls /metrics until name reaches want.
func waitMetric(t *testing.T, base, name string, want float64) map[string]float64 {
	t.Helper()
	var m map[string]float64
	waitFor(t, 10*time.Second, fmt.Sprintf("%s ≥ %v", name, want), func() bool {
		m = scrapeMetrics(t, base)
		return m[name] >= want
	})
	return m
}

func TestMetricsE2E(t *testing.T) {
	base := metricsE2EServer(t)

	before := scrapeMetrics(t, base)
	for _, name := range []string{"cairn_events_accepted_total", "cairn_events_stored_total", "cairn_events_duplicate_total",
		"cairn_backlog_events", "cairn_backlog_max_events", "cairn_spool_bytes", "cairn_flush_failures_total",
		`cairn_events_rejected_total{reason="invalid"}`, `cairn_store_errors_total{kind="unavailable"}`,
		"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if before["cairn_events_accepted_total"] != 0 || before["cairn_events_stored_total"] != 0 {
		t.Fatalf("fresh server: accepted %v stored %v, want 0", before["cairn_events_accepted_total"], before["cairn_events_stored_total"])
	}
	if before["process_resident_memory_bytes"] <= 0 || before["cairn_backlog_max_events"] <= 0 {
		t.Errorf("rss %v, max backlog %v: want positive", before["process_resident_memory_bytes"], before["cairn_backlog_max_events"])
	}

	batch := `[{"eventId":"m-1","userId":"u1","sessionId":"s1","type":"page_view","payload":{"url":"/"}},
		{"eventId":"m-2","userId":"u1","sessionId":"s1","type":"search","payload":{"query":"x"}},
		{"eventId":"m-3","userId":"u2","sessionId":"s2","type":"purchase"}]`
	if got := postEvents(t, base, "application/json", batch); got != 202 {
		t.Fatalf("POST batch: status %d, want 202", got)
	}
	if got := postEvents(t, base, "application/json", `{"userId":"u1","type":"nope"}`); got != 400 {
		t.Fatalf("POST invalid: status %d, want 400", got)
	}
	if got := postEvents(t, base, "application/xml", `<event/>`); got != 415 {
		t.Fatalf("POST xml: status %d, want 415", got)
	}

	m := waitMetric(t, base, "cairn_events_stored_total", 3)
	check := func(name string, ok func(v float64) bool, want string) {
		t.Helper()
		if v, found := m[name]; !found || !ok(v) {
			t.Errorf("%s = %v (present %v), want %s", name, v, found, want)
		}
	}
	eq := func(w float64) func(float64) bool { return func(v float64) bool { return v == w } }
	atLeast := func(w float64) func(float64) bool { return func(v float64) bool { return v >= w } }
	check("cairn_events_accepted_total", eq(3), "3")
	check("cairn_events_stored_total", eq(3), "3")
	check(`cairn_events_rejected_total{reason="invalid"}`, atLeast(1), ">= 1")
	check(`cairn_events_rejected_total{reason="unsupported_media_type"}`, atLeast(1), ">= 1")
	check(`cairn_http_request_duration_seconds_count{route="POST /events",status="202"}`, eq(1), "1")
	check(`cairn_http_request_duration_seconds_count{route="POST /events",status="400"}`, eq(1), "1")
	check(`cairn_http_request_duration_seconds_count{route="POST /events",status="415"}`, eq(1), "1")
	check("cairn_spool_fsync_duration_seconds_count", atLeast(1), ">= 1")
	check("cairn_spool_fsync_records_sum", atLeast(1), ">= 1")
	check("cairn_spool_written_bytes_total", atLeast(100), ">= 100")
	check("cairn_flush_batch_size_sum", eq(3), "3 (one flush of the 3 events)")
	check(`cairn_flush_duration_seconds_count{result="ok"}`, atLeast(1), ">= 1")
	check("cairn_flushes_total", atLeast(1), ">= 1")
	check("cairn_flush_failures_total", eq(0), "0")
	check("cairn_last_flush_timestamp_seconds", atLeast(float64(time.Now().Add(-time.Minute).Unix())), "within the last minute")
	check("cairn_spool_bytes", atLeast(1), "> 0")

	// The same events again are duplicates: accepted, then skipped by the store.
	if got := postEvents(t, base, "text/plain; charset=utf-8", batch); got != 202 {
		t.Fatalf("POST batch again: status %d, want 202", got)
	}
	m = waitMetric(t, base, "cairn_events_duplicate_total", 3)
	check("cairn_events_accepted_total", eq(6), "6")
	check("cairn_events_stored_total", eq(3), "3")
	check(`cairn_http_request_duration_seconds_count{route="POST /events",status="202"}`, eq(2), "2")

	// The backlog gauge returns to zero once flushed.
	m = waitMetricZero(t, base, "cairn_backlog_events")
	check("cairn_backlog_bytes", eq(0), "0")
	// Scrapes are observed too.
	check(`cairn_http_request_duration_seconds_count{route="GET /metrics",status="200"}`, atLeast(1), ">= 1")
}

// waitMetricZero polls /metrics until name is 0.
func waitMetricZero(t *testing.T, base, name string) map[string]float64 {
	t.Helper()
	var m map[string]float64
	waitFor(t, 10*time.Second, name+" = 0", func() bool {
		m = scrapeMetrics(t, base)
		v, ok := m[name]
		return ok && v == 0
	})
	return m
}
