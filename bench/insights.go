package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/insights"
)

// Insight phases (issue 12), in-process on embedded stores opened as serve
// opens them:
//
//   - ingest with and without the insight aggregates: 500-event batches
//     into two fresh stores (Options.OpenStore and
//     Options.OpenStoreWithoutInsights), eight runs alternating a, b, b, a
//     so that a drift of the machine weighs on both alike → the ratio of
//     events per CPU second (and of wall-clock rates), target ≥ 90 %;
//   - trends (day buckets, every type) and unique users (day buckets) over
//     90 days of Options.InsightEvents events (default 10M; quick 200k),
//     each query run 20 times → p50 and max, target ≤ 50 ms;
//   - a 3-step funnel (page_view → add_to_cart → purchase, within 1 h) over
//     30 days of Options.FunnelEvents events over 100k users (default 1M;
//     quick 100k over 10k) while another goroutine ingests 250-event
//     batches at 10,000 events/s into the same store, run 5 times → p50 and
//     max, target ≤ 2 s.

// insightPayloads are the page_view urls of the generated events.
var insightPayloads = []json.RawMessage{
	json.RawMessage(`{"url":"/","referrer":"https://www.google.com/"}`),
	json.RawMessage(`{"url":"/pricing","referrer":"https://www.google.com/"}`),
	json.RawMessage(`{"url":"/products/laptop-pro-14","referrer":"https://news.example/"}`),
	json.RawMessage(`{"url":"/docs","referrer":""}`),
}

var insightSources = []string{"", "src-web", "src-app"}

// visitEvents appends the events of visit v to evs: a page_view, for half
// of the visits an add_to_cart 2 minutes later and for a fifth a purchase
// 5 minutes later, by a user chosen among users, at a time spread evenly
// over span before end (visits in order of v, nvisits in all).
func visitEvents(evs []cairn.Event, v, nvisits int64, users int, end time.Time, span time.Duration, tag string) []cairn.Event {
	u := "user-" + strconv.FormatInt(v*7919%int64(users), 10)
	at := end.Add(-span + time.Duration(float64(span)*float64(v)/float64(nvisits))).Truncate(time.Millisecond)
	id := tag + strconv.FormatInt(v, 36)
	mk := func(suffix, typ string, d time.Duration, payload json.RawMessage) cairn.Event {
		return cairn.Event{EventID: id + suffix, UserID: u, SessionID: u + "-" + strconv.FormatInt(v%5, 10), Type: typ,
			SourceID: insightSources[v%3], Payload: payload, OccurredAt: at.Add(d), ReceivedAt: end}
	}
	evs = append(evs, mk("a", "page_view", 0, insightPayloads[v%4]))
	if v%2 == 0 {
		evs = append(evs, mk("b", "add_to_cart", 2*time.Minute, json.RawMessage(`{"sku":"laptop-pro-14"}`)))
	}
	if v%10 == 0 {
		evs = append(evs, mk("c", "purchase", 5*time.Minute, json.RawMessage(`{"amount":1299}`)))
	}
	return evs
}

// visitsFor returns how many visits make about n events (1.6 per visit).
func visitsFor(n int64) int64 { return max(1, n*10/16) }

