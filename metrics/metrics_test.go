package metrics_test

import (
	"errors"
	"io"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/metrics"
)

func newMetrics(t *testing.T, opts metrics.Options) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

// gather returns every sample of reg as `name{k="v",...}` -> value; a
// histogram yields name_count and name_sum samples.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	fs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fs {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			sort.Strings(ls)
			lbl := ""
			if len(ls) > 0 {
				lbl = "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[f.GetName()+lbl] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[f.GetName()+lbl] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[f.GetName()+"_count"+lbl] = float64(m.GetHistogram().GetSampleCount())
				out[f.GetName()+"_sum"+lbl] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func check(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing", k)
		} else if g < w-1e-9 || g > w+1e-9 {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
}

func TestHooks(t *testing.T) {
	m, reg := newMetrics(t, metrics.Options{})

	m.Rejected(cairn.RejectInvalid, 3)
	m.Rejected(cairn.RejectBacklogFull, 0) // a request refused as a whole counts as one
	m.ObserveFlush(500, 20*time.Millisecond, nil)
	m.ObserveFlush(200, time.Second, cairn.Errorf(cairn.EUNAVAILABLE, "down"))
	m.ObserveFlush(200, time.Second, errors.New("boom"))
	m.ObserveSync(2*time.Millisecond, 4, 1000)
	m.ObserveRequest("POST /events", 202, 3*time.Millisecond)
	m.ObserveRequest("POST /events", 202, 4*time.Millisecond)
	m.ObserveRequest("", 404, time.Millisecond)

	got := gather(t, reg)
	check(t, got, map[string]float64{
		`cairn_events_rejected_total{reason="invalid"}`:                                3,
		`cairn_events_rejected_total{reason="backlog_full"}`:                           1,
		`cairn_events_rejected_total{reason="too_large"}`:                              0,
		`cairn_events_rejected_total{reason="unsupported_media_type"}`:                 0,
		`cairn_events_rejected_total{reason="spool_error"}`:                            0,
		`cairn_flush_failures_total`:                                                   2,
		`cairn_store_errors_total{kind="unavailable"}`:                                 1,
		`cairn_store_errors_total{kind="internal"}`:                                    1,
		`cairn_flush_batch_size_count`:                                                 3,
		`cairn_flush_batch_size_sum`:                                                   900,
		`cairn_flush_duration_seconds_count{result="ok"}`:                              1,
		`cairn_flush_duration_seconds_sum{result="ok"}`:                                0.02,
		`cairn_flush_duration_seconds_count{result="error"}`:                           2,
		`cairn_spool_fsync_duration_seconds_count`:                                     1,
		`cairn_spool_fsync_duration_seconds_sum`:                                       0.002,
		`cairn_spool_fsync_records_sum`:                                                4,
		`cairn_spool_written_bytes_total`:                                              1000,
		`cairn_http_request_duration_seconds_count{route="POST /events",status="202"}`: 2,
		`cairn_http_request_duration_seconds_sum{route="POST /events",status="202"}`:   0.007,
		`cairn_http_request_duration_seconds_count{route="unmatched",status="404"}`:    1,
	})
}

func TestIngestStats(t *testing.T) {
	m, reg := newMetrics(t, metrics.Options{})
	s := cairn.IngestStats{Backlog: 7, BacklogBytes: 700, MaxBacklog: 5000, Accepted: 100, Stored: 90,
		Duplicates: 3, DeadLettered: 1, Flushes: 2, Flushing: true, SpoolBytes: 4096, SpoolSegments: 2,
		LastFlushAt: time.Unix(1700000000, 0)}
	if err := m.RegisterIngestStats(func() cairn.IngestStats { return s }); err != nil {
		t.Fatal(err)
	}
	check(t, gather(t, reg), map[string]float64{
		"cairn_events_accepted_total":        100,
		"cairn_events_stored_total":          90,
		"cairn_events_duplicate_total":       3,
		"cairn_events_dead_lettered_total":   1,
		"cairn_flushes_total":                2,
		"cairn_backlog_events":               7,
		"cairn_backlog_bytes":                700,
		"cairn_backlog_max_events":           5000,
		"cairn_flush_in_progress":            1,
		"cairn_last_flush_timestamp_seconds": 1.7e9,
		"cairn_spool_bytes":                  4096,
		"cairn_spool_segments":               2,
		"cairn_spool_failed":                 0,
	})
	// Values are read at scrape time.
	s.Accepted, s.SpoolError, s.Flushing, s.CheckpointResets, s.SpoolCorruptRecords = 150, "disk full", false, 1, 3
	check(t, gather(t, reg), map[string]float64{
		"cairn_events_accepted_total":         150,
		"cairn_spool_failed":                  1,
		"cairn_flush_in_progress":             0,
		"cairn_spool_checkpoint_resets_total": 1,
		"cairn_spool_corrupt_records_total":   3,
	})
}

func TestHandlerRuntime(t *testing.T) {
	m, _ := newMetrics(t, metrics.Options{Runtime: true})
	m.ObserveRequest("GET /health", 200, time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes",
		`cairn_http_request_duration_seconds_count{route="GET /health",status="200"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(reg, metrics.Options{}); err == nil {
		t.Error("second New on the same registry succeeded, want an error")
	}
}

func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.Rejected(cairn.RejectInvalid, 1)
	m.ObserveFlush(1, time.Second, nil)
	m.ObserveSync(time.Second, 1, 1)
	m.ObserveRequest("x", 200, time.Second)
	if err := m.RegisterIngestStats(nil); err != nil {
		t.Error(err)
	}
}

func TestStreamStats(t *testing.T) {
	m, reg := newMetrics(t, metrics.Options{})
	m.ObservePublish(10, time.Millisecond, nil) // before registration: ignored
	s := metrics.StreamStats{AcksPending: 12, PublishRetries: 3, ConsumerPending: 450, Redeliveries: 7}
	if err := m.RegisterStreamStats(func() metrics.StreamStats { return s }); err != nil {
		t.Fatal(err)
	}
	m.ObservePublish(10, 4*time.Millisecond, nil)
	m.ObservePublish(10, 5*time.Second, errors.New("no ack"))
	check(t, gather(t, reg), map[string]float64{
		"cairn_stream_acks_pending":                                   12,
		"cairn_stream_publish_retries_total":                          3,
		"cairn_stream_consumer_pending":                               450,
		"cairn_stream_redeliveries_total":                             7,
		`cairn_stream_publish_duration_seconds_count{result="ok"}`:    1,
		`cairn_stream_publish_duration_seconds_sum{result="ok"}`:      0.004,
		`cairn_stream_publish_duration_seconds_count{result="error"}`: 1,
	})
	s.ConsumerPending = 0
	check(t, gather(t, reg), map[string]float64{"cairn_stream_consumer_pending": 0})
}
