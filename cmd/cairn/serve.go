package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/pipeline"
	"github.com/cairn-dev/cairn/wal"
)

// Main is a running Cairn server: it knows every concrete type and wires them.
// End-to-end tests use the real binary; Main is what the binary runs.
type Main struct {
	Config Config
	Logger *slog.Logger

	lock     *os.File
	store    cairn.EventStore
	spool    *wal.WAL
	pipeline *pipeline.Pipeline
	server   *cairnhttp.Server
	obs      *observability
}

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("serve", args, os.Getenv, ".env", stderr, nil)
	if err != nil {
		return err
	}
	m := &Main{Config: cfg, Logger: newLogger(cfg, stderr)}
	if err := m.Open(ctx); err != nil {
		m.Close(context.Background())
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down", "component", "shutdown")
	return m.Close(context.Background())
}

// Open starts Cairn: data dir lock, store, spool, pipeline, HTTP server.
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
	m.obs = newObservability(cfg, log.With("component", "metrics"))

	if cfg.MongoURI != "" {
		st, err := openMongoStore(ctx, cfg, log.With("component", "mongo"))
		if err != nil {
			return fmt.Errorf("open mongodb store: %w", err)
		}
		m.store = st
		boot.Info("store: mongodb")
	} else {
		st, err := pebble.Open(filepath.Join(cfg.DataDir, "store"), pebble.Options{Logger: log.With("component", "pebble"), DeferSync: true, CacheSize: cfg.StoreCache})
		if err != nil {
			return err
		}
		m.store = st
		boot.Info("store: embedded", "dir", filepath.Join(cfg.DataDir, "store"))
	}

	m.spool, err = wal.Open(filepath.Join(cfg.DataDir, "spool"), wal.Options{
		SegmentSize: cfg.SegmentSize,
		Logger:      log.With("component", "spool"),
		OnSync:      m.obs.OnSync,
	})
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	m.pipeline, err = pipeline.New(m.spool, m.store, pipeline.Options{
		FlushSize:      cfg.FlushSize,
		FlushInterval:  cfg.FlushInterval,
		MaxBacklog:     cfg.MaxBacklog,
		DeadLetterPath: filepath.Join(cfg.DataDir, "deadletter.jsonl"),
		Logger:         log.With("component", "pipeline"),
		OnFlush:        m.obs.OnFlush,
	})
	if err != nil {
		return fmt.Errorf("start pipeline: %w", err)
	}
	if m.obs.Register != nil {
		m.obs.Register(m.pipeline.Stats)
	}
	m.pipeline.Start()

	acc, err := newAccounts(cfg, m.store, log.With("component", "auth"))
	if err != nil {
		return err
	}
	hub, con, err := newConsole(cfg, m.pipeline, m.store, acc, log.With("component", "console"))
	if err != nil {
		return err
	}
	m.server = &cairnhttp.Server{
		Ingester:       m.pipeline,
		Store:          m.store,
		Auth:           acc.service,
		Users:          acc.service,
		Accounts:       acc.api,
		Rules:          cairn.NewEventRules(cfg.EventTypes, cfg.MaxFuture),
		Logger:         log,
		Middleware:     []func(http.Handler) http.Handler{acc.api.CORS},
		ObserveRequest: m.obs.ObserveRequest,
		OnRejected:     func(reason string, n int) { m.obs.OnRejected(reason, n); hub.Reject(n) },
		Metrics:        m.obs.Handler,
		OnAccepted:     hub.Publish,
		Live:           hub,
		Console:        con,
		TrackedUsers:   trackedUsersOf(m.store),
		Sources:        sourcesOf(m.store),
	}
	if err := m.server.Open(cfg.Addr()); err != nil {
		return err
	}
	if err := startPprof(ctx, cfg.PprofAddr, log.With("component", "pprof")); err != nil {
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
	if m.spool != nil {
		keep(m.spool.Close())
	}
	if m.store != nil {
		keep(m.store.Close())
	}
	if m.lock != nil {
		m.lock.Close()
	}
	if firstErr == nil {
		log.Info("shutdown complete")
	}
	return firstErr
}
