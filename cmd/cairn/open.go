package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/pipeline"
	"github.com/cairn-dev/cairn/wal"
)

// The openers below are the one place where the store, the spool and the
// pipeline are built from a Config: `serve` (Main.Open), the offline
// commands (export, users) and the benchmark suite (bench.Options' openers)
// all use them, so what bench measures is what serve runs.

// storeDir is the embedded store's directory under the data directory.
func storeDir(cfg Config) string { return filepath.Join(cfg.DataDir, "store") }

// spoolDir is the spool's directory under the data directory.
func spoolDir(cfg Config) string { return filepath.Join(cfg.DataDir, "spool") }

// openEmbeddedStore opens the embedded (Pebble) store in dir with cfg's
// cache. With deferSync (the server, behind the spool) event batches are
// committed without an fsync and the pipeline syncs the store before it
// trims the spool; offline commands write synchronously.
func openEmbeddedStore(dir string, cfg Config, logger *slog.Logger, deferSync bool) (*pebble.Store, error) {
	return pebble.Open(dir, pebble.Options{Logger: logger, DeferSync: deferSync, CacheSize: cfg.StoreCache, MaxCompactions: cfg.StoreCompactions})
}

// openServerStore opens the store `serve` writes to: MongoDB when
// MONGODB_URI is set, otherwise the embedded store under the data directory
// (deferred sync). It also returns the start-up log line saying which.
func openServerStore(ctx context.Context, cfg Config, log *slog.Logger) (cairn.EventStore, string, []any, error) {
	if cfg.MongoURI != "" {
		st, err := openMongoStore(ctx, cfg, log.With("component", "mongo"))
		if err != nil {
			return nil, "", nil, fmt.Errorf("open mongodb store: %w", err)
		}
		return st, "store: mongodb", nil, nil
	}
	// Only the server purges: offline commands open the store without
	// retention.
	st, err := pebble.Open(storeDir(cfg), pebble.Options{Logger: log.With("component", "pebble"), DeferSync: true, //nolint:contextcheck // the store (and its purge loop) outlives any caller context
		CacheSize: cfg.StoreCache, Retention: cfg.Retention, MaxCompactions: cfg.StoreCompactions})
	if err != nil {
		return nil, "", nil, fmt.Errorf("open embedded store: %w", err)
	}
	return st, "store: embedded", []any{"dir", storeDir(cfg)}, nil
}

// openSpool opens the spool in dir with cfg's segment size. onSync (nil for
// none) is called after each group-commit fsync.
func openSpool(dir string, cfg Config, logger *slog.Logger, onSync func(d time.Duration, records, bytes int)) (*wal.WAL, error) {
	w, err := wal.Open(dir, wal.Options{SegmentSize: cfg.SegmentSize, Logger: logger, OnSync: onSync})
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	return w, nil
}

// newPipeline builds the batcher between spool and store with cfg's flush
// and backlog settings; it is not started. store may be nil for a pipeline
// that only ingests (the benchmark's backlog writer). onFlush (nil for none)
// is called after each store write attempt.
func newPipeline(spool *wal.WAL, store cairn.EventStore, cfg Config, logger *slog.Logger, onFlush func(events int, d time.Duration, err error)) (*pipeline.Pipeline, error) {
	p, err := pipeline.New(spool, store, pipeline.Options{
		FlushSize:      cfg.FlushSize,
		MaxFlushSize:   cfg.MaxFlushSize,
		FlushInterval:  cfg.FlushInterval,
		MaxBacklog:     cfg.MaxBacklog,
		DeadLetterPath: filepath.Join(cfg.DataDir, "deadletter.jsonl"),
		Logger:         logger,
		OnFlush:        onFlush,
	})
	if err != nil {
		return nil, fmt.Errorf("start pipeline: %w", err)
	}
	return p, nil
}
