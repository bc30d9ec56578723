package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// runHealthcheck probes a running Cairn's GET /health and exits 0 when it
// answers 200, 1 otherwise. It is the container image's HEALTHCHECK (a
// distroless image has no curl). The default URL is the loopback address of
// PORT (3000 when unset).
func runHealthcheck(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cairn healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := strings.TrimSpace(os.Getenv("PORT"))
	if port == "" {
		port = "3000"
	}
	url := fs.String("url", "http://127.0.0.1:"+port+"/health", "health endpoint to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "Usage: cairn healthcheck [--url URL] [--timeout D]\n\nFlags:")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return err
		}
		return &configError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &configError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return &configError{fmt.Sprintf("invalid --url: %v", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", *url, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err := resp.Body.Close(); err != nil {
		return fmt.Errorf("probe %s: %w", *url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: status %d: %s", *url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
