package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/loadgen"
)

type suite struct {
	opts Options
	rep  *Report
	rss  float64 // peak RSS over every Cairn phase, MiB
	perf perfRows
}

// workDir makes a temporary work directory when o.Dir is empty, and
// returns the function that removes it (nothing to do for a given Dir).
func (o *Options) workDir() (func(), error) {
	if o.Dir != "" {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "cairn-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: temp dir: %w", err)
	}
	o.Dir = dir
	return func() {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(o.Progress, "bench: remove temp dir: %v\n", err)
		}
	}, nil
}

// Run runs the whole suite and returns its report. A phase that fails is
// recorded in Report.Errors and the suite goes on; Run returns an error only
// when it cannot start at all.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.setDefaults()
	if opts.Exe == "" {
		return nil, fmt.Errorf("bench: the cairn binary is required")
	}
	if opts.OpenStore == nil || opts.OpenIngester == nil {
		return nil, fmt.Errorf("bench: the store and ingester openers are required")
	}
	return runSuite(ctx, opts, func(ctx context.Context, s *suite) { s.all(ctx) })
}

// runSuite makes the work directory, runs phases on a new suite and
// returns its report, timed. A phase's failure is in Report.Errors.
func runSuite(ctx context.Context, opts Options, phases func(ctx context.Context, s *suite)) (*Report, error) {
	cleanup, err := opts.workDir()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	s := &suite{opts: opts, rep: &Report{StartedAt: time.Now().UTC(), Quick: opts.Quick, Machine: machine()}}
	start := time.Now()
	phases(ctx, s)
	s.rep.DurationSec = time.Since(start).Seconds()
	return s.rep, ctx.Err()
}

// all runs every phase of the suite.
func (s *suite) all(ctx context.Context) {
	opts := s.opts
	store, err := s.storeCeiling(ctx)
	s.check("store ceiling", err)
	httpBatch, httpSingle, err := s.httpCeiling(ctx)
	s.check("HTTP ceiling", err)
	e2e, err := s.cairn(ctx)
	s.check("Cairn end to end", err)
	if e2e != nil {
		s.ratioTargets(e2e.ratios)
	}
	replay, err := s.replay(ctx)
	s.check("spool replay", err)
	s.check("insights", s.insights(ctx))
	s.check("MongoDB", s.mongo(ctx))
	s.targets(store, httpBatch, httpSingle, e2e, replay)
	s.issue14Targets(store, e2e, replay)
	if opts.Soak > 0 {
		rate := 30000.0
		if e2e != nil && e2e.batch != nil {
			rate = sustained(e2e.batch) / 2
		}
		s.check("soak", s.soak(ctx, rate))
	}
}

func (s *suite) check(phase string, err error) {
	if err != nil {
		s.rep.Errors = append(s.rep.Errors, phase+": "+err.Error())
		fmt.Fprintf(s.opts.Progress, "bench: %s failed: %v\n", phase, err)
	}
}

// stop stops a phase's server, waiting up to timeout, and reports on the
// progress output when it had to be killed: the phase's measurements stand.
func (s *suite) stop(phase string, p *process, timeout time.Duration) {
	if err := p.Stop(timeout); err != nil {
		s.progress("%s: stop: %v", phase, err)
	}
}

func (s *suite) progress(format string, args ...any) {
	fmt.Fprintf(s.opts.Progress, "bench: "+format+"\n", args...)
}

// addTarget adds a target to the report.
func (s *suite) addTarget(name string, value float64, unit, goal string, met bool, detail string) {
	s.rep.Targets = append(s.rep.Targets, Target{Name: name, Value: value, Unit: unit, Goal: goal, Met: met, Detail: detail})
}

func (s *suite) add(r Row) *Row {
	s.rep.Rows = append(s.rep.Rows, r)
	s.progress("%-34s %10.0f events/s %8.0f req/s  p99 %7.2f ms  %s", r.Name, r.EventsPerSec, r.RequestsPerSec, r.P99Ms, r.Note)
	return &s.rep.Rows[len(s.rep.Rows)-1]
}

