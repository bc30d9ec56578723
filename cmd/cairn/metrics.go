package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/metrics"
)

// observability bundles the hooks serve wires into the spool, pipeline and
// HTTP server, all feeding one Prometheus registry served at GET /metrics.
type observability struct {
	// OnSync is called after each group-commit fsync of the spool.
	OnSync func(d time.Duration, records, bytes int)
	// OnFlush is called after each store write attempt by the batcher.
	OnFlush func(events int, d time.Duration, err error)
	// ObserveRequest is called after each HTTP request with its route pattern.
	ObserveRequest func(route string, status int, d time.Duration)
	// OnRejected is called when events are refused at ingest.
	OnRejected func(reason string, events int)
	// OnSourceEvents counts events sent with a source's write key.
	OnSourceEvents func(sourceID, outcome string, events int)
	// Handler serves the metrics; nil means GET /metrics is not served.
	Handler http.Handler
	// Register adds the pipeline's counters, read at scrape time.
	Register func(stats func() cairn.IngestStats)
	// OnPublish is called after each Ingest published to the stream
	// (multi-node mode).
	OnPublish func(events int, d time.Duration, err error)
	// RegisterStream adds the stream gauges and counters, read at scrape
	// time (multi-node mode); a no-op without metrics.
	RegisterStream func(stats func() metrics.StreamStats)
}

// newObservability creates a fresh registry with Cairn's metrics and the Go
// runtime and process collectors, and returns the hooks feeding it. If the
// metrics cannot be set up it logs why and returns no hooks: Cairn runs
// without metrics rather than not at all.
func newObservability(logger *slog.Logger) *observability {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Runtime: true})
	if err != nil {
		logger.Error("metrics disabled", "err", err)
		return &observability{RegisterStream: func(func() metrics.StreamStats) {}}
	}
	return &observability{
		OnSync:         m.ObserveSync,
		OnFlush:        m.ObserveFlush,
		ObserveRequest: m.ObserveRequest,
		OnRejected:     m.Rejected,
		OnSourceEvents: m.SourceEvents,
		Handler:        m.Handler(),
		Register: func(stats func() cairn.IngestStats) {
			if err := m.RegisterIngestStats(stats); err != nil {
				logger.Error("ingest metrics disabled", "err", err)
			}
		},
		OnPublish: m.ObservePublish,
		RegisterStream: func(stats func() metrics.StreamStats) {
			if err := m.RegisterStreamStats(stats); err != nil {
				logger.Error("stream metrics disabled", "err", err)
			}
		},
	}
}
