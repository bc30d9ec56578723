package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestSeriesFlatness(t *testing.T) {
	pts := func(rates ...float64) []SeriesPoint {
		var out []SeriesPoint
		for i, r := range rates {
			out = append(out, SeriesPoint{Stored: int64(i+1) * 1000, EventsPerSec: r})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pts  []SeriesPoint
		want float64
		ok   bool
	}{
		{"flat", pts(50, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100), 1, true},
		{"halves", pts(50, 100, 100, 100, 100, 80, 70, 60, 50, 50, 50), 0.5, true},
		{"too short", pts(100, 100, 100, 100), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, _, ok := seriesFlatness(tc.pts)
			if ok != tc.ok || got < tc.want-1e-9 || got > tc.want+1e-9 {
				t.Errorf("seriesFlatness = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if md := seriesMarkdown(pts(10, 20)); !strings.Contains(md, "##") || !strings.Contains(md, "2000 stored") {
		t.Errorf("seriesMarkdown:\n%s", md)
	}
}

func TestIssue14Targets(t *testing.T) {
	s := &suite{opts: Options{FixedRate: 5000, BigJourneyEvents: 100000, ReplayEvents: 1000}, rep: &Report{}, rss: 200}
	s.perf = perfRows{
		httpJSON:         &Row{EventsPerSec: 200000},
		noopFixed:        &Row{P99Ms: 2},
		noopAfterBurst:   &Row{P99Ms: 4},
		afterBurst:       &Row{P99Ms: 6, RequestsPerSec: 5000},
		journeyServerP99: 2,
		bigJourney:       &Row{EventsPerSec: 250000},
		startup:          &Row{MaxMs: 2500},
	}
	for i := range 10 {
		s.rep.Series = append(s.rep.Series, SeriesPoint{Stored: int64(i+1) * 1000, EventsPerSec: 100})
	}
	e2e := &e2eRows{
		batch:   &Row{EventsPerSec: 160000, StoredPerSec: 150000},
		fixed:   &Row{P99Ms: 3, RequestsPerSec: 4990},
		journey: &Row{P99Ms: 6, RequestsPerSec: 500},
	}
	s.issue14Targets(&Row{EventsPerSec: 100000}, e2e, &Row{EventsPerSec: 70000})
	want := map[string]struct {
		value float64
		met   bool
	}{
		"T1": {0.75, true},
		"T2 single events at 5000 req/s, fresh store": {3, true},  // 1.5× the no-op
		"T2 single events at 5000 req/s, 0s right":    {6, false}, // over 5 ms although 1.5× the no-op
		"T3 journey p99 (limit 100) in the server":    {2, true},
		"T3 journey p99 (limit 100) through HTTP":     {6, false},
		"T3 100000-event journey":                     {250000, true},
		"T4 peak RSS":                                 {200 * (1 << 20) / 1e6, true},
		"T4 start-up":                                 {2.5, false},
		"T4 replay":                                   {0.7, false},
		"T4 cost per event flat":                      {1, true},
		"T5":                                          {0, false},
	}
	if len(s.rep.Targets) != len(want) {
		t.Errorf("%d targets, want %d: %+v", len(s.rep.Targets), len(want), s.rep.Targets)
	}
	for _, tg := range s.rep.Targets {
		found := false
		for prefix, w := range want {
			if !strings.HasPrefix(tg.Name, prefix) {
				continue
			}
			found = true
			if tg.Value < w.value-1e-9 || tg.Value > w.value+1e-9 || tg.Met != w.met {
				t.Errorf("%s = %v met=%v, want %v met=%v", tg.Name, tg.Value, tg.Met, w.value, w.met)
			}
		}
		if !found {
			t.Errorf("unexpected target %q", tg.Name)
		}
	}
}

func TestSeriesOf(t *testing.T) {
	t0 := time.Unix(0, 0)
	// 1000 events/s for 10 s, observed every 100 ms, in chunks of 500.
	var obs []storedAt
	for i := 0; i <= 100; i++ {
		obs = append(obs, storedAt{t0.Add(time.Duration(i) * 100 * time.Millisecond), float64(i / 5 * 500)})
	}
	pts := seriesOf(obs, 5)
	if len(pts) != 5 {
		t.Fatalf("%d points, want 5: %+v", len(pts), pts)
	}
	for _, p := range pts {
		if p.EventsPerSec < 999 || p.EventsPerSec > 1001 {
			t.Errorf("point %+v, want 1000 events/s", p)
		}
	}
	if pts[len(pts)-1].Stored != 10000 {
		t.Errorf("last point at %d stored, want 10000", pts[len(pts)-1].Stored)
	}
	if seriesOf(obs[:1], 5) != nil {
		t.Error("one observation gave points")
	}
}

// TestFlatnessNotMeasured: a series too coarse to compare its fifths is
// reported as a miss that says so, not left out.
func TestFlatnessNotMeasured(t *testing.T) {
	s := &suite{opts: Options{}, rep: &Report{Series: []SeriesPoint{{Stored: 1000, EventsPerSec: 10}, {Stored: 2000, EventsPerSec: 10}}}}
	s.issue14Targets(nil, nil, nil)
	for _, tg := range s.rep.Targets {
		if strings.HasPrefix(tg.Name, "T4 cost per event flat") {
			if tg.Met || !strings.Contains(tg.Detail, "not measured: the series has 2 points") {
				t.Errorf("flatness target %+v, want a miss saying the series is too short", tg)
			}
			return
		}
	}
	t.Errorf("no flatness target in %+v", s.rep.Targets)
}

func TestMongoTarget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mongo *mongoRows
		value float64
		met   bool
	}{
		{"not measured", nil, 0, false},
		{"met", &mongoRows{raw: &Row{EventsPerSec: 1000}, store: &Row{EventsPerSec: 900}, serve: &Row{EventsPerSec: 800}, drain: 0.5}, 0.9, true},
		{"slow writer", &mongoRows{raw: &Row{EventsPerSec: 1000}, store: &Row{EventsPerSec: 500}, serve: &Row{EventsPerSec: 800}, drain: 0.5}, 0.5, false},
		{"backlog grew", &mongoRows{raw: &Row{EventsPerSec: 1000}, store: &Row{EventsPerSec: 900}, serve: &Row{EventsPerSec: 800}, drain: math.Inf(1)}, 0.9, false},
		{"requests failed", &mongoRows{raw: &Row{EventsPerSec: 1000}, store: &Row{EventsPerSec: 900}, serve: &Row{EventsPerSec: 800, Non2xx: 3}, drain: 0.5}, 0.9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &suite{rep: &Report{}}
			s.perf.mongo = tc.mongo
			s.mongoTarget()
			if len(s.rep.Targets) != 1 {
				t.Fatalf("targets %+v, want one", s.rep.Targets)
			}
			tg := s.rep.Targets[0]
			if !strings.HasPrefix(tg.Name, "T5") || tg.Value < tc.value-1e-9 || tg.Value > tc.value+1e-9 || tg.Met != tc.met {
				t.Errorf("target %+v, want T5 = %v met=%v", tg, tc.value, tc.met)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://127.0.0.1:27017":                    "mongodb://127.0.0.1:27017/scratch",
		"mongodb://u:p@h1,h2/cairn?replicaSet=rs0&w=1": "mongodb://u:p@h1,h2/scratch?replicaSet=rs0&w=1",
	} {
		got, err := withDatabase(in, "scratch")
		if err != nil || got != want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