// benchEvents fills evs with events whose ids start at seq, over users users,
// shaped like loadgen's (ids, a ~100-byte payload).
func benchEvents(evs []cairn.Event, seq int64, users int, now time.Time) {
	payload := json.RawMessage(`{"url":"/products/laptop-pro-14","referrer":"https://www.google.com/","loadTimeMs":412}`)
	for i := range evs {
		k := seq + int64(i)
		u := "user-" + strconv.FormatInt(k*7919%int64(users), 10)
		evs[i] = cairn.Event{
			EventID: "bench-" + strconv.FormatInt(k, 36), UserID: u, SessionID: u + "-s1", Type: "page_view",
			Payload: payload, OccurredAt: now.Add(-time.Duration(k%3600000) * time.Millisecond), ReceivedAt: now,
		}
	}
}

// storeCeiling writes pre-built 500-event batches into a fresh embedded
// store, one batch at a time like the batcher, with Cairn's durability: the
// store opened as `cairn serve` opens it (Options.OpenStore: deferred sync,
// default cache) and synced once per second, as the pipeline does with its
// default SyncInterval (the spool holds the durable copy in between).
func (s *suite) storeCeiling(ctx context.Context) (*Row, error) {
	st, err := s.opts.OpenStore(filepath.Join(s.opts.Dir, "store-ceiling"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := st.Close(); err != nil {
			s.progress("store ceiling: close store: %v", err)
		}
	}()
	syncStore := func(ctx context.Context) error {
		if ds, ok := st.(cairn.DeferredSyncer); ok {
			return ds.Sync(ctx)
		}
		return nil
	}
	const batch = 500
	now := time.Now().UTC().Truncate(time.Millisecond)
	pool := make([][]cairn.Event, 32)
	for i := range pool {
		pool[i] = make([]cairn.Event, batch)
		benchEvents(pool[i], int64(i*batch), 100_000, now)
	}
	hist := loadgen.NewHistogram()
	var n int64
	start := time.Now()
	lastSync := start
	for b := 0; time.Since(start) < s.opts.Duration && ctx.Err() == nil; b++ {
		evs := pool[b%len(pool)]
		if b >= len(pool) {
			// New ids for reused batches: every event is new, as in Cairn.
			for i := range evs {
				evs[i].EventID = "bench-" + strconv.FormatInt(int64(b*batch+i), 36)
			}
		}
		t := time.Now()
		res, err := st.InsertEvents(ctx, evs)
		if err != nil {
			return nil, fmt.Errorf("insert: %w", err)
		}
		if time.Since(lastSync) >= time.Second {
			if err := syncStore(ctx); err != nil {
				return nil, fmt.Errorf("sync: %w", err)
			}
			lastSync = time.Now()
		}
		hist.Record(time.Since(t))
		n += int64(res.Inserted)
	}
	if err := syncStore(ctx); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	el := time.Since(start).Seconds()
	l := hist.Summary()
	return s.add(Row{Name: "Store ceiling", Setup: "pebble InsertEvents, 500-event batches, 1 writer, store synced every second as Cairn does",
		EventsPerSec: float64(n) / el, RequestsPerSec: float64(l.Count) / el, P50Ms: l.P50, P99Ms: l.P99, MaxMs: l.Max,
		Note: "latency = one batch commit"}), nil
}

// load runs one loadgen configuration against base.
func (s *suite) load(ctx context.Context, cfg loadgen.Config) (*loadgen.Result, error) {
	r, err := loadgen.New(cfg)
	if err != nil {
		return nil, err
	}
	return r.Run(ctx)
}

func rowFrom(name, setup string, res *loadgen.Result, rss float64) Row {
	var non2xx, errs int64
	for k, v := range res.Status {
		if len(k) != 3 || k[0] != '2' {
			non2xx += v
		}
	}
	for _, v := range res.Errors {
		errs += v
	}
	return Row{Name: name, Setup: setup, EventsPerSec: res.EventsPerSec, RequestsPerSec: res.RequestsPerSec,
		P50Ms: res.Latency.P50, P99Ms: res.Latency.P99, P999Ms: res.Latency.P999, MaxMs: res.Latency.Max, RSSMB: rss, Non2xx: non2xx, Errors: errs}
}

// httpCeiling drives the no-op server with the batched and single-event
// loads Cairn gets.
func (s *suite) httpCeiling(ctx context.Context) (batch, single *Row, err error) {
	p, err := startNoop(ctx, s.opts.Exe, s.opts.Dir)
	if err != nil {
		return nil, nil, err
	}
	defer s.stop("HTTP ceiling", p, 5*time.Second)
	o := s.opts
	res, err := s.load(ctx, loadgen.Config{URL: p.URL, EventsPerRequest: 100, Concurrency: o.Concurrency,
		Duration: o.Duration, Users: o.PrefillUsers})
	if err != nil {
		return nil, nil, err
	}
	r := rowFrom("HTTP ceiling, batched", fmt.Sprintf("no-op handler, 100 events/req, %d conns", o.Concurrency), res, 0)
	batch = s.add(r)
	res, err = s.load(ctx, loadgen.Config{URL: p.URL, EventsPerRequest: 1, Concurrency: o.SingleConcurrency,
		Duration: o.Duration, Users: o.PrefillUsers})
	if err != nil {
		return batch, nil, err
	}
	single = s.add(rowFrom("HTTP ceiling, single-event", fmt.Sprintf("no-op handler, 1 event/req, %d conns", o.SingleConcurrency), res, 0))
	return batch, single, nil
}

// e2eRows are Cairn's end-to-end measurements.
type e2eRows struct {
	batch, single, fixed, journey, journeyIngest *Row
	ratios                                       *ratioRows
}

// cairn measures a real `cairn serve`.
func (s *suite) cairn(ctx context.Context) (*e2eRows, error) {
	o := s.opts
	p, err := startCairn(ctx, o.Exe, filepath.Join(o.Dir, "cairn-data"), "cairn")
	if err != nil {
		return nil, err
	}
	defer func() { s.stop("Cairn end to end", p, 2*time.Minute) }() // p is replaced by the restart
	out := &e2eRows{}
	var accepted int64
	// The first account of the fresh server is its admin: it creates the
	// source of the Segment phase, opens live streams and reads journeys.
	email, password := "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36)+"@example.com", "bench-password-1"
	cookie, err := signUpSession(ctx, p.URL, email, password)
	if err != nil {
		return nil, err
	}
	// phase runs one load with RSS sampling and waits for the backlog to drain.
	phase := func(name, setup string, cfg loadgen.Config) (*Row, error) {
		cfg.URL = p.URL
		if cfg.Users == 0 {
			cfg.Users = o.PrefillUsers
		}
		rss := sampleRSS(p.PID())
		res, err := s.load(ctx, cfg)
		peak := rss.Stop()
		s.rss = max(s.rss, peak)
		if err != nil {
			return nil, err
		}
		accepted += res.Events
		runEnd := time.Now()
		drained, err := waitDrained(ctx, p.URL, 10*time.Minute)
		if err != nil {
			return nil, err
		}
		row := rowFrom(name, setup, res, peak)
		drain := drained.Sub(runEnd).Seconds()
		row.StoredPerSec = float64(res.Events) / (res.ElapsedSec + drain)
		row.Note = fmt.Sprintf("stored %.0f events/s sustained (backlog drained %.1f s after the run)", row.StoredPerSec, drain)
		return s.add(row), nil
	}

	// Issue 14 compares Cairn with a no-op server that decodes the events
	// as Cairn does (no spool, no store), run next to it and measured a b b a
	// (no-op, Cairn, Cairn, no-op) so that the shared machine's drift weighs
	// on both alike: single events at the fixed rate on the fresh store
	// (target 2), then batched at the maximum (target 1).
	noop, err := startNoop(ctx, o.Exe, o.Dir)
	if err != nil {
		return out, err
	}
	defer s.stop("no-op server", noop, 5*time.Second)
	noopRun := func(name, setup string, cfg loadgen.Config) (*Row, error) {
		cfg.URL = noop.URL + "/decode"
		if cfg.Users == 0 {
			cfg.Users = o.PrefillUsers
		}
		res, err := s.load(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return s.add(rowFrom(name, setup, res, 0)), nil
	}
	abba := func(noopName, noopSetup, name, setup string, cfg loadgen.Config) (noopMean, cairnMean *Row, err error) {
		var ns, cs []*Row
		for k := range 4 {
			var r *Row
			if k == 0 || k == 3 {
				r, err = noopRun(fmt.Sprintf("%s (%d)", noopName, k/2+1), noopSetup, cfg)
				ns = append(ns, r)
			} else {
				r, err = phase(fmt.Sprintf("%s (%d)", name, k), setup, cfg)
				cs = append(cs, r)
			}
			if err != nil {
				return nil, nil, err
			}
		}
		return meanLatencyRow(ns), meanLatencyRow(cs), nil
	}
	fixedCfg := loadgen.Config{EventsPerRequest: 1, Concurrency: 256, Rate: o.FixedRate, Duration: o.Duration}
	fixedSetup := fmt.Sprintf("1 event/req, open model %.0f req/s, 256 conns", o.FixedRate)
	if s.perf.noopFixed, out.fixed, err = abba("HTTP+JSON ceiling, single-event fixed rate", "no-op handler decoding, "+fixedSetup,
		"Cairn, single-event fixed rate", "fresh store, "+fixedSetup, fixedCfg); err != nil {
		return out, err
	}
	batchSetup := fmt.Sprintf("100 events/req, %d conns, max rate, %v", o.Concurrency, o.SustainDuration)
	if s.perf.httpJSON, out.batch, err = abba("HTTP+JSON ceiling, batched", "no-op handler decoding the events, "+batchSetup,
		"Cairn, batched", batchSetup, loadgen.Config{EventsPerRequest: 100, Concurrency: o.Concurrency, Duration: o.SustainDuration}); err != nil {
		return out, err
	}
	if out.single, err = phase("Cairn, single-event", fmt.Sprintf("1 event/req, %d conns, max rate", o.SingleConcurrency),
		loadgen.Config{EventsPerRequest: 1, Concurrency: o.SingleConcurrency, Duration: o.Duration}); err != nil {
		return out, err
	}
	// Issue 14, target 2: a batched burst, then at once (no wait for the
	// backlog or the compactions it leaves) the fixed single-event rate.
	res, err := s.load(ctx, loadgen.Config{URL: p.URL, EventsPerRequest: 100, Concurrency: o.Concurrency,
		Duration: o.BurstDuration, Users: o.PrefillUsers})
	if err != nil {
		return out, err
	}
	accepted += res.Events
	s.perf.burst = s.add(rowFrom("Cairn, batched burst", fmt.Sprintf("100 events/req, %d conns, max rate, %v, not drained", o.Concurrency, o.BurstDuration), res, 0))
	afterCfg := fixedCfg
	afterCfg.Duration = o.AfterBurstDuration
	afterNoop := []*Row{s.perf.noopFixed}
	if s.perf.afterBurst, err = phase("Cairn, single-event fixed rate after burst", fmt.Sprintf("the %v right after the burst, 1 event/req, open model %.0f req/s, 256 conns", o.AfterBurstDuration, o.FixedRate),
		afterCfg); err != nil {
		return out, err
	}
	// The no-op's fixed-rate p99 the after-burst run is compared with: the
	// mean of the runs before (the a b b a above) and right after it.
	r2, err := noopRun("HTTP+JSON ceiling, single-event fixed rate (3)", "no-op handler decoding, after the burst run, "+fixedSetup, fixedCfg)
	if err != nil {
		return out, err
	}
	s.perf.noopAfterBurst = meanLatencyRow(append(afterNoop, r2))

	// Pre-fill the store for journey reads; at least half of PrefillEvents
	// go in here, so the stored-rate series (target 4) has a range to cover.
	if rest := max(o.PrefillEvents-accepted, o.PrefillEvents/2); rest > 0 {
		s.progress("pre-filling the store with %d more events over %d users", rest, o.PrefillUsers)
		series := sampleSeries(ctx, p.URL, 250*time.Millisecond)
		res, err := s.load(ctx, loadgen.Config{URL: p.URL, EventsPerRequest: 500, Concurrency: 8, TotalEvents: rest,
			Users: o.PrefillUsers})
		if err == nil {
			_, err = waitDrained(ctx, p.URL, 10*time.Minute)
		}
		s.rep.Series = series.Stop()
		if err != nil {
			return out, err
		}
		accepted += res.Events
		if res.Events < rest {
			return out, fmt.Errorf("pre-fill: %d of %d events acknowledged (status %v, errors %v)", res.Events, rest, res.Status, res.Errors)
		}
		if _, err := waitDrained(ctx, p.URL, 10*time.Minute); err != nil {
			return out, err
		}
	}

	// Journey reads while ingest runs at half the batched maximum.
	ingestRate := max(1, sustained(out.batch)/2/100)
	const readRate = 500
	rss := sampleRSS(p.PID())
	var wg sync.WaitGroup
	var ingRes *loadgen.Result
	var ingErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ingRes, ingErr = s.load(ctx, loadgen.Config{URL: p.URL, EventsPerRequest: 100, Concurrency: 32,
			Rate: ingestRate, Duration: o.Duration, Users: o.PrefillUsers})
	}()
	jres, jerr := s.load(ctx, loadgen.Config{URL: p.URL, Mode: loadgen.ModeJourney, Concurrency: 32, Rate: readRate,
		Duration: o.Duration, Users: o.PrefillUsers, JourneyLimit: 100, Auth: loadgen.Auth{Email: email, Password: password}})
	wg.Wait()
	peak := rss.Stop()
	s.rss = max(s.rss, peak)
	if jerr != nil {
		return out, jerr
	}
	if ingErr != nil {
		return out, ingErr
	}
	accepted += ingRes.Events
	s.perf.storedAtJourney = accepted
	r := rowFrom("Cairn, journey reads under ingest", fmt.Sprintf("limit 100, open model %d req/s, %d events stored over %d users", readRate, accepted, o.PrefillUsers), jres, peak)
	r.EventsPerSec = 0
	if jres.Requests > 0 {
		r.Note = fmt.Sprintf("%.1f events/page", float64(jres.Events)/float64(jres.Requests))
	}
	if le, frac, ok := serverQuantile(ctx, p.URL, "GET /users/{userId}/journey", 0.99, 0.005); ok {
		r.Note += fmt.Sprintf("; server-side p99 ≤ %g ms, %.1f%% ≤ 5 ms (from /metrics)", le*1000, frac*100)
		s.perf.journeyServerP99 = le * 1000
	}
	if frac, ok := serverFraction(ctx, p.URL, "GET /users/{userId}/journey", 0.002); ok {
		s.perf.journeyServer2ms = frac
	}
	out.journey = s.add(r)
	ir := rowFrom("Cairn, ingest during journey reads", fmt.Sprintf("100 events/req, open model %.0f req/s (half the sustained max)", ingestRate), ingRes, peak)
	out.journeyIngest = s.add(ir)

	// Issue 14, target 3: one user's long journey, paged end to end.
	bigUser := "bigjourney-0"
	s.progress("storing a %d-event journey for %s", o.BigJourneyEvents, bigUser)
	if res, err = s.load(ctx, loadgen.Config{URL: p.URL, EventsPerRequest: 500, Concurrency: 8, TotalEvents: o.BigJourneyEvents,
		Users: 1, UserPrefix: "bigjourney-"}); err != nil {
		return out, err
	}
	accepted += res.Events
	if _, err := waitDrained(ctx, p.URL, 10*time.Minute); err != nil {
		return out, err
	}
	n, took, pages, err := pageJourney(ctx, p.URL, cookie, bigUser)
	if err != nil {
		return out, err
	}
	l := pages.Summary()
	bj := Row{Name: "Cairn, long journey paged", Setup: fmt.Sprintf("GET /users/{userId}/journey, %d events/page, one client, to the last page", bigJourneyPage),
		EventsPerSec: float64(n) / took.Seconds(), RequestsPerSec: float64(l.Count) / took.Seconds(), P50Ms: l.P50, P99Ms: l.P99, MaxMs: l.Max,
		Note: fmt.Sprintf("%d events in %d pages, %.2f s", n, l.Count, took.Seconds())}
	if n != res.Events {
		bj.Note += fmt.Sprintf("; expected %d", res.Events)
	}
	s.perf.bigJourney = s.add(bj)

	// Issue 10: Segment batches next to the same events on POST /events.
	writeKey, err := createSource(ctx, p.URL, cookie)
	if err != nil {
		return out, err
	}
	rr := &ratioRows{}
	out.ratios = rr
	batched := loadgen.Config{EventsPerRequest: 100, Concurrency: o.Concurrency, Duration: o.Duration}
	seg := batched
	seg.Mode, seg.WriteKey = loadgen.ModeSegment, writeKey
	// pair runs a, b, b, a (so a drift of the shared machine or of the
	// growing store weighs on both alike) and returns their means; around
	// runs b.
	pair := func(a, b pairSide, around func(run func() (*Row, error)) (*Row, error)) (ma, mb *Row, err error) {
		var as, bs []*Row
		for k, side := range []pairSide{a, b, b, a} {
			name := fmt.Sprintf("%s (%d)", side.name, k/2+1)
			run := func() (*Row, error) { return phase(name, side.setup, side.cfg) }
			var r *Row
			if k == 1 || k == 2 {
				r, err = around(run)
				bs = append(bs, r)
			} else {
				r, err = run()
				as = append(as, r)
			}
			if err != nil {
				return nil, nil, err
			}
		}
		return meanRow(as), meanRow(bs), nil
	}
	plain := func(run func() (*Row, error)) (*Row, error) { return run() }
	conns := fmt.Sprintf("%d conns, max rate", o.Concurrency)
	if rr.events, rr.segment, err = pair(
		pairSide{"Cairn, /events (vs Segment)", "100 events/req as an array, " + conns, batched},
		pairSide{"Cairn, Segment /v1/batch", "100 track messages/batch, Basic write key, " + conns, seg}, plain); err != nil {
		return out, err
	}

	// Issue 11: batched ingest without and with live subscribers.
	withLive := func(run func() (*Row, error)) (*Row, error) {
		lc, err := subscribe(ctx, p.URL, cookie, LiveSubscribers)
		if err != nil {
			return nil, err
		}
		r, err := run()
		read := lc.Stop()
		if err == nil {
			r.Note += fmt.Sprintf("; live streams read %.1f MiB", float64(read)/(1<<20))
		}
		return r, err
	}
	if rr.quiet, rr.live, err = pair(
		pairSide{"Cairn, batched, no live subscribers", "100 events/req, " + conns, batched},
		pairSide{fmt.Sprintf("Cairn, batched, %d live subscribers", LiveSubscribers),
			fmt.Sprintf("100 events/req, %s; %d GET /api/live streams read continuously", conns, LiveSubscribers), batched}, withLive); err != nil {
		return out, err
	}

	// Issue 14, target 4: start-up with the filled store (graceful stop,
	// then from exec to listening).
	stored, err := storedEvents(ctx, p.URL)
	if err != nil {
		return out, err
	}
	s.perf.storedAtStartup = stored
	if err := p.Stop(2 * time.Minute); err != nil {
		return out, fmt.Errorf("stop before restart: %w", err)
	}
	start := time.Now()
	if p, err = startCairn(ctx, o.Exe, filepath.Join(o.Dir, "cairn-data"), "cairn-restart"); err != nil {
		return out, err
	}
	up := time.Since(start)
	s.perf.startup = s.add(Row{Name: "Cairn, start-up", Setup: fmt.Sprintf("restart with %d events stored, exec to listening", stored),
		MaxMs: float64(up.Microseconds()) / 1000, Note: fmt.Sprintf("%.2f s", up.Seconds())})
	return out, nil
}

// replay writes a backlog into a spool as the pipeline does, without ever
// flushing it (a crash with a backlog), then starts Cairn on it and measures
// how fast the backlog drains into the store.
func (s *suite) replay(ctx context.Context) (*Row, error) {
	o := s.opts
	dataDir := filepath.Join(o.Dir, "replay-data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	s.progress("writing a %d-event spool backlog", o.ReplayEvents)
	if err := writeBacklog(ctx, o.OpenIngester, dataDir, o.ReplayEvents); err != nil {
		return nil, fmt.Errorf("write backlog: %w", err)
	}
	start := time.Now()
	p, err := startCairn(ctx, o.Exe, dataDir, "replay")
	if err != nil {
		return nil, err
	}
	defer s.stop("spool replay", p, 2*time.Minute)
	rss := sampleRSS(p.PID())
	done, err := waitDrained(ctx, p.URL, 30*time.Minute)
	peak := rss.Stop()
	s.rss = max(s.rss, peak)
	if err != nil {
		return nil, err
	}
	el := done.Sub(start).Seconds()
	return s.add(Row{Name: "Spool replay after crash", Setup: fmt.Sprintf("%d-event backlog, from process start to empty backlog", o.ReplayEvents),
		EventsPerSec: float64(o.ReplayEvents) / el, RSSMB: peak, Note: fmt.Sprintf("%.1f s", el)}), nil
}

// writeBacklog appends n events to dataDir's spool through the pipeline's
// Ingest (100-event records, 16 concurrent writers), and stops without
// starting the batcher: the state a crash leaves when the store lags.
func writeBacklog(ctx context.Context, open func(string, int64) (cairn.Ingester, func() error, error), dataDir string, n int) error {
	pipe, closeSpool, err := open(dataDir, int64(n)+1)
	if err != nil {
		return err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs := make([]cairn.Event, 100)
			for {
				i := next.Add(100) - 100
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				k := min(100, int64(n)-i)
				benchEvents(evs[:k], 10_000_000+i, 100_000, now)
				if err := pipe.Ingest(ctx, evs[:k]); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	cerr := closeSpool()
	if err := <-errc; err != nil {
		return err
	}
	return cerr
}

func (s *suite) targets(store, httpBatch, httpSingle *Row, e2e *e2eRows, replay *Row) {
	add := s.addTarget
	if e2e == nil {
		e2e = &e2eRows{}
	}
	if b := e2e.batch; b != nil {
		sus := sustained(b)
		add("Batched durable ingest (sustained)", sus, "events/s", "≥ 30,000 events/s", sus >= 30000,
			fmt.Sprintf("acknowledged at %.0f events/s", b.EventsPerSec))
		if store != nil {
			r := sus / store.EventsPerSec * 100
			add("Batched ingest vs store ceiling", r, "%", "≥ 70%", r >= 70,
				fmt.Sprintf("%.0f / %.0f events/s", sus, store.EventsPerSec))
		}
		if httpBatch != nil {
			r := b.EventsPerSec / httpBatch.EventsPerSec * 100
			add("Batched ingest vs HTTP ceiling (info)", r, "%", "–", true,
				fmt.Sprintf("%.0f / %.0f events/s", b.EventsPerSec, httpBatch.EventsPerSec))
		}
	}
	if sg := e2e.single; sg != nil && httpSingle != nil {
		r := sg.RequestsPerSec / httpSingle.RequestsPerSec * 100
		add("Single-event throughput vs HTTP ceiling", r, "%", "≥ 50%", r >= 50,
			fmt.Sprintf("%.0f / %.0f req/s", sg.RequestsPerSec, httpSingle.RequestsPerSec))
	}
	if f := e2e.fixed; f != nil {
		add(fmt.Sprintf("Single-event p99 at %.0f req/s", s.opts.FixedRate), f.P99Ms, "ms", "≤ 10 ms", f.P99Ms <= 10 && f.Failed() == 0,
			fmt.Sprintf("achieved %.0f req/s, %d failed", f.RequestsPerSec, f.Failed()))
	}
	if j := e2e.journey; j != nil {
		add("Journey p99 under ingest", j.P99Ms, "ms", "≤ 5 ms", j.P99Ms <= 5 && j.Failed() == 0,
			fmt.Sprintf("%.0f req/s, %d failed", j.RequestsPerSec, j.Failed()))
	}
	if s.rss > 0 {
		add("Peak RSS", s.rss, "MiB", "≤ 300 MiB", s.rss <= 300, "max over every Cairn phase")
	}
	if replay != nil && store != nil {
		r := replay.EventsPerSec / store.EventsPerSec * 100
		add("Replay drain vs store ceiling", r, "%", "≥ 80%", r >= 80,
			fmt.Sprintf("%.0f / %.0f events/s", replay.EventsPerSec, store.EventsPerSec))
	}
}

// soak ingests at rate events/s (100-event requests, open model) into a
// fresh Cairn for Options.Soak, sampling RSS and goroutines every 10 s, and
// records whether either grew after the first minute of warm-up.
func (s *suite) soak(ctx context.Context, rate float64) error {
	o := s.opts
	p, err := startCairn(ctx, o.Exe, filepath.Join(o.Dir, "soak-data"), "soak")
	if err != nil {
		return err
	}
	defer s.stop("soak", p, 2*time.Minute)
	s.progress("soak: %.0f events/s for %v", rate, o.Soak)
	type result struct {
		res *loadgen.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.load(ctx, loadgen.Config{URL: p.URL, EventsPerRequest: 100, Concurrency: 32,
			Rate: rate / 100, Duration: o.Soak, Users: o.PrefillUsers})
		done <- result{res, err}
	}()
	start := time.Now()
	sample := func() {
		rss, _ := readRSS(p.PID())
		g, stored := scrapeGauges(ctx, p.URL)
		s.rep.Soak = append(s.rep.Soak, SoakSample{ElapsedSec: time.Since(start).Seconds(),
			RSSMB: float64(rss) / (1 << 20), Goroutines: int(g), Stored: int64(stored)})
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	sample()
	var r result
loop:
	for {
		select {
		case r = <-done:
			break loop
		case <-t.C:
			sample()
		}
	}
	sample()
	if r.err != nil {
		return r.err
	}
	row := rowFrom("Soak", fmt.Sprintf("100 events/req, open model %.0f events/s for %v", rate, o.Soak), r.res, 0)
	var warm *SoakSample
	peak := 0.0
	for i := range s.rep.Soak {
		sm := &s.rep.Soak[i]
		peak = max(peak, sm.RSSMB)
		if warm == nil && sm.ElapsedSec >= 60 {
			warm = sm
		}
	}
	last := s.rep.Soak[len(s.rep.Soak)-1]
	row.RSSMB = peak
	if warm == nil {
		warm = &s.rep.Soak[0]
	}
	row.Note = fmt.Sprintf("after warm-up RSS %.0f → %.0f MiB, goroutines %d → %d", warm.RSSMB, last.RSSMB, warm.Goroutines, last.Goroutines)
	s.add(row)
	grew := last.RSSMB > warm.RSSMB*1.2 || last.Goroutines > warm.Goroutines+20
	s.rep.Targets = append(s.rep.Targets, Target{Name: "Soak: no RSS or goroutine growth", Value: last.RSSMB, Unit: "MiB at end",
		Goal: "≤ 1.2 × RSS after 1 min, goroutines +≤ 20", Met: !grew, Detail: row.Note})
	return nil
}

// scrapeGauges reads go_goroutines and cairn_events_stored_total from
// /metrics (zero when unavailable).
func scrapeGauges(ctx context.Context, base string) (goroutines, stored float64) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close() //nolint:errcheck // the scanner reads what it needs (errors read as no value); closing only releases the connection
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "go_goroutines":
			goroutines = v
		case "cairn_events_stored_total":
			stored = v
		}
	}
	return goroutines, stored
}

// sustained returns an ingest row's sustained (acknowledged and stored) rate:
// the honest maximum, since a short run can hide in the backlog.
func sustained(r *Row) float64 {
	if r.StoredPerSec > 0 {
		return r.StoredPerSec
	}
	return r.EventsPerSec
}

// serverQuantile reads the server's request-duration histogram of route
// from /metrics and returns the upper bound of the bucket holding quantile
// q and the fraction of requests at or below limit seconds (a bucket bound).
func serverQuantile(ctx context.Context, base, route string, q, limit float64) (le, frac float64, ok bool) {
	buckets := serverHistogram(ctx, base, route)
	if len(buckets) == 0 || buckets[len(buckets)-1].n == 0 {
		return 0, 0, false
	}
	total := buckets[len(buckets)-1].n
	le = -1
	for _, b := range buckets {
		if le < 0 && b.n >= q*total {
			le = b.le
		}
		if b.le == limit {
			frac = b.n / total
		}
	}
	return le, frac, le >= 0
}

// serverFraction returns the fraction of route's requests answered within
// limit seconds (a bucket bound of the server's histogram).
func serverFraction(ctx context.Context, base, route string, limit float64) (float64, bool) {
	buckets := serverHistogram(ctx, base, route)
	if len(buckets) == 0 || buckets[len(buckets)-1].n == 0 {
		return 0, false
	}
	for _, b := range buckets {
		if b.le == limit {
			return b.n / buckets[len(buckets)-1].n, true
		}
	}
	return 0, false
}

// histBucket is one cumulative bucket of a Prometheus histogram.
type histBucket struct{ le, n float64 }

// serverHistogram reads the 200-status buckets of route's request-duration
// histogram from /metrics (nil when unavailable).
func serverHistogram(ctx context.Context, base, route string) []histBucket {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close() //nolint:errcheck // the scanner reads what it needs (errors read as no value); closing only releases the connection
	var buckets []histBucket
	prefix := `cairn_http_request_duration_seconds_bucket{route="` + route + `",status="200",le="`
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, found := strings.CutPrefix(sc.Text(), prefix)
		if !found {
			continue
		}
		bound, val, found := strings.Cut(rest, `"} `)
		if !found {
			continue
		}
		b, err1 := strconv.ParseFloat(bound, 64)
		n, err2 := strconv.ParseFloat(val, 64)
		if err1 == nil && err2 == nil {
			buckets = append(buckets, histBucket{b, n})
		}
	}
	return buckets
}
