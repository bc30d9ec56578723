package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/jetstream"
	"github.com/cairn-dev/cairn/metrics"
	"github.com/cairn-dev/cairn/pipeline"
	"github.com/cairn-dev/cairn/wal"
)

// Main is a running Cairn server: it knows every concrete type and wires them.
// `cairn serve` runs one; end-to-end tests run one in the test process
// (startMain) or the real binary where a separate process matters (crash,
// signals, exit codes, the data-dir lock).
type Main struct {
	Config Config
	Logger *slog.Logger

	lock     *os.File
	store    cairn.EventStore
	spool    *wal.WAL
	pipeline *pipeline.Pipeline
	// Multi-node mode (CAIRN_NATS_URL): the stream replaces spool and pipeline.
	nats     *jetstream.Conn
	streamIn *jetstream.Ingester
	stopLive func()
	server   *cairnhttp.Server
	obs      *observability
	pprof    *pprofServer
}

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, os.Getenv, ".env", stderr, nil)
	if err != nil {
		return err
	}
	if len(cfg.NatsURLs) > 0 {
		if err := checkMultiNode(cfg); err != nil {
			return err
		}
	}
	m := &Main{Config: cfg, Logger: newLogger(cfg, stderr)}
	// ctx is the signal context: Close gets one that outlives it, and
	// bounds each shutdown step with its own timeout.
	if err := m.Open(ctx); err != nil {
		if cerr := m.Close(context.WithoutCancel(ctx)); cerr != nil {
			m.Logger.Error("close after failed start", "component", "shutdown", "err", cerr)
		}
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down", "component", "shutdown")
	return m.Close(context.WithoutCancel(ctx))
}

// URL returns the base URL of the HTTP server (after Open).
func (m *Main) URL() string { return "http://" + m.server.Addr().String() }

// PprofAddr returns the pprof server's address, or "" when it is off.
func (m *Main) PprofAddr() string {
	if m.pprof == nil {
		return ""
	}
	return m.pprof.Addr().String()
}

