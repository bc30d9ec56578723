package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cairn-dev/cairn"
)

// runExport prints stored events as JSON lines: every event, or one user's
// with --user. The embedded store can be read only while Cairn is stopped.
func runExport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var user string
	cfg, err := loadConfig("export", args, os.Getenv, ".env", stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "export only this user's events")
	})
	if err != nil {
		return err
	}
	store, closeStore, err := openOfflineStore(ctx, cfg, stderr, false)
	if err != nil {
		return err
	}
	defer closeStore()
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
