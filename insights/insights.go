// Package insights answers Cairn's insight queries (cairn.Insights) on top
// of any cairn.InsightStore: trends and unique users come straight from the
// store's ingest-time aggregates; funnels, retention and top values are
// computed here, at query time, from the store's event scan
// (cairn.InsightStore.ScanInsightEvents), so that both stores share one
// implementation of the algorithms. The pure functions (ComputeFunnel,
// ComputeRetention, ComputeTop) take events grouped by person and are what
// the tests check against brute force.
package insights

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// Service implements cairn.Insights over a store.
type Service struct {
	store cairn.InsightStore
}

var _ cairn.Insights = (*Service)(nil)

// New returns a Service reading store.
func New(store cairn.InsightStore) *Service { return &Service{store: store} }

// Trends returns the store's trends. See cairn.Insights.
func (s *Service) Trends(ctx context.Context, q cairn.TrendsQuery) (*cairn.Trends, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return s.store.Trends(ctx, q)
}

// UniqueUsers returns the store's unique users. See cairn.Insights.
func (s *Service) UniqueUsers(ctx context.Context, q cairn.UsersQuery) (*cairn.UniqueUsers, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return s.store.UniqueUsers(ctx, q)
}

// hit is a compact event of a scan: what the algorithms need.
type hit struct {
	ms   int64
	id   string
	mask uint32 // funnel: the steps it matches; retention: 1 cohort, 2 return
}

func compareHit(a, b hit) int {
	if a.ms != b.ms {
		if a.ms < b.ms {
			return -1
		}
		return 1
	}
	return strings.Compare(a.id, b.id)
}

