package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"flag"
	"github.com/cairn-dev/cairn"
)

// runErase erases a tracked user's events and derived data offline (the
// embedded store only while the server is stopped; a running server offers
// the same as DELETE /api/users/{userId}/events). Events of the user still
// in the spool are covered by the store's erasure marker: they are skipped
// when the server replays them.
func runErase(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var user string
	cfg, err := loadConfig("erase", args, os.Getenv, ".env", stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "the tracked user's id (required); the anonymous ids merged into it are erased too")
	})
	if err != nil {
		return err
	}
	user = strings.TrimSpace(user)
	if user == "" || len(user) > cairn.MaxIDBytes {
		return &configError{fmt.Sprintf("--user is required (1 to %d bytes)", cairn.MaxIDBytes)}
	}
	store, closeStore, err := openOfflineStore(ctx, cfg, stderr, false)
	if err != nil {
		return err
	}
	defer closeStore()
	er := eraserOf(store)
	if er == nil {
		return fmt.Errorf("the %T store cannot erase users", store)
	}
	res, err := er.EraseUser(ctx, user, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("erase %s: %w", user, err)
	}
	fmt.Fprintf(stdout, "erased %d events of %s", res.Events, user)
	if len(res.AnonymousIDs) > 0 {
		fmt.Fprintf(stdout, " (with anonymous ids %s)", strings.Join(res.AnonymousIDs, ", "))
	}
	fmt.Fprintln(stdout)
	return nil
}

// eraserOf returns the store's Eraser, or nil when it cannot erase.
func eraserOf(store cairn.EventStore) cairn.Eraser {
	er, _ := store.(cairn.Eraser)
	return er
}
