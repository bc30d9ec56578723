package bench

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/loadgen"
)

// MongoTarget is Cairn's MongoDB store on one scratch database, as the
// MongoDB phase (issue 14's target 5) measures it; cmd/cairn opens it with
// package mongo.
type MongoTarget interface {
	cairn.EventStore
	// InsertRaw writes the events' documents with one unordered
	// insertMany and nothing else: the server's ceiling for Cairn's writes.
	InsertRaw(ctx context.Context, events []cairn.Event) error
	// DropDatabase drops the scratch database.
	DropDatabase(ctx context.Context) error
}

// mongoRows are the MongoDB phase's results for the targets.
type mongoRows struct {
	raw, store *Row // means of the a b b a runs
	serve      *Row // cairn serve on MongoDB, ingest at 0.8 × raw
	maxBacklog int64
	drain      float64 // seconds from the end of the serve run to an empty backlog (+Inf: not within the wait)
	drainNote  string  // the drain, in words
}

// mongoBatch is the batch size of the phase's direct writes: the
// batcher's default FlushSize.
const mongoBatch = 500

// mongo runs the MongoDB phase when Options.MongoURI is set: the store's
// InsertEvents against one unordered insertMany of the same documents on
// the same server, a b b a, each on its own scratch database; then `cairn
// serve` on MongoDB with ingest at 0.8 × the insertMany ceiling, watching
// the backlog. Every scratch database is dropped afterwards.
func (s *suite) mongo(ctx context.Context) error {
	o := s.opts
	if o.MongoURI == "" {
		return nil
	}
	if o.OpenMongo == nil {
		return fmt.Errorf("MongoURI without OpenMongo")
	}
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	open := func(db string) (MongoTarget, func(), error) {
		t, err := o.OpenMongo(ctx, db)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", db, err)
		}
		return t, func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := t.DropDatabase(dctx); err != nil {
				s.progress("mongo: drop %s: %v", db, err)
			}
			if err := t.Close(); err != nil {
				s.progress("mongo: close %s: %v", db, err)
			}
		}, nil
	}
	raw, closeRaw, err := open("cairn_bench_raw_" + id)
	if err != nil {
		return err
	}
	defer closeRaw()
	store, closeStore, err := open("cairn_bench_store_" + id)
	if err != nil {
		return err
	}
	defer closeStore()

	now := time.Now().UTC().Truncate(time.Millisecond)
	var seq int64
	run := func(name, setup string, insert func(context.Context, []cairn.Event) error) (*Row, error) {
		evs := make([]cairn.Event, mongoBatch)
		hist := loadgen.NewHistogram()
		var n int64
		start := time.Now()
		for time.Since(start) < o.Duration && ctx.Err() == nil {
			benchEvents(evs, seq, o.PrefillUsers, now)
			seq += mongoBatch
			t := time.Now()
			if err := insert(ctx, evs); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			hist.Record(time.Since(t))
			n += mongoBatch
		}
		el := time.Since(start).Seconds()
		l := hist.Summary()
		return s.add(Row{Name: name, Setup: setup, EventsPerSec: float64(n) / el, RequestsPerSec: float64(l.Count) / el,
			P50Ms: l.P50, P99Ms: l.P99, MaxMs: l.Max, Note: "latency = one batch"}), nil
	}
	rawSetup := fmt.Sprintf("one unordered insertMany of %d event documents, 1 writer, nothing else", mongoBatch)
	storeSetup := fmt.Sprintf("mongo Store.InsertEvents, %d-event batches, 1 writer (dedup, erasure check, identity, insights)", mongoBatch)
	insertStore := func(ctx context.Context, evs []cairn.Event) error {
		res, err := store.InsertEvents(ctx, evs)
		if err == nil && res.Inserted != len(evs) {
			err = fmt.Errorf("stored %d of %d new events", res.Inserted, len(evs))
		}
		return err
	}
	var rows [4]*Row
	for i, r := range []struct {
		name, setup string
		insert      func(context.Context, []cairn.Event) error
	}{
		{"MongoDB insertMany ceiling (1)", rawSetup, raw.InsertRaw},
		{"MongoDB store writer (1)", storeSetup, insertStore},
		{"MongoDB store writer (2)", storeSetup, insertStore},
		{"MongoDB insertMany ceiling (2)", rawSetup, raw.InsertRaw},
	} {
		if rows[i], err = run(r.name, r.setup, r.insert); err != nil {
			return err
		}
	}
	m := &mongoRows{raw: meanRow([]*Row{rows[0], rows[3]}), store: meanRow([]*Row{rows[1], rows[2]})}
	s.perf.mongo = m

	// cairn serve on a third database, ingest at 0.8 × the ceiling. The
	// database is opened to be dropped only once the server has stopped
	// (FerretDB fails when two clients create the same collections at once).
	serveDB := "cairn_bench_serve_" + id
	uri, err := withDatabase(o.MongoURI, serveDB)
	if err != nil {
		return err
	}
	defer func() {
		if _, closeServe, err := open(serveDB); err != nil {
			s.progress("mongo: %v", err)
		} else {
			closeServe()
		}
	}()
	p, err := startCairn(ctx, o.Exe, filepath.Join(o.Dir, "mongo-data"), "cairn-mongo", "--mongodb-uri", uri)
	if err != nil {
		return err
	}
	defer s.stop("MongoDB serve", p, 2*time.Minute)
	rate := 0.8 * m.raw.EventsPerSec
	const perRequest = 100
	sampled := make(chan int64, 1)
	sctx, stopSampling := context.WithCancel(ctx)
	go func() {
		var peak int64
		for sctx.Err() == nil {
			if h, err := getHealth(sctx, p.URL); err == nil {
				peak = max(peak, h.Spool.Backlog)
			}
			select {
			case <-sctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		sampled <- peak
	}()
	res, err := s.load(ctx, loadgen.Config{URL: p.URL, Concurrency: o.Concurrency, EventsPerRequest: perRequest,
		Rate: rate / perRequest, Duration: o.Duration, Users: o.PrefillUsers, Seed: 14})
	stopSampling()
	m.maxBacklog = <-sampled
	if err != nil {
		return err
	}
	end := time.Now()
	// A writer that keeps up drains in well under a second; one that does
	// not leaves a backlog growing with the run, not worth waiting out.
	wait := max(30*time.Second, 3*o.Duration)
	row := rowFrom("Cairn on MongoDB, batched at 0.8 × insertMany", fmt.Sprintf("%d events/req, open model %.0f events/s, %d conns", perRequest, rate, o.Concurrency), res, 0)
	if drained, err := waitDrained(ctx, p.URL, wait); err == nil {
		m.drain = drained.Sub(end).Seconds()
		m.drainNote = fmt.Sprintf("drained %.1f s after the run", m.drain)
	} else {
		m.drain = math.Inf(1)
		m.drainNote = fmt.Sprintf("not drained %v after the run (%v)", wait, err)
	}
	row.Note = fmt.Sprintf("backlog peak %d events, %s", m.maxBacklog, m.drainNote)
	m.serve = s.add(row)
	return nil
}

// withDatabase returns uri with its path (the database) set to db.
func withDatabase(uri, db string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("parse the MongoDB URI: %w", err)
	}
	u.Path = "/" + db
	return u.String(), nil
}

// RunMongo runs only the MongoDB phase (`cairn bench --only mongo`) and
// its target. Options.MongoURI and OpenMongo are required; Exe too, for
// the `cairn serve` run.
func RunMongo(ctx context.Context, opts Options) (*Report, error) {
	opts.setDefaults()
	if opts.MongoURI == "" || opts.OpenMongo == nil {
		return nil, fmt.Errorf("bench: the MongoDB phase needs a MongoDB URI (--mongodb-uri)")
	}
	if opts.Exe == "" {
		return nil, fmt.Errorf("bench: the cairn binary is required")
	}
	return runSuite(ctx, opts, func(ctx context.Context, s *suite) {
		s.check("MongoDB", s.mongo(ctx))
		s.mongoTarget()
	})
}