// collect scans sc and returns, per person, the events for which classify
// returns a non-zero mask, sorted.
func (s *Service) collect(ctx context.Context, sc cairn.InsightScan, classify func(*cairn.Event) uint32) (map[string][]hit, error) {
	people := make(map[string][]hit)
	err := s.store.ScanInsightEvents(ctx, sc, func(person string, events []cairn.Event) error {
		hs := people[person]
		for i := range events {
			if m := classify(&events[i]); m != 0 {
				hs = append(hs, hit{ms: events[i].OccurredAt.UnixMilli(), id: events[i].EventID, mask: m})
			}
		}
		if len(hs) > 0 {
			people[person] = hs
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan events: %w", err)
	}
	for p, hs := range people {
		if !slices.IsSortedFunc(hs, compareHit) {
			slices.SortFunc(hs, compareHit)
			people[p] = hs
		}
	}
	return people, nil
}

func stepTypes(steps []cairn.FunnelStep) []string {
	var types []string
	for _, st := range steps {
		if !slices.Contains(types, st.Type) {
			types = append(types, st.Type)
		}
	}
	return types
}

// Funnel computes a funnel from the store's scan. See cairn.Insights.
func (s *Service) Funnel(ctx context.Context, q cairn.FunnelQuery) (*cairn.Funnel, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	sc := cairn.InsightScan{From: q.From, To: q.To, Types: stepTypes(q.Steps), Minimal: true}
	for _, st := range q.Steps {
		if len(st.Where) > 0 {
			sc.Minimal = false
		}
	}
	people, err := s.collect(ctx, sc,
		func(e *cairn.Event) uint32 { return stepMask(q.Steps, e) })
	if err != nil {
		return nil, err
	}
	return funnel(q, people), nil
}

func stepMask(steps []cairn.FunnelStep, e *cairn.Event) uint32 {
	var m uint32
	for i := range steps {
		if steps[i].Matches(e) {
			m |= 1 << i
		}
	}
	return m
}

// ComputeFunnel computes q over events grouped by person (each person's
// events in any order; events outside [q.From, q.To] are ignored). It does
// not validate q.
func ComputeFunnel(q cairn.FunnelQuery, people map[string][]cairn.Event) *cairn.Funnel {
	return funnel(q, group(people, q.From, q.To, func(e *cairn.Event) uint32 { return stepMask(q.Steps, e) }))
}

func group(people map[string][]cairn.Event, from, to time.Time, classify func(*cairn.Event) uint32) map[string][]hit {
	out := make(map[string][]hit, len(people))
	for p, evs := range people {
		var hs []hit
		for i := range evs {
			e := &evs[i]
			if e.OccurredAt.Before(from) || e.OccurredAt.After(to) {
				continue
			}
			if m := classify(e); m != 0 {
				hs = append(hs, hit{ms: e.OccurredAt.UnixMilli(), id: e.EventID, mask: m})
			}
		}
		if len(hs) > 0 {
			slices.SortFunc(hs, compareHit)
			out[p] = hs
		}
	}
	return out
}

func funnel(q cairn.FunnelQuery, people map[string][]hit) *cairn.Funnel {
	n := len(q.Steps)
	users := make([]int64, n)
	examples := make([][]string, n)
	deltas := make([][]float64, n)
	window := q.Within.Milliseconds()
	times := make([]int64, n)
	best := make([]int64, n)
	for person, hs := range people {
		depth := 0
		for start := range hs {
			if hs[start].mask&1 == 0 {
				continue
			}
			times[0] = hs[start].ms
			d, j := 1, start+1
			for d < n && j < len(hs) {
				if hs[j].ms-hs[start].ms > window {
					break
				}
				if hs[j].mask&(1<<d) != 0 {
					times[d] = hs[j].ms
					d++
				}
				j++
			}
			if d > depth {
				depth = d
				copy(best, times[:d])
			}
			if depth == n {
				break
			}
		}
		for k := range depth {
			users[k]++
			examples[k] = append(examples[k], person)
			if k > 0 {
				deltas[k] = append(deltas[k], float64(best[k]-best[k-1])/1000)
			}
		}
	}
	f := &cairn.Funnel{Within: cairn.FormatWindow(q.Within), Steps: make([]cairn.FunnelStepResult, n)}
	for k, st := range q.Steps {
		r := cairn.FunnelStepResult{Type: st.Type, Where: st.Where, Users: users[k]}
		if users[0] > 0 {
			r.ConversionFromFirst = float64(users[k]) / float64(users[0])
		}
		if k == 0 {
			r.ConversionFromPrevious = r.ConversionFromFirst
		} else if users[k-1] > 0 {
			r.ConversionFromPrevious = float64(users[k]) / float64(users[k-1])
		}
		if k > 0 && len(deltas[k]) > 0 {
			m := median(deltas[k])
			r.MedianSecondsFromPrevious = &m
		}
		ex := examples[k]
		sort.Strings(ex)
		if len(ex) > cairn.FunnelExampleUsers {
			ex = ex[:cairn.FunnelExampleUsers]
		}
		r.ExampleUsers = append([]string{}, ex...)
		f.Steps[k] = r
	}
	return f
}

func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Retention masks.
const (
	maskCohort = 1
	maskReturn = 2
)

func retentionClassifier(q cairn.RetentionQuery) func(*cairn.Event) uint32 {
	isAny := func(t string) bool { return t == "" || t == cairn.AnyEventType }
	return func(e *cairn.Event) uint32 {
		var m uint32
		if isAny(q.Cohort) || e.Type == q.Cohort {
			m |= maskCohort
		}
		if isAny(q.Return) || e.Type == q.Return {
			m |= maskReturn
		}
		return m
	}
}

// rangeOf returns the exact occurredAt range of q's whole buckets.
func rangeOf(iv cairn.Interval, from, to time.Time) (time.Time, time.Time) {
	return iv.Truncate(from), iv.Next(iv.Truncate(to)).Add(-time.Millisecond)
}

// Retention computes a cohort table from the store's scan. See
// cairn.Insights.
func (s *Service) Retention(ctx context.Context, q cairn.RetentionQuery) (*cairn.Retention, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	from, to := rangeOf(q.Interval, q.From, q.To)
	sc := cairn.InsightScan{From: from, To: to, Minimal: true}
	if q.Cohort != "" && q.Cohort != cairn.AnyEventType && q.Return != "" && q.Return != cairn.AnyEventType {
		sc.Types = []string{q.Cohort, q.Return}
	}
	people, err := s.collect(ctx, sc, retentionClassifier(q))
	if err != nil {
		return nil, err
	}
	return retention(q, people), nil
}

// ComputeRetention computes q over events grouped by person (in any
// order). It does not validate q.
func ComputeRetention(q cairn.RetentionQuery, people map[string][]cairn.Event) *cairn.Retention {
	from, to := rangeOf(q.Interval, q.From, q.To)
	return retention(q, group(people, from, to, retentionClassifier(q)))
}

func retention(q cairn.RetentionQuery, people map[string][]hit) *cairn.Retention {
	buckets := q.Interval.Buckets(q.From, q.To)
	r := &cairn.Retention{Interval: q.Interval, Cohort: orAny(q.Cohort), Return: orAny(q.Return),
		Cohorts: make([]cairn.RetentionCohort, len(buckets))}
	for i, b := range buckets {
		r.Cohorts[i] = cairn.RetentionCohort{T: b, Returned: make([]int64, len(buckets)-i)}
	}
	seen := make([]bool, len(buckets))
	for _, hs := range people {
		first := -1
		for _, h := range hs {
			if h.mask&maskCohort != 0 {
				first = q.Interval.Index(q.From, time.UnixMilli(h.ms))
				break
			}
		}
		if first < 0 || first >= len(buckets) {
			continue
		}
		c := &r.Cohorts[first]
		c.Users++
		c.Returned[0]++
		clear(seen)
		for _, h := range hs {
			if h.mask&maskReturn == 0 {
				continue
			}
			k := q.Interval.Index(q.From, time.UnixMilli(h.ms)) - first
			if k > 0 && k < len(c.Returned) && !seen[k] {
				seen[k] = true
				c.Returned[k]++
			}
		}
	}
	return r
}

func orAny(t string) string {
	if t == "" {
		return cairn.AnyEventType
	}
	return t
}

// Top returns the most frequent values of a payload field from the store's
// scan. See cairn.Insights.
func (s *Service) Top(ctx context.Context, q cairn.TopQuery) (*cairn.TopValues, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	sc := cairn.InsightScan{From: q.From, To: q.To}
	if q.Type != "" {
		sc.Types = []string{q.Type}
	}
	counts := make(map[string]int64)
	err := s.store.ScanInsightEvents(ctx, sc, func(_ string, events []cairn.Event) error {
		for i := range events {
			if v, ok := cairn.PayloadValue(events[i].Payload, q.Field); ok {
				counts[v]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan events: %w", err)
	}
	return top(q, counts), nil
}

// ComputeTop computes q over events (in any order). It does not validate q.
func ComputeTop(q cairn.TopQuery, events []cairn.Event) *cairn.TopValues {
	counts := make(map[string]int64)
	for i := range events {
		e := &events[i]
		if e.OccurredAt.Before(q.From) || e.OccurredAt.After(q.To) || q.Type != "" && e.Type != q.Type {
			continue
		}
		if v, ok := cairn.PayloadValue(e.Payload, q.Field); ok {
			counts[v]++
		}
	}
	return top(q, counts)
}

func top(q cairn.TopQuery, counts map[string]int64) *cairn.TopValues {
	vals := make([]cairn.TopValue, 0, len(counts))
	for v, c := range counts {
		vals = append(vals, cairn.TopValue{Value: v, Count: c})
	}
	slices.SortFunc(vals, func(a, b cairn.TopValue) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
	if len(vals) > q.Limit {
		vals = vals[:q.Limit]
	}
	return &cairn.TopValues{Type: q.Type, Field: q.Field, Values: vals}
}
