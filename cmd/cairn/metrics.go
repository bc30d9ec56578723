package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/cairn-dev/cairn"
)

// observability bundles the hooks serve wires into the spool, pipeline and
// HTTP server. (Stub until the metrics package is wired: every hook is nil.)
type observability struct {
	OnSync         func(d time.Duration, records, bytes int)
	OnFlush        func(events int, d time.Duration, err error)
	ObserveRequest func(route string, status int, d time.Duration)
	OnRejected     func(reason string, events int)
	Handler        http.Handler
	Register       func(stats func() cairn.IngestStats)
}

func newObservability(cfg Config, logger *slog.Logger) *observability {
	return &observability{}
}
