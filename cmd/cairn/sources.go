package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cairn-dev/cairn"
)

// runSources manages sources (write keys) offline: "sources create",
// "sources list", "sources disable" and "sources enable". Like `cairn
// users`, it opens the store directly, so the embedded store can be used
// only while the server is stopped; a running server offers the same
// through /api/sources.
func runSources(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	const usage = "usage: cairn sources create --name N [--events-per-second R --burst B] | list | disable ID | enable ID"
	if len(args) == 0 {
		return &configError{usage}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, usage+"\n\nRun 'cairn sources <create|list|disable|enable> -h' for a command's flags.")
		return flag.ErrHelp
	case "create":
		return runSourcesCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return runSourcesList(ctx, args[1:], stdout, stderr)
	case "disable", "enable":
		return runSourcesSetEnabled(ctx, args[0], args[1:], stdout, stderr)
	default:
		return &configError{fmt.Sprintf("unknown sources command %q (create, list, disable, enable)", args[0])}
	}
}

func runSourcesCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var name string
	var rate, burst int
	cfg, err := loadConfig("sources create", args, os.Getenv, ".env", stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "the source's name, e.g. web (required)")
		fs.IntVar(&rate, "events-per-second", 0, "sustained rate limit in events per second (0 = unlimited)")
		fs.IntVar(&burst, "burst", 0, "rate limit bucket size in events (0 = one second's worth)")
	})
	if err != nil {
		return err
	}
	if name == "" {
		return &configError{"--name is required"}
	}
	store, closeStore, err := openOfflineAs[cairn.SourceStore](ctx, cfg, stderr, "sources")
	if err != nil {
		return err
	}
	defer closeStore()
	now := time.Now().UTC().Truncate(time.Millisecond)
	src := &cairn.Source{Name: name, Enabled: true, RateLimit: cairn.RateLimit{EventsPerSecond: rate, Burst: burst},
		CreatedAt: now, UpdatedAt: now}
	if err := store.CreateSource(ctx, src); err != nil {
		if cairn.ErrorCode(err) == cairn.EINVALID {
			return errors.New(cairn.ErrorMessage(err))
		}
		return fmt.Errorf("create source: %w", err)
	}
	fmt.Fprintf(stderr, "created source %s (id %s); its write key:\n", src.Name, src.ID)
	fmt.Fprintln(stdout, src.WriteKey)
	return nil
}

func runSourcesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("sources list", args, os.Getenv, ".env", stderr, nil)
	if err != nil {
		return err
	}
	store, closeStore, err := openOfflineAs[cairn.SourceStore](ctx, cfg, stderr, "sources")
	if err != nil {
		return err
	}
	defer closeStore()
	list, err := store.ListSources(ctx)
	if err != nil {
		return fmt.Errorf("list sources: %w", err)
	}
	for _, s := range list {
		state := "enabled"
		if !s.Enabled {
			state = "disabled"
		}
		limit := "unlimited"
		if !s.RateLimit.Unlimited() {
			limit = fmt.Sprintf("%d/s burst %d", s.RateLimit.EventsPerSecond, max(s.RateLimit.Burst, s.RateLimit.EventsPerSecond))
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", s.ID, state, s.WriteKey, limit, s.Name)
	}
	return nil
}

func runSourcesSetEnabled(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	var id string
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	cfg, err := loadConfig("sources "+cmd, args, os.Getenv, ".env", stderr, nil)
	if err != nil {
		return err
	}
	if id == "" {
		return &configError{fmt.Sprintf("usage: cairn sources %s ID", cmd)}
	}
	store, closeStore, err := openOfflineAs[cairn.SourceStore](ctx, cfg, stderr, "sources")
	if err != nil {
		return err
	}
	defer closeStore()
	src, err := store.Source(ctx, id)
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return fmt.Errorf("no source with id %s", id)
	} else if err != nil {
		return err
	}
	src.Enabled = cmd == "enable"
	src.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if err := store.UpdateSource(ctx, src); err != nil {
		return fmt.Errorf("%s source: %w", cmd, err)
	}
	fmt.Fprintf(stdout, "source %s (%s) is now %sd\n", src.ID, src.Name, cmd)
	return nil
}
