package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/loadgen"
	"github.com/go-json-experiment/json/jsontext"
)

// perfRows are the measurements behind issue 14's targets that the issue 6
// rows do not already hold.
type perfRows struct {
	httpJSON  *Row // decoding no-op server, batched like Cairn's batched phase
	noopFixed *Row // decoding no-op server, single events at FixedRate
	// noopAfterBurst is noopFixed averaged with a no-op run right after the
	// after-burst run (what that run is compared with).
	noopAfterBurst *Row
	afterBurst     *Row // Cairn, single events at FixedRate right after a batched burst
	burst          *Row // the burst itself
	// journeyServerP99 is the bucket bound holding the server-side journey
	// p99 (ms; 0 when /metrics had none); journeyServer2ms the fraction of
	// journeys answered within 2 ms.
	journeyServerP99, journeyServer2ms float64
	bigJourney                         *Row // one user's BigJourneyEvents events paged end to end
	startup                            *Row // restart of the filled store, to listening
	storedAtStartup                    int64
	storedAtJourney                    int64      // events acknowledged when the journey reads ended
	mongo                              *mongoRows // nil without Options.MongoURI
}

// meanLatencyRow is meanRow with the latency quantiles averaged too (the
// mean of the runs' p99s, not the p99 of their union) and the maximum kept.
func meanLatencyRow(rows []*Row) *Row {
	m := meanRow(rows)
	for _, r := range rows {
		k := float64(len(rows))
		m.RequestsPerSec += r.RequestsPerSec / k
		m.P50Ms += r.P50Ms / k
		m.P99Ms += r.P99Ms / k
		m.P999Ms += r.P999Ms / k
		m.MaxMs = max(m.MaxMs, r.MaxMs)
	}
	return m
}

// bigJourneyPage is the page size of the end-to-end journey read.
const bigJourneyPage = cairn.MaxJourneyLimit

// seriesSampler records events stored (from /metrics) against time while
// the store fills.
type seriesSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	obs  []storedAt
}

// storedAt is one observation of the stored-events counter.
type storedAt struct {
	at     time.Time
	stored float64
}

