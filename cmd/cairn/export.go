package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
)

// runExport prints stored events as JSON lines: every event, or one user's
// with --user. The embedded store can be read only while Cairn is stopped.
func runExport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var user string
	cfg, _, err := loadConfig("export", args, os.Getenv, ".env", stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "export only this user's events")
	})
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	var store cairn.EventStore
	if cfg.MongoURI != "" {
		store, err = openMongoStore(ctx, cfg, log.With("component", "mongo"))
	} else {
		dir := filepath.Join(cfg.DataDir, "store")
		if _, serr := os.Stat(dir); serr != nil {
			return fmt.Errorf("no embedded store at %s", dir)
		}
		var lock *os.File
		if lock, err = lockDataDir(cfg.DataDir); err != nil {
			return fmt.Errorf("%w (stop the server first, or export through the journey API)", err)
		}
		defer lock.Close()
		store, err = pebble.Open(dir, pebble.Options{Logger: log.With("component", "pebble")})
	}
	if err != nil {
		return err
	}
	defer store.Close()
	w := bufio.NewWriterSize(stdout, 1<<20)
	var buf []byte
	err = store.ExportEvents(ctx, user, func(e *cairn.Event) error {
		buf = append(e.AppendJSON(buf[:0]), '\n')
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return w.Flush()
}