// fillVisits inserts visits [0, nvisits) into st in batches of about 1000
// events and syncs it.
func fillVisits(ctx context.Context, st cairn.EventStore, nvisits int64, users int, end time.Time, span time.Duration, tag string) (int64, error) {
	var n int64
	evs := make([]cairn.Event, 0, 1100)
	flush := func() error {
		res, err := st.InsertEvents(ctx, evs)
		n += int64(res.Inserted)
		evs = evs[:0]
		return err
	}
	for v := range nvisits {
		evs = visitEvents(evs, v, nvisits, users, end, span, tag)
		if len(evs) >= 1000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	if ds, ok := st.(cairn.DeferredSyncer); ok {
		return n, ds.Sync(ctx)
	}
	return n, nil
}

// timeQuery runs q runs times and returns the p50 and max in ms.
func timeQuery(runs int, q func() error) (p50, maxMs float64, err error) {
	var ms []float64
	for range runs {
		t := time.Now()
		if err := q(); err != nil {
			return 0, 0, err
		}
		ms = append(ms, float64(time.Since(t).Microseconds())/1000)
	}
	slices.Sort(ms)
	return ms[len(ms)/2], ms[len(ms)-1], nil
}

func (s *suite) openInsightStore(name string, aggregates bool) (cairn.EventStore, cairn.InsightStore, func(), error) {
	open := s.opts.OpenStore
	if !aggregates {
		open = s.opts.OpenStoreWithoutInsights
	}
	st, err := open(filepath.Join(s.opts.Dir, name))
	if err != nil {
		return nil, nil, nil, err
	}
	closeFn := func() {
		if err := st.Close(); err != nil {
			s.progress("insights: close store %s: %v", name, err)
		}
	}
	is, ok := st.(cairn.InsightStore)
	if !ok {
		closeFn()
		return nil, nil, nil, fmt.Errorf("the store answers no insights")
	}
	return st, is, closeFn, nil
}

// insightDefaults sets the sizes of the insight phases.
func (o *Options) insightDefaults() {
	if o.InsightEvents <= 0 {
		o.InsightEvents = 10_000_000
		if o.Quick {
			o.InsightEvents = 200_000
		}
	}
	if o.FunnelEvents <= 0 {
		o.FunnelEvents = 1_000_000
		if o.Quick {
			o.FunnelEvents = 100_000
		}
	}
	if o.FunnelUsers <= 0 {
		o.FunnelUsers = 100_000
		if o.Quick {
			o.FunnelUsers = 10_000
		}
	}
}

// insights runs the insight phases (see above).
func (s *suite) insights(ctx context.Context) error {
	if s.opts.OpenStoreWithoutInsights == nil {
		return fmt.Errorf("no opener for a store without insight aggregates")
	}
	s.opts.insightDefaults()
	if err := s.insightIngestCost(ctx); err != nil {
		return err
	}
	if err := s.insightQueries(ctx); err != nil {
		return err
	}
	return s.insightFunnel(ctx)
}

// processCPU returns the CPU time (user + system) this process has used,
// from /proc/self/stat (0 where unavailable).
func processCPU() time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start after ')'.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+k) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// insightIngestCost compares ingest into a store with and without the
// aggregates. Wall-clock rates on a shared machine swing by tens of
// percent between runs, so the ratio is also taken in events per CPU
// second of this process (which does nothing else meanwhile), over eight
// alternating runs after a warm-up run on each.
func (s *suite) insightIngestCost(ctx context.Context) error {
	with, _, closeWith, err := s.openInsightStore("insights-ingest-with", true)
	if err != nil {
		return err
	}
	defer closeWith()
	without, _, closeWithout, err := s.openInsightStore("insights-ingest-without", false)
	if err != nil {
		return err
	}
	defer closeWithout()
	end := time.Now().UTC()
	var seq [2]int64
	// run ingests 500-event batches of new visits (the last hour) into st
	// for d and returns the events stored, the wall time and the CPU time.
	run := func(st cairn.EventStore, k int, d time.Duration) (int64, time.Duration, time.Duration, error) {
		evs := make([]cairn.Event, 0, 600)
		var n int64
		cpu0 := processCPU()
		start, lastSync := time.Now(), time.Now()
		for time.Since(start) < d && ctx.Err() == nil {
			evs = evs[:0]
			for len(evs) < 500 {
				evs = visitEvents(evs, seq[k], 1<<40, s.opts.PrefillUsers, end, time.Hour, "i"+strconv.Itoa(k))
				seq[k]++
			}
			res, err := st.InsertEvents(ctx, evs)
			if err != nil {
				return 0, 0, 0, err
			}
			n += int64(res.Inserted)
			if time.Since(lastSync) >= time.Second {
				if ds, ok := st.(cairn.DeferredSyncer); ok {
					if err := ds.Sync(ctx); err != nil {
						return 0, 0, 0, err
					}
				}
				lastSync = time.Now()
			}
		}
		return n, time.Since(start), processCPU() - cpu0, nil
	}
	each := max(time.Second, s.opts.Duration/4)
	// A discarded warm-up run on each (caches, the runtime's heap).
	for k, st := range []cairn.EventStore{with, without} {
		if _, _, _, err := run(st, k, each/2); err != nil {
			return fmt.Errorf("ingest warm-up: %w", err)
		}
	}
	var events [2]int64
	var wall, cpu [2]time.Duration
	for i, k := range []int{0, 1, 1, 0, 0, 1, 1, 0} {
		st := with
		if k == 1 {
			st = without
		}
		n, w, c, err := run(st, k, each)
		if err != nil {
			return fmt.Errorf("ingest run %d: %w", i+1, err)
		}
		events[k] += n
		wall[k] += w
		cpu[k] += c
	}
	rate := func(k int) float64 { return float64(events[k]) / wall[k].Seconds() }
	perCPU := func(k int) float64 { return float64(events[k]) / max(cpu[k].Seconds(), 0.01) }
	wallRatio := rate(0) / rate(1) * 100
	cpuRatio := perCPU(0) / perCPU(1) * 100
	setup := fmt.Sprintf("pebble InsertEvents, 500-event batches, 1 writer, 8 alternating runs of %v", each)
	s.add(Row{Name: "Store ingest, insight aggregates on", Setup: setup, EventsPerSec: rate(0),
		Note: fmt.Sprintf("hour counters + day user sketch deltas in each batch; %.0f events per CPU second", perCPU(0))})
	s.add(Row{Name: "Store ingest, insight aggregates off", Setup: setup, EventsPerSec: rate(1),
		Note: fmt.Sprintf("pebble.Options.NoInsightAggregates (bench only); %.0f events per CPU second", perCPU(1))})
	s.rep.Targets = append(s.rep.Targets, Target{Name: "Ingest with insight aggregates vs without", Value: cpuRatio, Unit: "%",
		Goal: "≥ 90% (aggregates cost ≤ 10%)", Met: cpuRatio >= 90,
		Detail: fmt.Sprintf("events per CPU second %.0f / %.0f; wall clock %.0f / %.0f events/s = %.1f%%", perCPU(0), perCPU(1), rate(0), rate(1), wallRatio)})
	return nil
}