func sampleSeries(ctx context.Context, base string, every time.Duration) *seriesSampler {
	ss := &seriesSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ss.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			_, stored := scrapeGauges(ctx, base)
			ss.mu.Lock()
			ss.obs = append(ss.obs, storedAt{time.Now(), stored})
			ss.mu.Unlock()
			select {
			case <-ss.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ss
}

// Stop ends sampling and returns the series: the stored rate over each of
// up to seriesPoints windows of equal numbers of events stored (the
// batcher stores in chunks, so equal time windows would be ragged).
func (ss *seriesSampler) Stop() []SeriesPoint {
	close(ss.stop)
	<-ss.done
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return seriesOf(ss.obs, seriesPoints)
}

// seriesPoints is the number of windows of a series.
const seriesPoints = 20

// seriesOf turns counter observations into at most n points: the window
// boundaries are the first observations at or past each n-th of the range.
func seriesOf(obs []storedAt, n int) []SeriesPoint {
	if len(obs) < 2 || obs[len(obs)-1].stored <= obs[0].stored {
		return nil
	}
	lo, hi := obs[0].stored, obs[len(obs)-1].stored
	var pts []SeriesPoint
	prev := obs[0]
	k := 1
	for _, o := range obs[1:] {
		if o.stored < lo+(hi-lo)*float64(k)/float64(n) && o != obs[len(obs)-1] {
			continue
		}
		if d := o.at.Sub(prev.at).Seconds(); d > 0 && o.stored > prev.stored {
			pts = append(pts, SeriesPoint{Stored: int64(o.stored), EventsPerSec: (o.stored - prev.stored) / d})
		}
		prev = o
		for k <= n && o.stored >= lo+(hi-lo)*float64(k)/float64(n) {
			k++
		}
	}
	return pts
}

// seriesFlatness compares the mean stored rate over the last fifth of the
// series (by events stored) with that over the second fifth (the first
// holds the start-up of the run): 1 is flat, below 1 the cost per event
// grows with the store. ok is false with fewer than 5 points.
func seriesFlatness(pts []SeriesPoint) (ratio, early, late float64, ok bool) {
	if len(pts) < 5 {
		return 0, 0, 0, false
	}
	lo, hi := pts[0].Stored, pts[len(pts)-1].Stored
	span := float64(hi - lo)
	var ne, nl int
	for _, p := range pts {
		f := float64(p.Stored-lo) / span
		switch {
		case f >= 0.2 && f < 0.4:
			early += p.EventsPerSec
			ne++
		case f >= 0.8:
			late += p.EventsPerSec
			nl++
		}
	}
	if ne == 0 || nl == 0 || early == 0 {
		return 0, 0, 0, false
	}
	early, late = early/float64(ne), late/float64(nl)
	return late / early, early, late, true
}

// seriesMarkdown renders the series as a table with an ASCII bar per
// point (at most 20 rows, evenly picked).
func seriesMarkdown(pts []SeriesPoint) string {
	if len(pts) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nStored rate against events stored (pre-fill, 500-event requests, 8 connections):\n\n```\n")
	peak := 0.0
	for _, p := range pts {
		peak = max(peak, p.EventsPerSec)
	}
	step := max(1, (len(pts)+19)/20)
	for i := 0; i < len(pts); i += step {
		p := pts[i]
		bar := int(p.EventsPerSec / peak * 50)
		fmt.Fprintf(&b, "%10d stored | %-50s %7.0f events/s\n", p.Stored, strings.Repeat("#", bar), p.EventsPerSec)
	}
	b.WriteString("```\n")
	return b.String()
}

// pageJourney reads user's whole journey through GET /users/{id}/journey,
// bigJourneyPage events per page, following nextCursor, and returns the
// events read and the time taken.
func pageJourney(ctx context.Context, base, cookie, user string) (int64, time.Duration, *loadgen.Histogram, error) {
	client := &http.Client{Timeout: time.Minute}
	hist := loadgen.NewHistogram()
	var n int64
	cursor := ""
	start := time.Now()
	for {
		target := fmt.Sprintf("%s/users/%s/journey?limit=%d", base, url.PathEscape(user), bigJourneyPage)
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return n, 0, hist, err
		}
		req.Header.Set("Cookie", cookie)
		t := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return n, 0, hist, fmt.Errorf("journey page: %w", err)
		}
		data, err := io.ReadAll(resp.Body)
		cerr := resp.Body.Close()
		hist.Record(time.Since(t))
		if err != nil || cerr != nil {
			return n, 0, hist, fmt.Errorf("journey page: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return n, 0, hist, fmt.Errorf("journey page: status %d: %.200s", resp.StatusCode, data)
		}
		events, next, err := readJourneyPage(data)
		if err != nil {
			return n, 0, hist, fmt.Errorf("journey page: %w", err)
		}
		n += int64(events)
		if next == "" || events == 0 {
			return n, time.Since(start), hist, nil
		}
		cursor = next
	}
}

// readJourneyPage validates a journey page as JSON and returns its number
// of events and its nextCursor ("" when null). It reads the page in one
// pass with jsontext: encoding/json's Unmarshal validates the whole body
// before decoding it, and on a 1000-event page that double pass cost the
// client twice the server's CPU per event, on the cores the server runs on.
func readJourneyPage(data []byte) (events int, next string, err error) {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.ReadToken(); err != nil {
		return 0, "", err
	} else if tok.Kind() != '{' {
		return 0, "", errors.New("not a JSON object")
	}
	sawEvents := false
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return 0, "", err
		}
		switch name.String() {
		case "events":
			if tok, err := dec.ReadToken(); err != nil {
				return 0, "", err
			} else if tok.Kind() != '[' {
				return 0, "", errors.New("events is not an array")
			}
			for dec.PeekKind() != ']' {
				if dec.PeekKind() != '{' {
					return 0, "", fmt.Errorf("event %d is not an object", events)
				}
				if err := dec.SkipValue(); err != nil {
					return 0, "", err
				}
				events++
			}
			if _, err := dec.ReadToken(); err != nil {
				return 0, "", err
			}
			sawEvents = true
		case "nextCursor":
			tok, err := dec.ReadToken()
			if err != nil {
				return 0, "", err
			}
			switch tok.Kind() {
			case 'n':
			case '"':
				if next = tok.String(); next == "" {
					return 0, "", errors.New("empty nextCursor")
				}
			default:
				return 0, "", errors.New("nextCursor is neither a string nor null")
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return 0, "", err
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return 0, "", err
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return 0, "", errors.New("data after the page object")
	}
	if !sawEvents {
		return 0, "", errors.New("no events array")
	}
	return events, next, nil
}

