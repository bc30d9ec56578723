package pebble_test

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/insights"

	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/storetest"
)

func TestInsightsConformance(t *testing.T) {
	storetest.RunInsights(t, func(t *testing.T) storetest.InsightsStore {
		s, err := pebble.Open(t.TempDir(), pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestUserSketchError measures the relative error of the unique-user
// sketches at 1M users, in one day's sketch and merged from seven days
// (a week) where each user appears on two of them.
func TestUserSketchError(t *testing.T) {
	const n = 1_000_000
	one := hyperloglog.New16()
	days := make([]*hyperloglog.Sketch, 7)
	for i := range days {
		days[i] = hyperloglog.New16()
	}
	var b []byte
	for i := range n {
		b = strconv.AppendInt(append(b[:0], "user-"...), int64(i), 10)
		one.Insert(b)
		days[i%7].Insert(b)
		days[(i+3)%7].Insert(b)
	}
	week := hyperloglog.New16()
	for _, d := range days {
		if err := week.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
	for name, sk := range map[string]*hyperloglog.Sketch{"day": one, "week": week} {
		rel := math.Abs(float64(sk.Estimate())-n) / n
		t.Logf("%s: estimate %d of %d users, relative error %.4f", name, sk.Estimate(), n, rel)
		if rel > 0.02 {
			t.Errorf("%s: relative error %.4f > 0.02", name, rel)
		}
	}
}

// BenchmarkInsertEventsInsights measures batched inserts with and without
// the insight aggregates (500-event batches of new events of the last hour,
// 100k users, 3 types, 3 sources).
func BenchmarkInsertEventsInsights(b *testing.B) {
	for _, on := range []bool{true, false} {
		b.Run(map[bool]string{true: "Aggregates", false: "NoAggregates"}[on], func(b *testing.B) {
			s, err := pebble.Open(b.TempDir(), pebble.Options{DeferSync: true, NoInsightAggregates: !on})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close() //nolint:errcheck // benchmark teardown
			now := time.Now().UTC()
			types := []string{"page_view", "add_to_cart", "purchase"}
			evs := make([]cairn.Event, 500)
			b.ResetTimer()
			for i := range b.N {
				for j := range evs {
					k := i*len(evs) + j
					u := "user-" + strconv.Itoa(k*7919%100000)
					evs[j] = cairn.Event{EventID: "b-" + strconv.Itoa(k), UserID: u, SessionID: u + "-s", Type: types[k%3],
						SourceID: []string{"", "a", "b"}[k%3], Payload: []byte(`{"url":"/products/laptop-pro-14","referrer":"https://www.google.com/"}`),
						OccurredAt: now.Add(-time.Duration(k%3600000) * time.Millisecond), ReceivedAt: now}
				}
				if _, err := s.InsertEvents(b.Context(), evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestUserSketchDeltas: a day's sketch written as deltas, rewritten every
// few batches and when the stream moves to the next day, counts the same
// across a reopen.
func TestUserSketchDeltas(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	open := func() *pebble.Store {
		s, err := pebble.Open(dir, pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	insert := func(s *pebble.Store, batch, users int, at time.Time) {
		var evs []cairn.Event
		for i := range 50 {
			evs = append(evs, storetest.NewEvent(fmt.Sprintf("e-%d-%d", batch, i), fmt.Sprintf("u-%d", (batch*50+i)%users), at))
		}
		if _, err := s.InsertEvents(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	users := func(s *pebble.Store) []int64 {
		u, err := s.UniqueUsers(t.Context(), cairn.UsersQuery{From: day, To: day.AddDate(0, 0, 1), Interval: cairn.IntervalDay})
		if err != nil {
			t.Fatal(err)
		}
		return []int64{u.Points[0].Users, u.Points[1].Users}
	}
	s := open()
	for b := range 70 { // more than 2 × maxSketchDeltas batches on day 1
		insert(s, b, 3000, day.Add(time.Hour))
	}
	insert(s, 100, 3000, day.Add(25*time.Hour)) // moves on to day 2
	before := users(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close() //nolint:errcheck // test teardown
	if after := users(s); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after reopen %v, before %v", after, before)
	}
	for b := 200; b < 240; b++ { // day 1 again (late events), after the reopen
		insert(s, b, 4000, day.Add(2*time.Hour))
	}
	got := users(s)
	if math.Abs(float64(got[0])-4000) > 40 || math.Abs(float64(got[1])-50) > 1 {
		t.Errorf("users %v, want about 4000 and 50", got)
	}
	t.Logf("before reopen %v, at the end %v", before, got)
}

// BenchmarkFunnel measures a 3-step funnel over 200k events of 20k users.
func BenchmarkFunnel(b *testing.B) {
	s, err := pebble.Open(b.TempDir(), pebble.Options{DeferSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // benchmark teardown
	end := time.Now().UTC()
	types := []string{"page_view", "add_to_cart", "purchase"}
	var evs []cairn.Event
	for k := range 200_000 {
		u := "user-" + strconv.Itoa(k%20000)
		evs = append(evs, cairn.Event{EventID: "f-" + strconv.Itoa(k), UserID: u, SessionID: u + "-s", Type: types[k%3],
			Payload: []byte(`{"url":"/products/laptop-pro-14"}`), OccurredAt: end.Add(-time.Duration(200_000-k) * 10 * time.Second), ReceivedAt: end})
		if len(evs) == 1000 {
			if _, err := s.InsertEvents(b.Context(), evs); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	svc := insights.New(s)
	q := cairn.FunnelQuery{Steps: []cairn.FunnelStep{{Type: "page_view"}, {Type: "add_to_cart"}, {Type: "purchase"}},
		Within: time.Hour, From: end.Add(-30 * 24 * time.Hour), To: end}
	b.ResetTimer()
	for range b.N {
		if _, err := svc.Funnel(b.Context(), q); err != nil {
			b.Fatal(err)
		}
	}
}