// Open starts Cairn: data dir lock, store, spool, pipeline, HTTP server,
// and the pprof server when configured. In multi-node mode (CAIRN_NATS_URL)
// the JetStream stream takes the place of spool and pipeline: requests are
// acknowledged once the stream holds their events, `cairn writer` processes
// store them, and the live tail follows the stream.
func (m *Main) Open(ctx context.Context) error {
	cfg, log := m.Config, m.Logger
	boot := log.With("component", "bootstrap")
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	m.lock = lock
	m.obs = newObservability(log.With("component", "metrics"))
	multiNode := len(cfg.NatsURLs) > 0
	if multiNode {
		if err := checkMultiNode(cfg); err != nil {
			return err
		}
	}

	st, msg, attrs, err := openServerStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	m.store = st
	boot.Info(msg, attrs...)

	var ingester cairn.Ingester
	if multiNode {
		if m.nats, err = connectNATS(ctx, cfg, log.With("component", "nats")); err != nil {
			return err
		}
		m.streamIn = jetstream.NewIngester(m.nats)
		m.streamIn.OnPublish = m.obs.OnPublish
		m.obs.RegisterStream(func() metrics.StreamStats {
			return metrics.StreamStats{AcksPending: int64(m.streamIn.AcksPending()), PublishRetries: m.streamIn.Retries()}
		})
		ingester = m.streamIn
		boot.Info("ingest: nats jetstream (no local spool; `cairn writer` stores the events)", "urls", strings.Join(cfg.NatsURLs, ","),
			"stream", cfg.NatsStream)
	} else {
		if m.spool, err = openSpool(spoolDir(cfg), cfg, log.With("component", "spool"), m.obs.OnSync); err != nil {
			return err
		}
		if m.pipeline, err = newPipeline(m.spool, m.store, cfg, log.With("component", "pipeline"), m.obs.OnFlush); err != nil {
			return err
		}
		m.pipeline.Start() //nolint:contextcheck // the batcher must outlive ctx (serve's signal context): Close drains and stops it
		ingester = m.pipeline
	}
	if m.obs.Register != nil {
		m.obs.Register(ingester.Stats)
	}

	acc, err := newAccounts(cfg, m.store, log.With("component", "auth"))
	if err != nil {
		return err
	}
	hub, con, err := newConsole(cfg, ingester, m.store, acc, log.With("component", "console"))
	if err != nil {
		return err
	}
	onAccepted := hub.Publish
	if multiNode {
		// The live tail follows the stream, which holds what every node
		// accepted; publishing here too would show this node's events twice.
		onAccepted = nil
		if m.stopLive, err = m.nats.Live(hub.Publish); err != nil {
			return err
		}
	}
	m.server = &cairnhttp.Server{
		Ingester:        ingester,
		Store:           m.store,
		Auth:            acc.service,
		Users:           acc.service,
		Sources:         sourcesOf(m.store),
		Accounts:        acc.api,
		Rules:           cairn.NewEventRules(cfg.EventTypes, cfg.MaxFuture),
		Logger:          log,
		Middleware:      []func(http.Handler) http.Handler{acc.api.CORS},
		ObserveRequest:  m.obs.ObserveRequest,
		AccessLog:       cfg.AccessLog,
		OnRejected:      func(reason string, n int) { m.obs.OnRejected(reason, n); hub.Reject(n) },
		OnSourceEvents:  m.obs.OnSourceEvents,
		RequireWriteKey: cfg.RequireWriteKey,
		SessionGap:      cfg.SessionGap,
		Metrics:         m.obs.Handler,
		OnAccepted:      onAccepted,
		Live:            hub,
		Console:         con,
		TrackedUsers:    trackedUsersOf(m.store),
		Insights:        insightsOf(m.store),
		Backup:          newBackuper(cfg.DataDir, m.store, m.spool),
		BodyMemory:      cfg.BodyMemory,
		Eraser:          eraserOf(m.store),
	}
	if err := m.server.Open(cfg.Addr()); err != nil {
		return err
	}
	if m.pprof, err = startPprof(cfg.PprofAddr, cfg.PprofAllowRemote, log.With("component", "pprof")); err != nil {
		return err
	}
	boot.Info("listening", "addr", m.server.Addr().String(), "data_dir", cfg.DataDir, "env", cfg.Env)
	return nil
}

// Close shuts down in dependency order: stop HTTP (drain in-flight requests),
// drain the batcher into the store, close the spool, close the store.
func (m *Main) Close(ctx context.Context) error {
	log := m.Logger.With("component", "shutdown")
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if m.server != nil {
		sctx, cancel := context.WithTimeout(ctx, m.Config.ShutdownTimeout)
		if err := m.server.Shutdown(sctx); err != nil {
			log.Warn("in-flight requests cut short", "err", err)
		}
		cancel()
		log.Info("http server stopped")
	}
	if m.pprof != nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := m.pprof.Close(pctx); err != nil {
			log.Warn("pprof profiles cut short", "err", err)
		}
		cancel()
	}
	if m.pipeline != nil {
		dctx, cancel := context.WithTimeout(ctx, m.Config.DrainTimeout)
		start := time.Now()
		n, err := m.pipeline.Close(dctx)
		cancel()
		st := m.pipeline.Stats()
		if err != nil {
			log.Warn("buffer flush incomplete; the rest stays in the spool for the next start",
				"flushed", n, "remaining", st.Backlog, "err", err)
		} else {
			log.Info("buffer flushed", "count", n, "duration", time.Since(start))
		}
	}
	if m.streamIn != nil {
		m.streamIn.Close()
	}
	if m.stopLive != nil {
		m.stopLive()
	}
	if m.nats != nil {
		m.nats.Close()
	}
	if m.spool != nil {
		keep(m.spool.Close())
	}
	if m.store != nil {
		keep(m.store.Close())
	}
	if m.lock != nil {
		if err := m.lock.Close(); err != nil {
			log.Warn("close data dir lock", "err", err) // the lock is released with the descriptor either way
		}
	}
	if firstErr == nil {
		log.Info("shutdown complete")
	}
	return firstErr
}
