package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/cairn-dev/cairn/loadgen"
)

// loadgenFlags are the flags of `cairn loadgen`.
type loadgenFlags struct {
	cfg      loadgen.Config
	mode     string
	jsonOut  bool
	interval time.Duration
}

func parseLoadgenFlags(args []string, stderr io.Writer) (*loadgenFlags, error) {
	f := &loadgenFlags{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &f.cfg
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:3000", "base URL of the Cairn server; several comma-separated (ingest nodes of one cluster) spread the requests over them")
	fs.StringVar(&f.mode, "mode", "ingest", "ingest (POST /events), segment (POST /v1/batch, Segment track messages; needs --write-key) or journey (GET /users/{id}/journey)")
	fs.StringVar(&c.WriteKey, "write-key", "", "source write key sent as the HTTP Basic user name (segment mode)")
	fs.IntVar(&c.EventsPerRequest, "events-per-request", 1, "events per POST (1 = single-event requests; up to 1000)")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "connections / requests in flight")
	fs.Float64Var(&c.Rate, "rate", 0, "fixed request rate per second (open model); 0 = as fast as possible (closed model)")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to run (default 30s unless --total is set)")
	fs.Int64Var(&c.TotalEvents, "total", 0, "stop after this many events (journey mode: requests)")
	fs.BoolVar(&c.Gzip, "gzip", false, "gzip request bodies")
	fs.IntVar(&c.Users, "users", 1000, "number of distinct users")
	fs.IntVar(&c.SessionsPerUser, "sessions", 3, "sessions per user")
	fs.StringVar(&c.UserPrefix, "user-prefix", "user-", "user ids are this prefix followed by a number")
	fs.IntVar(&c.JourneyLimit, "journey-limit", 100, "limit of journey reads (journey mode)")
	fs.BoolVar(&c.Verify, "verify", false, "afterwards, check through the journey API that every acknowledged event is stored exactly once")
	fs.DurationVar(&c.VerifyTimeout, "verify-timeout", 60*time.Second, "how long verification waits for events to reach the store")
	fs.StringVar(&c.Auth.Cookie, "cookie", "", "session cookie for journey reads (name=value, or the better-auth.session_token value)")
	fs.StringVar(&c.Auth.Token, "token", "", "bearer token for journey reads")
	fs.StringVar(&c.Auth.Email, "email", "", "sign in with this account for journey reads (password from --password or CAIRN_LOADGEN_PASSWORD)")
	fs.StringVar(&c.Auth.Password, "password", "", "password for --email")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed for reproducible traffic (0 = random)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	fs.DurationVar(&f.interval, "progress-interval", 5*time.Second, "period of progress lines when stderr is not a terminal (0 = none)")
	fs.Usage = func() {} // -h prints the usage below; an error is one line
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "Usage: cairn loadgen [flags]\n\nGenerates realistic tracking traffic against a Cairn server and reports throughput and latency.\n\nFlags:")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, &configError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, &configError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if urls := splitList(c.URL); len(urls) > 1 {
		c.URL, c.URLs = urls[0], urls[1:]
	}
	c.Mode = loadgen.Mode(f.mode)
	if c.Duration == 0 && c.TotalEvents == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Auth.Email != "" && c.Auth.Password == "" {
		c.Auth.Password = os.Getenv("CAIRN_LOADGEN_PASSWORD")
	}
	return f, nil
}

// runLoadgen is `cairn loadgen`.
func runLoadgen(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	f, err := parseLoadgenFlags(args, stderr)
	if err != nil {
		return err
	}
	r, err := loadgen.New(f.cfg)
	if err != nil {
		return &configError{err.Error()}
	}
	cfg := r.Config()
	tty := isTerminal(stderr)
	if !f.jsonOut || tty {
		model := "closed model (max throughput)"
		if cfg.Rate > 0 {
			model = fmt.Sprintf("open model at %.0f req/s", cfg.Rate)
		}
		fmt.Fprintf(stderr, "loadgen: %s %s, %s, %d connections, %d events/request, run %s\n",
			cfg.Mode, strings.Join(append([]string{cfg.URL}, cfg.URLs...), ","), model, cfg.Concurrency, cfg.EventsPerRequest, cfg.RunID)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		showProgress(r, stderr, tty, f.interval, stop)
	}()
	res, err := r.Run(ctx)
	close(stop)
	<-done
	if err != nil {
		return err
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	} else {
		printLoadgenResult(stdout, res)
	}
	if res.Verify != nil && !res.Verify.OK {
		return errors.New("verification failed: not every acknowledged event is stored exactly once")
	}
	return allFailed(res)
}

