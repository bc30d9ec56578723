package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/cairn-dev/cairn"
)

// openOfflineStore opens the configured store for a command that works while
// the server is stopped (export, users): MongoDB when MONGODB_URI is set,
// otherwise the embedded store, under the data directory's lock. With create
// false, a missing embedded store is an error rather than a new empty one.
// The returned function closes the store and releases the lock, logging a
// failure (the command's work is done by then).
func openOfflineStore(ctx context.Context, cfg Config, stderr io.Writer, create bool) (cairn.EventStore, func(), error) {
	log := newLogger(cfg, stderr)
	if cfg.MongoURI != "" {
		store, err := openMongoStore(ctx, cfg, log.With("component", "mongo"))
		if err != nil {
			return nil, nil, err
		}
		return store, func() { logClose(log, "close store", store) }, nil
	}
	dir := storeDir(cfg)
	if create {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("create data dir: %w", err)
		}
	} else if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("no embedded store at %s", dir)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (stop the server first: the embedded store is opened by one process at a time)", err)
	}
	store, err := openEmbeddedStore(dir, cfg, log.With("component", "pebble"), false) //nolint:contextcheck // the store (and its purge loop) outlives any caller context
	if err != nil {
		lock.Close() //nolint:errcheck // leaving on the error returned below; the lock is only released
		return nil, nil, err
	}
	return store, func() {
		logClose(log, "close store", store)
		logClose(log, "close data dir lock", lock)
	}, nil
}

// openOfflineAs opens the configured store like openOfflineStore (creating
// an empty embedded one if needed) and returns it as the interface T a
// command needs (cairn.SourceStore, cairn.AuthStore), or an error naming
// what the store cannot keep.
func openOfflineAs[T any](ctx context.Context, cfg Config, stderr io.Writer, what string) (T, func(), error) {
	var zero T
	store, closeStore, err := openOfflineStore(ctx, cfg, stderr, true)
	if err != nil {
		return zero, nil, err
	}
	t, ok := store.(T)
	if !ok {
		closeStore()
		return zero, nil, fmt.Errorf("the %T store cannot keep %s", store, what)
	}
	return t, closeStore, nil
}

// logClose closes c and logs a failure as what.
func logClose(log *slog.Logger, what string, c io.Closer) {
	if err := c.Close(); err != nil {
		log.Error(what, "err", err)
	}
}