// issue14Targets adds the targets of issue 14 (each a ratio or a bound
// from this run) to the report. in holds the issue 6 rows they build on.
func (s *suite) issue14Targets(store *Row, e2e *e2eRows, replay *Row) {
	add := s.addTarget
	pr := &s.perf
	if e2e == nil {
		e2e = &e2eRows{}
	}
	if b := e2e.batch; b != nil && pr.httpJSON != nil && pr.httpJSON.EventsPerSec > 0 {
		r := sustained(b) / pr.httpJSON.EventsPerSec
		add(fmt.Sprintf("T1 batched durable ingest vs HTTP+JSON ceiling (%v, stored rate)", s.opts.SustainDuration), r, "×", "≥ 0.70", r >= 0.70 && b.Failed() == 0,
			fmt.Sprintf("%.0f / %.0f events/s; acknowledged %.0f", sustained(b), pr.httpJSON.EventsPerSec, b.EventsPerSec))
	}
	fixedTarget := func(name string, r, noop *Row) {
		if r == nil || noop == nil || noop.P99Ms <= 0 {
			return
		}
		ratio := r.P99Ms / noop.P99Ms
		add(name, r.P99Ms, "ms", "p99 ≤ 5 ms and ≤ 2× the no-op server's", r.P99Ms <= 5 && ratio <= 2 && r.Failed() == 0 && r.RequestsPerSec >= 0.95*s.opts.FixedRate,
			fmt.Sprintf("%.1f× no-op p99 %.2f ms; p99.9 %.2f ms, max %.1f ms; %.0f req/s, %d failed", ratio, noop.P99Ms, r.P999Ms, r.MaxMs, r.RequestsPerSec, r.Failed()))
	}
	fixedTarget(fmt.Sprintf("T2 single events at %.0f req/s, fresh store", s.opts.FixedRate), e2e.fixed, pr.noopFixed)
	fixedTarget(fmt.Sprintf("T2 single events at %.0f req/s, %v right after a %v batched burst", s.opts.FixedRate, s.opts.AfterBurstDuration, s.opts.BurstDuration), pr.afterBurst, pr.noopAfterBurst)
	if j := e2e.journey; j != nil {
		stored := ""
		if pr.storedAtJourney > 0 {
			stored = fmt.Sprintf("%d events stored; ", pr.storedAtJourney)
		}
		if pr.journeyServerP99 > 0 {
			add("T3 journey p99 (limit 100) in the server, under ingest at half max", pr.journeyServerP99, "ms (bucket bound)", "≤ 2 ms", pr.journeyServerP99 <= 2,
				fmt.Sprintf("%s%.1f%% within 2 ms (from /metrics)", stored, pr.journeyServer2ms*100))
		}
		add("T3 journey p99 (limit 100) through HTTP, under ingest at half max", j.P99Ms, "ms", "≤ 5 ms", j.P99Ms <= 5 && j.Failed() == 0,
			fmt.Sprintf("%sp99.9 %.2f ms, %.0f req/s, %d failed", stored, j.P999Ms, j.RequestsPerSec, j.Failed()))
	}
	if bj := pr.bigJourney; bj != nil {
		add(fmt.Sprintf("T3 %d-event journey paged end to end", s.opts.BigJourneyEvents), bj.EventsPerSec, "events/s", "≥ 200,000 events/s", bj.EventsPerSec >= 200000, bj.Note)
	}
	if s.rss > 0 {
		mb := s.rss * (1 << 20) / 1e6
		add("T4 peak RSS", mb, "MB", "≤ 300 MB", mb <= 300, fmt.Sprintf("max over every Cairn phase; %d events stored at the end", pr.storedAtStartup))
	}
	if st := pr.startup; st != nil {
		sec := st.MaxMs / 1000
		add("T4 start-up with the filled store", sec, "s", "≤ 2 s", sec <= 2, st.Note)
	}
	if replay != nil && store != nil && store.EventsPerSec > 0 {
		r := replay.EventsPerSec / store.EventsPerSec
		add("T4 replay of the spool backlog vs store ceiling", r, "×", "≥ 0.80", r >= 0.80,
			fmt.Sprintf("%.0f / %.0f events/s, %d-event backlog", replay.EventsPerSec, store.EventsPerSec, s.opts.ReplayEvents))
	}
	const flatName = "T4 cost per event flat as the store grows (last fifth vs second fifth of the pre-fill)"
	if ratio, early, late, ok := seriesFlatness(s.rep.Series); ok {
		pts := s.rep.Series
		add(flatName, ratio, "×", "≥ 0.80", ratio >= 0.80,
			fmt.Sprintf("%.0f → %.0f events/s between %d and %d events stored; series in the JSON report", early, late, pts[0].Stored, pts[len(pts)-1].Stored))
	} else if pts := s.rep.Series; len(pts) > 0 {
		// The store writes in chunks of up to MaxFlushSize events: a short
		// pre-fill gives too few windows to compare fifths.
		add(flatName, 0, "×", "≥ 0.80", false,
			fmt.Sprintf("not measured: the series has %d points between %d and %d events stored, too few to compare fifths (a larger --prefill gives more)", len(pts), pts[0].Stored, pts[len(pts)-1].Stored))
	}
	s.mongoTarget()
}