// allFailed returns an error when a run sent requests and none succeeded
// (no 2xx answer): such a run measured nothing and must not exit 0.
func allFailed(res *loadgen.Result) error {
	var ok, failed int64
	for code, n := range res.Status {
		if strings.HasPrefix(code, "2") {
			ok += n
		} else {
			failed += n
		}
	}
	for _, n := range res.Errors {
		failed += n
	}
	if ok == 0 && failed > 0 {
		return fmt.Errorf("every request failed (status %v, errors %v)", res.Status, res.Errors)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// showProgress prints a live progress line (rewritten in place on a
// terminal, plain periodic lines otherwise) until stop is closed.
func showProgress(r *loadgen.Runner, w io.Writer, tty bool, interval time.Duration, stop <-chan struct{}) {
	if tty {
		interval = 250 * time.Millisecond
	}
	if interval <= 0 {
		<-stop
		return
	}
	cfg := r.Config()
	t := time.NewTicker(interval)
	defer t.Stop()
	var last loadgen.Progress
	for {
		select {
		case <-stop:
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case <-t.C:
		}
		p := r.Progress()
		if p.Verifying {
			if tty {
				fmt.Fprintf(w, "\r\033[Kverifying %d acknowledged events through the journey API…", p.Events)
			} else if !last.Verifying {
				fmt.Fprintf(w, "verifying %d acknowledged events through the journey API\n", p.Events)
			}
			last = p
			continue
		}
		dt := (p.Elapsed - last.Elapsed).Seconds()
		if dt <= 0 {
			continue
		}
		rate := float64(p.Events-last.Events) / dt
		reqRate := float64(p.Requests-last.Requests) / dt
		last = p
		line := fmt.Sprintf("%6.1fs  %9d events  %9.0f events/s  %8.0f req/s  non-2xx %d  errors %d",
			p.Elapsed.Seconds(), p.Events, rate, reqRate, p.Non2xx, p.Errors)
		if !tty {
			fmt.Fprintln(w, line)
			continue
		}
		frac := -1.0
		switch {
		case cfg.Duration > 0:
			frac = p.Elapsed.Seconds() / cfg.Duration.Seconds()
		case cfg.TotalEvents > 0 && cfg.Mode == loadgen.ModeIngest:
			frac = float64(p.Events) / float64(cfg.TotalEvents)
		}
		if frac >= 0 {
			line = progressBar(frac, 20) + " " + line
		}
		fmt.Fprint(w, "\r\033[K"+line)
	}
}

// progressBar renders frac (0..1) as a bar of width cells.
func progressBar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func printLoadgenResult(w io.Writer, res *loadgen.Result) {
	fmt.Fprintf(w, "mode          %s, %s model, %d connections, %d events/request, gzip %v\n",
		res.Mode, res.Model, res.Concurrency, res.EventsPerRequest, res.Gzip)
	if res.TargetRate > 0 {
		fmt.Fprintf(w, "target rate   %.0f req/s\n", res.TargetRate)
	}
	fmt.Fprintf(w, "duration      %.2f s\n", res.ElapsedSec)
	fmt.Fprintf(w, "requests      %d (%.1f/s)\n", res.Requests, res.RequestsPerSec)
	what := "acknowledged"
	if res.Mode == loadgen.ModeJourney {
		what = "read"
	}
	fmt.Fprintf(w, "events        %d %s (%.1f/s)\n", res.Events, what, res.EventsPerSec)
	l := res.Latency
	fmt.Fprintf(w, "latency ms    p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (mean %.3f)\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	var st []string
	for _, k := range res.SortedStatus() {
		st = append(st, fmt.Sprintf("%s: %d", k, res.Status[k]))
	}
	if len(st) == 0 {
		st = []string{"none"}
	}
	fmt.Fprintf(w, "status        %s\n", strings.Join(st, ", "))
	if len(res.Errors) == 0 {
		fmt.Fprintln(w, "errors        none")
	} else {
		for k, v := range res.Errors {
			fmt.Fprintf(w, "errors        %d x %s\n", v, k)
		}
	}
	if v := res.Verify; v != nil {
		if v.OK {
			fmt.Fprintf(w, "verify        OK: %d acknowledged events stored exactly once (%d users, %d journey pages)\n",
				v.Acknowledged, v.Users, v.Pages)
		} else {
			fmt.Fprintf(w, "verify        FAILED: %d acknowledged, %d found, %d missing, %d duplicated\n",
				v.Acknowledged, v.Found, v.Missing, v.Duplicated)
			if v.Error != "" {
				fmt.Fprintf(w, "              %s\n", v.Error)
			}
			if len(v.MissingSample) > 0 {
				fmt.Fprintf(w, "              missing e.g. %s\n", strings.Join(v.MissingSample, " "))
			}
			if len(v.DuplicatedSample) > 0 {
				fmt.Fprintf(w, "              duplicated e.g. %s\n", strings.Join(v.DuplicatedSample, " "))
			}
		}
		if v.Unacknowledged > 0 {
			fmt.Fprintf(w, "              %d stored events of this run were never acknowledged (failed or timed-out requests)\n", v.Unacknowledged)
		}
	}
}
