// Package metrics exposes Cairn's operational metrics in the Prometheus
// format, using prometheus/client_golang on a registry the caller passes in
// (no default registry, no promauto globals).
//
// Two kinds of sources feed it:
//
//   - hooks called on the hot path by the spool (ObserveSync), the batcher
//     (ObserveFlush) and the HTTP server (ObserveRequest, Rejected); each is a
//     few atomic operations on pre-resolved series;
//   - the ingest pipeline's counters, read once per scrape from a Stats
//     function (RegisterIngestStats), so the pipeline keeps a single source of
//     truth and pays nothing between scrapes.
//
// Every metric name starts with "cairn_"; docs/operations.md lists them with
// the alert thresholds we suggest.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-dev/cairn"
)

// Metrics holds Cairn's Prometheus collectors. Its methods are safe for
// concurrent use; a nil *Metrics ignores every call.
type Metrics struct {
	reg prometheus.Registerer
	gat prometheus.Gatherer

	rejected      *prometheus.CounterVec
	sourceEvents  *prometheus.CounterVec
	flushSize     prometheus.Histogram
	flushDuration *prometheus.HistogramVec
	flushOK       prometheus.Observer
	flushFailed   prometheus.Observer
	flushFailures prometheus.Counter
	storeErrors   *prometheus.CounterVec
	syncDuration  prometheus.Histogram
	syncRecords   prometheus.Histogram
	syncBytes     prometheus.Counter
	requests      *prometheus.HistogramVec
	// publishDuration is set by RegisterStreamStats (multi-node mode).
	publishDuration *prometheus.HistogramVec

	// reqCache maps route+status to its resolved observer, so the hot path
	// skips the label hashing of HistogramVec.WithLabelValues.
	reqCache sync.Map // reqKey -> prometheus.Observer
}

type reqKey struct {
	route  string
	status int
}

// Options configure New.
type Options struct {
	// Runtime adds the Go runtime and process collectors (goroutines, GC,
	// heap, RSS, open file descriptors, CPU seconds).
	Runtime bool
}

// New creates Cairn's collectors and registers them on reg. It returns an
// error if a collector cannot be registered (for example because reg already
// holds one with the same name).
func New(reg *prometheus.Registry, opts Options) (*Metrics, error) {
	m := &Metrics{reg: reg, gat: reg}
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_events_rejected_total",
		Help: "Events refused at ingest, by reason (" + strings.Join(cairn.RejectReasons, ", ") + ", or, inside a tracking API 200, the reason it lists for a message such as no_user_anon_id).",
	}, []string{"reason"})
	m.sourceEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_source_events_total",
		Help: "Events sent with a source's write key, by source id and outcome (accepted, rejected, rate_limited, unavailable).",
	}, []string{"source", "outcome"})
	m.flushSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cairn_flush_batch_size",
		Help:    "Events per store write attempted by the batcher.",
		Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
	})
	m.flushDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cairn_flush_duration_seconds",
		Help:    "Duration of store writes by the batcher, by result (ok, error).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"result"})
	m.flushOK = m.flushDuration.WithLabelValues("ok")
	m.flushFailed = m.flushDuration.WithLabelValues("error")
	m.flushFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_flush_failures_total",
		Help: "Store writes by the batcher that failed (each is retried).",
	})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_store_errors_total",
		Help: "Failed store writes by error kind (unavailable, internal, ...).",
	}, []string{"kind"})
	m.syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cairn_spool_fsync_duration_seconds",
		Help:    "Duration of each group-commit fsync of the spool.",
		Buckets: []float64{.0001, .00025, .0005, .001, .002, .004, .008, .016, .032, .064, .128, .25, .5, 1},
	})
	m.syncRecords = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cairn_spool_fsync_records",
		Help:    "Spool records made durable by one fsync (group commit size).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	})
	m.syncBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_spool_written_bytes_total",
		Help: "Bytes appended and synced to the spool.",
	})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cairn_http_request_duration_seconds",
		Help:    "HTTP request duration by route (net/http pattern) and status code.",
		Buckets: []float64{.0005, .001, .002, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "status"})

	cs := []prometheus.Collector{m.rejected, m.sourceEvents, m.flushSize, m.flushDuration, m.flushFailures,
		m.storeErrors, m.syncDuration, m.syncRecords, m.syncBytes, m.requests}
	if opts.Runtime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Every rejection reason is reported from the start, so rate() works and
	// dashboards show zero rather than no data.
	for _, r := range cairn.RejectReasons {
		m.rejected.WithLabelValues(r)
	}
	for _, k := range []string{cairn.EUNAVAILABLE, cairn.EINTERNAL} {
		m.storeErrors.WithLabelValues(k)
	}
	return m, nil
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gat, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveSync records one group-commit fsync of the spool that made records
// records (bytes bytes) durable in d.
func (m *Metrics) ObserveSync(d time.Duration, records, bytes int) {
	if m == nil {
		return
	}
	m.syncDuration.Observe(d.Seconds())
	m.syncRecords.Observe(float64(records))
	m.syncBytes.Add(float64(bytes))
}

// ObserveFlush records one store write attempt of events events by the
// batcher; err is nil on success.
func (m *Metrics) ObserveFlush(events int, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.flushSize.Observe(float64(events))
	if err == nil {
		m.flushOK.Observe(d.Seconds())
		return
	}
	m.flushFailed.Observe(d.Seconds())
	m.flushFailures.Inc()
	m.storeErrors.WithLabelValues(cairn.ErrorCode(err)).Inc()
}

// ObserveRequest records one HTTP request served by route (its net/http
// pattern, "" for unmatched requests) with status in d.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	k := reqKey{route, status}
	o, ok := m.reqCache.Load(k)
	if !ok {
		o, _ = m.reqCache.LoadOrStore(k, m.requests.WithLabelValues(route, strconv.Itoa(status)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// Rejected counts events refused at ingest for reason (one of the
// cairn.Reject* names). A request refused
// before its events could be counted (e.g. malformed JSON) counts as one.
func (m *Metrics) Rejected(reason string, events int) {
	if m == nil {
		return
	}
	if events < 1 {
		events = 1
	}
	m.rejected.WithLabelValues(reason).Add(float64(events))
}

// SourceEvents counts events sent with the write key of source sourceID,
// by outcome (accepted, rejected, rate_limited, unavailable).
func (m *Metrics) SourceEvents(sourceID, outcome string, events int) {
	if m == nil || events < 1 {
		return
	}
	m.sourceEvents.WithLabelValues(sourceID, outcome).Add(float64(events))
}

// RegisterIngestStats registers collectors that read the pipeline's counters
// and gauges from stats at scrape time. Call it at most once.
func (m *Metrics) RegisterIngestStats(stats func() cairn.IngestStats) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(&ingestCollector{stats: stats})
}