// storedEvents returns cairn_events_stored_total of a server that started
// on an empty store (so: the events in its store).
func storedEvents(ctx context.Context, base string) (int64, error) {
	_, stored := scrapeGauges(ctx, base)
	if stored <= 0 {
		return 0, fmt.Errorf("no cairn_events_stored_total in %s/metrics", base)
	}
	return int64(stored), nil
}

// mongoTarget adds issue 14's target 5 from the MongoDB phase (or says it
// was not measured).
func (s *suite) mongoTarget() {
	add := s.addTarget
	pr := &s.perf
	switch m := pr.mongo; {
	case m == nil && s.opts.MongoURI != "":
		add("T5 MongoDB store writer vs raw insertMany", 0, "×", "≥ 0.80", false, "not measured: the MongoDB phase failed (see the errors)")
	case m == nil:
		add("T5 MongoDB store writer vs raw insertMany", 0, "×", "≥ 0.80", false, "not measured: run with --mongodb-uri to add the MongoDB phase")
	case m.raw.EventsPerSec > 0:
		r := m.store.EventsPerSec / m.raw.EventsPerSec
		bounded := m.serve != nil && m.drain <= 2 && m.serve.Failed() == 0
		detail := fmt.Sprintf("%.0f / %.0f events/s, a b b a", m.store.EventsPerSec, m.raw.EventsPerSec)
		if m.serve != nil {
			detail += fmt.Sprintf("; cairn serve at %.0f events/s: backlog peak %d, %s, %d failed",
				m.serve.EventsPerSec, m.maxBacklog, m.drainNote, m.serve.Failed())
		}
		add("T5 MongoDB store writer vs raw insertMany", r, "×", "≥ 0.80, backlog bounded at 0.8 × insertMany", r >= 0.80 && bounded, detail)
	}
}
