package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/bench"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/mongo"
)

// runBench is `cairn bench`: the benchmark suite (see package bench). With
// the hidden --noop-server ADDR flag it is instead the suite's no-op HTTP
// server, run as a separate process like Cairn.
func runBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o bench.Options
	var out, noop string
	fs.BoolVar(&o.Quick, "quick", false, "smaller smoke run (a few minutes): 3 s phases, 300k-event store, 200k backlog")
	fs.DurationVar(&o.Duration, "duration", 0, "length of each throughput phase (default 10s, 3s with --quick)")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "connections for batched runs")
	fs.IntVar(&o.SingleConcurrency, "single-concurrency", 64, "connections for single-event runs")
	fs.Int64Var(&o.PrefillEvents, "prefill", 0, "events in the store for journey reads (default 1000000, 300000 with --quick)")
	fs.IntVar(&o.PrefillUsers, "users", 0, "users the pre-filled events are spread over (default 100000, 10000 with --quick)")
	fs.DurationVar(&o.SustainDuration, "sustain", 0, "length of the first batched phase, the one the ingest ratio is read from (default 60s, --duration with --quick)")
	fs.DurationVar(&o.BurstDuration, "burst", 0, "batched burst before the second fixed-rate single-event run (default 20s, 5s with --quick)")
	fs.DurationVar(&o.AfterBurstDuration, "after-burst", 0, "length of the fixed-rate run right after the burst (default 30s, 6s with --quick)")
	fs.IntVar(&o.ReplayEvents, "replay", 0, "spool backlog replayed after a crash (default 1000000, 200000 with --quick)")
	fs.DurationVar(&o.Soak, "soak", 0, "add a soak phase of this length (e.g. 10m): ingest at half the batched maximum, watching RSS and goroutines")
	fs.StringVar(&o.Dir, "dir", "", "work directory for data and server logs (default: a temporary directory, removed afterwards)")
	fs.StringVar(&out, "out", "bench-results.json", "file receiving the JSON report (- = stdout, \"\" = none)")
	var only string
	fs.StringVar(&only, "only", "", "run only these phases: insights, or mongo (with --mongodb-uri)")
	fs.Int64Var(&o.InsightEvents, "insight-events", 0, "events in the 90-day store of the trends and unique-user queries (default 10000000, 200000 with --quick)")
	fs.Int64Var(&o.FunnelEvents, "funnel-events", 0, "events in the 30-day store of the funnel (default 1000000, 100000 with --quick)")
	fs.StringVar(&o.MongoURI, "mongodb-uri", "", "add the MongoDB phase (target T5) against this server, on scratch databases dropped afterwards")
	fs.StringVar(&noop, "noop-server", "", "internal: serve the no-op HTTP ceiling handler on this address")
	fs.Usage = func() {} // -h prints the usage below; an error is one line
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "Usage: cairn bench [flags]\n\nMeasures the store ceiling, the HTTP ceiling and Cairn end to end on this machine\n(several minutes; --quick for a smoke run), prints a Markdown table and writes JSON.\n\nFlags:")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return err
		}
		return &configError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &configError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if noop != "" {
		// The decoding ceiling parses bodies exactly as POST /events does,
		// with the default configuration's event rules.
		cfg, err := loadConfig("bench", nil, func(string) string { return "" }, "", io.Discard, nil)
		if err != nil {
			return fmt.Errorf("default configuration: %w", err)
		}
		rules := cairn.NewEventRules(cfg.EventTypes, cfg.MaxFuture)
		decode := func(body []byte) (int, error) {
			evs, err := cairnhttp.DecodeEvents(body, time.Now(), rules)
			return len(evs), err
		}
		return bench.ServeNoop(ctx, noop, stdout, decode)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the cairn binary: %w", err)
	}
	o.Exe = exe
	o.Progress = stderr
	if o.OpenStore, o.OpenIngester, err = benchOpeners(); err != nil { //nolint:contextcheck // the store (and its purge loop) outlives any caller context
		return err
	}
	if o.OpenStoreWithoutInsights, err = benchStoreWithoutInsights(); err != nil { //nolint:contextcheck // the store (and its purge loop) outlives any caller context
		return err
	}
	if o.MongoURI != "" {
		o.OpenMongo = func(ctx context.Context, db string) (bench.MongoTarget, error) {
			st, err := mongo.Open(ctx, mongo.Config{URI: o.MongoURI, Database: db}, slog.New(slog.DiscardHandler))
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return st, nil
		}
	}
	run := bench.Run
	switch only {
	case "":
	case "insights":
		run = bench.RunInsights
	case "mongo":
		if o.MongoURI == "" {
			return &configError{"--only mongo needs --mongodb-uri"}
		}
		run = bench.RunMongo
	default:
		return &configError{fmt.Sprintf("--only %q: the choices are insights and mongo", only)}
	}
	rep, err := run(ctx, o)
	if rep == nil {
		return err
	}
	fmt.Fprintln(stdout, rep.Markdown())
	if out != "" {
		data, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr != nil {
			return fmt.Errorf("encode report: %w", jerr)
		}
		data = append(data, '\n')
		if out == "-" {
			if _, werr := stdout.Write(data); werr != nil {
				return errors.Join(err, fmt.Errorf("write report: %w", werr))
			}
		} else if werr := os.WriteFile(out, data, 0o644); werr != nil {
			return fmt.Errorf("write %s: %w", out, werr)
		} else {
			fmt.Fprintf(stderr, "bench: report written to %s\n", out)
		}
	}
	if err != nil {
		return err
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d phase(s) failed", len(rep.Errors))
	}
	return nil
}

// benchOpeners returns the suite's store and ingester openers: the same
// openers `cairn serve` uses, with the default configuration (the suite
// starts its Cairn processes with a clean environment, so defaults are what
// it measures).
func benchOpeners() (func(string) (cairn.EventStore, error), func(string, int64) (cairn.Ingester, func() error, error), error) {
	cfg, err := loadConfig("bench", nil, func(string) string { return "" }, "", io.Discard, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("default configuration: %w", err)
	}
	discard := slog.New(slog.DiscardHandler)
	openStore := func(dir string) (cairn.EventStore, error) {
		st, err := openEmbeddedStore(dir, cfg, discard, true)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return st, nil
	}
	openIngester := func(dataDir string, maxBacklog int64) (cairn.Ingester, func() error, error) {
		c := cfg
		c.DataDir, c.MaxBacklog = dataDir, maxBacklog
		spool, err := openSpool(spoolDir(c), c, discard, nil)
		if err != nil {
			return nil, nil, err
		}
		p, err := newPipeline(spool, nil, c, discard, nil)
		if err != nil {
			return nil, nil, errors.Join(err, spool.Close())
		}
		return p, spool.Close, nil
	}
	return openStore, openIngester, nil
}