func (s *suite) insightQueries(ctx context.Context) error {
	st, is, closeFn, err := s.openInsightStore("insights-90d", true)
	if err != nil {
		return err
	}
	defer closeFn()
	end := time.Now().UTC()
	n := s.opts.InsightEvents
	s.progress("insights: filling a store with %d events over 90 days", n)
	stored, err := fillVisits(ctx, st, visitsFor(n), s.opts.PrefillUsers, end, 90*24*time.Hour, "q")
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	svc := insights.New(is)
	from := end.Add(-90 * 24 * time.Hour)
	setup := fmt.Sprintf("90 days, day buckets, %d events stored, 20 runs", stored)
	var series int
	tp50, tmax, err := timeQuery(20, func() error {
		tr, err := svc.Trends(ctx, cairn.TrendsQuery{From: from, To: end, Interval: cairn.IntervalDay})
		if err == nil {
			series = len(tr.Series)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("trends: %w", err)
	}
	s.add(Row{Name: "Insights: trends", Setup: setup, P50Ms: tp50, MaxMs: tmax, Note: fmt.Sprintf("%d series", series)})
	var points int
	up50, umax, err := timeQuery(20, func() error {
		u, err := svc.UniqueUsers(ctx, cairn.UsersQuery{From: from, To: end, Interval: cairn.IntervalDay})
		if err == nil {
			points = len(u.Points)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("unique users: %w", err)
	}
	s.add(Row{Name: "Insights: unique users", Setup: setup, P50Ms: up50, MaxMs: umax, Note: fmt.Sprintf("%d points, merged day sketches", points)})
	s.rep.Targets = append(s.rep.Targets,
		Target{Name: "Trends over 90 days", Value: tmax, Unit: "ms", Goal: "≤ 50 ms at 10M events", Met: tmax <= 50,
			Detail: fmt.Sprintf("max of 20 runs, p50 %.2f ms, %d events", tp50, stored)},
		Target{Name: "Unique users over 90 days", Value: umax, Unit: "ms", Goal: "≤ 50 ms at 10M events", Met: umax <= 50,
			Detail: fmt.Sprintf("max of 20 runs, p50 %.2f ms, %d events", up50, stored)})
	return nil
}

func (s *suite) insightFunnel(ctx context.Context) error {
	st, is, closeFn, err := s.openInsightStore("insights-funnel", true)
	if err != nil {
		return err
	}
	defer closeFn()
	end := time.Now().UTC()
	n, users := s.opts.FunnelEvents, s.opts.FunnelUsers
	s.progress("insights: filling a store with %d events over 30 days and %d users", n, users)
	stored, err := fillVisits(ctx, st, visitsFor(n), users, end, 30*24*time.Hour, "f")
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	// Ingest at 10,000 events/s meanwhile (new visits of the last minute).
	const ingestRate = 10000
	ictx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ingested atomic.Int64
	var ingErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(25 * time.Millisecond) // 40 batches per second
		defer t.Stop()
		evs := make([]cairn.Event, 0, 600)
		for v := int64(0); ; {
			select {
			case <-ictx.Done():
				return
			case <-t.C:
			}
			evs = evs[:0]
			for len(evs) < ingestRate/40 {
				evs = visitEvents(evs, v, 1<<40, users, time.Now().UTC(), time.Minute, "g")
				v++
			}
			res, err := st.InsertEvents(ictx, evs)
			if err != nil {
				if ictx.Err() == nil {
					ingErr = err
				}
				return
			}
			ingested.Add(int64(res.Inserted))
		}
	}()
	svc := insights.New(is)
	q := cairn.FunnelQuery{Steps: []cairn.FunnelStep{{Type: "page_view"}, {Type: "add_to_cart"}, {Type: "purchase"}},
		Within: time.Hour, From: end.Add(-30 * 24 * time.Hour), To: end}
	var f *cairn.Funnel
	start := time.Now()
	p50, mx, err := timeQuery(5, func() error {
		var err error
		f, err = svc.Funnel(ctx, q)
		return err
	})
	el := time.Since(start).Seconds()
	stop()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("funnel: %w", err)
	}
	if ingErr != nil {
		return fmt.Errorf("ingest during the funnel: %w", ingErr)
	}
	note := fmt.Sprintf("users per step %d → %d → %d; ingest meanwhile %.0f events/s", f.Steps[0].Users, f.Steps[1].Users, f.Steps[2].Users,
		float64(ingested.Load())/el)
	s.add(Row{Name: "Insights: 3-step funnel under ingest", Setup: fmt.Sprintf("30 days, %d events over %d users, within 1 h, 5 runs, ingest at %d events/s", stored, users, ingestRate),
		P50Ms: p50, MaxMs: mx, Note: note})
	s.rep.Targets = append(s.rep.Targets, Target{Name: "3-step funnel over 30 days, under ingest", Value: mx, Unit: "ms",
		Goal: "≤ 2,000 ms at 1M events / 100k users", Met: mx <= 2000, Detail: fmt.Sprintf("max of 5 runs, p50 %.0f ms, %d events", p50, stored)})
	return nil
}

// RunInsights runs only the insight phases (`cairn bench --only insights`).
func RunInsights(ctx context.Context, opts Options) (*Report, error) {
	opts.setDefaults()
	if opts.OpenStore == nil {
		return nil, fmt.Errorf("bench: the store opener is required")
	}
	return runSuite(ctx, opts, func(ctx context.Context, s *suite) { s.check("insights", s.insights(ctx)) })
}
