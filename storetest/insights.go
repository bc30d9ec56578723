package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/insights"
)

// InsightsStore is an event store that answers insights.
type InsightsStore interface {
	cairn.EventStore
	cairn.TrackedUserStore
	cairn.InsightStore
}

// RunInsights runs the conformance suite for insights (cairn.InsightStore,
// through package insights): it stores generated events — with duplicates
// within and across batches, out-of-order and late batches, several
// sources and identity links — and compares every insight with a
// brute-force computation over the stored events (ExportEvents and
// LinkedUser), before and, when the store is a cairn.Eraser, after an
// erasure. open must return a fresh, empty store; the suite closes it.
func RunInsights(t *testing.T, open func(t *testing.T) InsightsStore) {
	s := open(t)
	t.Cleanup(func() { closeStore(t, s) })
	gen := generateInsightEvents()
	for i, b := range gen.batches {
		res := mustInsert(t, s, b)
		if len(res.Rejected) != 0 {
			t.Fatalf("batch %d: rejected %v", i, res.Rejected)
		}
	}
	svc := insights.New(s)
	t.Run("Trends", func(t *testing.T) { testTrends(t, s, svc) })
	t.Run("UniqueUsers", func(t *testing.T) { testUniqueUsers(t, s, svc) })
	t.Run("ScannedInsights", func(t *testing.T) { testScanned(t, s, svc) })
	t.Run("DuplicatesChangeNothing", func(t *testing.T) {
		before := allInsights(t, svc)
		for _, b := range gen.batches[:3] {
			if res := mustInsert(t, s, b); res.Inserted != 0 {
				t.Fatalf("re-inserted batch stored %d events", res.Inserted)
			}
		}
		if after := allInsights(t, svc); !reflect.DeepEqual(before, after) {
			t.Errorf("insights changed after re-delivery:\n got %s\nwant %s", after, before)
		}
	})
	t.Run("Erasure", func(t *testing.T) {
		er, ok := s.(cairn.Eraser)
		if !ok {
			t.Skip("store is not an Eraser")
		}
		if _, err := er.EraseUser(t.Context(), "u03", time.Now()); err != nil {
			t.Fatalf("EraseUser: %v", err)
		}
		people := storedPeople(t, s)
		if _, ok := people["u03"]; ok {
			t.Fatalf("erased user still has events")
		}
		testScanned(t, s, svc)
	})
}

// insightBase is a Monday.
var insightBase = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// insightDays is the span of the generated events.
const insightDays = 20

type insightData struct {
	batches [][]cairn.Event
}

// generateInsightEvents returns batches to insert in order: shuffled
// events in batches of 40, each with a duplicate of one of its events and
// of one event of an earlier batch, then a late batch of early events, then
// a replay of the first two batches.
func generateInsightEvents() insightData {
	r := rand.New(rand.NewPCG(12, 34))
	var evs []cairn.Event
	n := 0
	add := func(user, typ string, at time.Time, url string) *cairn.Event {
		n++
		e := cairn.Event{
			EventID: fmt.Sprintf("ev-%05d", n), UserID: user, SessionID: fmt.Sprintf("s-%s-%d", user, at.Unix()/7200),
			Type: typ, SourceID: []string{"", "src-a", "src-b"}[r.IntN(3)],
			Payload:    json.RawMessage(`{}`),
			OccurredAt: at.Truncate(time.Millisecond), ReceivedAt: insightBase.Add(insightDays * 24 * time.Hour),
		}
		if url != "" {
			e.Payload = json.RawMessage(`{"url":"` + url + `","n":` + fmt.Sprint(r.IntN(3)) + `}`)
		}
		evs = append(evs, e)
		return &evs[len(evs)-1]
	}
	urls := []string{"/", "/pricing", "/docs", "/pricing", "/blog"}
	visit := func(user string, at time.Time) {
		add(user, "session_start", at, "")
		t := at
		for range 1 + r.IntN(4) {
			t = t.Add(time.Duration(r.IntN(900)) * time.Second)
			add(user, "page_view", t, urls[r.IntN(len(urls))])
		}
		if r.IntN(3) > 0 {
			t = t.Add(time.Duration(r.IntN(1800)) * time.Second)
			add(user, "add_to_cart", t, "")
			if r.IntN(2) == 0 {
				t = t.Add(time.Duration(r.IntN(2400)) * time.Second)
				add(user, "purchase", t, "")
			}
		}
		if r.IntN(4) == 0 {
			add(user, "search", t.Add(-time.Minute), "")
		}
	}
	randTime := func() time.Time {
		return insightBase.Add(time.Duration(r.Int64N(int64(insightDays*24*time.Hour))) + 123*time.Millisecond)
	}
	for u := range 30 {
		user := fmt.Sprintf("u%02d", u)
		for range 1 + r.IntN(4) {
			visit(user, randTime())
		}
	}
	// Anonymous ids with their own visits, later linked to a user (and,
	// for anon-0, a losing link to another user).
	for a := range 8 {
		anon := fmt.Sprintf("anon-%d", a)
		at := randTime()
		visit(anon, at)
		l := add(fmt.Sprintf("u%02d", a), cairn.IdentifyType, at.Add(2*time.Hour), "")
		l.AnonymousID = anon
	}
	l := add("u20", cairn.IdentifyType, insightBase.Add(insightDays*24*time.Hour-time.Hour), "")
	l.AnonymousID = "anon-0"

	// Late events: the earliest 30, held back to the end.
	byTime := slices.Clone(evs)
	slices.SortFunc(byTime, func(a, b cairn.Event) int { return a.OccurredAt.Compare(b.OccurredAt) })
	late := byTime[:30]
	lateIDs := map[string]bool{}
	for _, e := range late {
		lateIDs[e.EventID] = true
	}
	var rest []cairn.Event
	for _, e := range evs {
		if !lateIDs[e.EventID] {
			rest = append(rest, e)
		}
	}
	r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	var d insightData
	for i := 0; i < len(rest); i += 40 {
		b := slices.Clone(rest[i:min(i+40, len(rest))])
		b = append(b, b[r.IntN(len(b))])
		if i > 0 {
			b = append(b, rest[r.IntN(i)])
		}
		d.batches = append(d.batches, b)
	}
	d.batches = append(d.batches, late)
	d.batches = append(d.batches, d.batches[0], d.batches[1])
	return d
}

// storedPeople returns the stored events grouped by person (the linked
// user, or the id itself).
func storedPeople(t *testing.T, s InsightsStore) map[string][]cairn.Event {
	t.Helper()
	ctx := t.Context()
	people := map[string][]cairn.Event{}
	persons := map[string]string{}
	err := s.ExportEvents(ctx, "", func(e *cairn.Event) error {
		p, ok := persons[e.UserID]
		if !ok {
			linked, err := s.LinkedUser(ctx, e.UserID)
			if err != nil {
				return err
			}
			if p = linked; p == "" {
				p = e.UserID
			}
			persons[e.UserID] = p
		}
		people[p] = append(people[p], *e)
		return nil
	})
	if err != nil {
		t.Fatalf("ExportEvents: %v", err)
	}
	return people
}

func storedEvents(people map[string][]cairn.Event) []cairn.Event {
	var all []cairn.Event
	for _, evs := range people {
		all = append(all, evs...)
	}
	return all
}

func testTrends(t *testing.T, s InsightsStore, svc cairn.Insights) {
	all := storedEvents(storedPeople(t, s))
	from := insightBase.Add(5*time.Hour + 30*time.Minute)
	to := insightBase.Add(12*24*time.Hour + 3*time.Hour)
	cases := []struct {
		name string
		q    cairn.TrendsQuery
	}{
		{"Hour", cairn.TrendsQuery{From: from, To: from.Add(50 * time.Hour), Interval: cairn.IntervalHour}},
		{"Day", cairn.TrendsQuery{From: from, To: to, Interval: cairn.IntervalDay}},
		{"Week", cairn.TrendsQuery{From: from, To: to, Interval: cairn.IntervalWeek}},
		{"Month", cairn.TrendsQuery{From: insightBase, To: insightBase.Add(insightDays * 24 * time.Hour), Interval: cairn.IntervalMonth}},
		{"Types", cairn.TrendsQuery{From: from, To: to, Interval: cairn.IntervalDay, Types: []string{"purchase", "page_view", "video_play"}}},
		{"Source", cairn.TrendsQuery{From: from, To: to, Interval: cairn.IntervalDay, SourceID: "src-a"}},
		{"Empty", cairn.TrendsQuery{From: insightBase.AddDate(1, 0, 0), To: insightBase.AddDate(1, 0, 2), Interval: cairn.IntervalDay}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := svc.Trends(t.Context(), c.q)
			if err != nil {
				t.Fatalf("Trends: %v", err)
			}
			nb := c.q.Interval.Index(c.q.From, c.q.To) + 1
			counts := map[string][]int64{}
			for _, e := range all {
				i := c.q.Interval.Index(c.q.From, e.OccurredAt)
				if i < 0 || i >= nb || c.q.SourceID != "" && e.SourceID != c.q.SourceID ||
					len(c.q.Types) > 0 && !slices.Contains(c.q.Types, e.Type) {
					continue
				}
				if counts[e.Type] == nil {
					counts[e.Type] = make([]int64, nb)
				}
				counts[e.Type][i]++
			}
			want := cairn.NewTrends(c.q, counts)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Trends(%+v):\n got %s\nwant %s", c.q, jsonOf(got), jsonOf(want))
			}
			if c.name == "Day" && len(got.Series) < 5 {
				t.Errorf("only %d series: the generated data should have every type", len(got.Series))
			}
		})
	}
}

func testUniqueUsers(t *testing.T, s InsightsStore, svc cairn.Insights) {
	all := storedEvents(storedPeople(t, s))
	from := insightBase.Add(29 * time.Hour)
	to := insightBase.Add(insightDays * 24 * time.Hour)
	for _, iv := range []cairn.Interval{cairn.IntervalDay, cairn.IntervalWeek, cairn.IntervalMonth} {
		t.Run(string(iv), func(t *testing.T) {
			q := cairn.UsersQuery{From: from, To: to, Interval: iv}
			got, err := svc.UniqueUsers(t.Context(), q)
			if err != nil {
				t.Fatalf("UniqueUsers: %v", err)
			}
			buckets := iv.Buckets(from, to)
			sets := make([]map[string]bool, len(buckets))
			for _, e := range all {
				if i := iv.Index(from, e.OccurredAt); i >= 0 && i < len(buckets) {
					if sets[i] == nil {
						sets[i] = map[string]bool{}
					}
					sets[i][e.UserID] = true
				}
			}
			if got.Interval != iv || got.RelativeError <= 0 || len(got.Points) != len(buckets) {
				t.Fatalf("UniqueUsers(%s) = %s; want %d points and a relative error", iv, jsonOf(got), len(buckets))
			}
			total := 0
			for i, p := range got.Points {
				want := len(sets[i])
				total += want
				if !p.T.Equal(buckets[i]) || math.Abs(float64(p.Users)-float64(want)) > math.Max(1, 0.02*float64(want)) {
					t.Errorf("bucket %d: got %s %d users, want %s %d", i, p.T, p.Users, buckets[i], want)
				}
			}
			if total == 0 {
				t.Errorf("no users in the range: the test data is wrong")
			}
		})
	}
}

func testScanned(t *testing.T, s InsightsStore, svc cairn.Insights) {
	people := storedPeople(t, s)
	ctx := t.Context()
	from := insightBase.Add(3 * time.Hour)
	to := insightBase.Add((insightDays - 2) * 24 * time.Hour)
	funnels := []cairn.FunnelQuery{
		{Steps: []cairn.FunnelStep{{Type: "session_start"}, {Type: "page_view"}, {Type: "add_to_cart"}, {Type: "purchase"}},
			Within: time.Hour, From: from, To: to},
		{Steps: []cairn.FunnelStep{{Type: "page_view", Where: map[string]string{"url": "/pricing"}}, {Type: "purchase"}},
			Within: 30 * time.Minute, From: from, To: to},
		{Steps: []cairn.FunnelStep{{Type: "page_view"}, {Type: "page_view"}, {Type: "page_view", Where: map[string]string{"n": "2"}}},
			Within: 20 * time.Minute, From: insightBase, To: insightBase.Add(insightDays * 24 * time.Hour)},
	}
	for i, q := range funnels {
		t.Run(fmt.Sprintf("Funnel%d", i), func(t *testing.T) {
			got, err := svc.Funnel(ctx, q)
			if err != nil {
				t.Fatalf("Funnel: %v", err)
			}
			want := insights.ComputeFunnel(q, people)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Funnel:\n got %s\nwant %s", jsonOf(got), jsonOf(want))
			}
			brute := bruteFunnelUsers(q, people)
			for k, st := range got.Steps {
				if st.Users != brute[k] {
					t.Errorf("step %d: %d users, brute force says %d", k, st.Users, brute[k])
				}
			}
			if brute[len(brute)-1] == 0 && i < 2 {
				t.Errorf("nobody completes funnel %d: the test data is wrong", i)
			}
		})
	}
	retentions := []cairn.RetentionQuery{
		{Cohort: "session_start", Return: cairn.AnyEventType, From: from, To: to, Interval: cairn.IntervalDay},
		{Cohort: "", Return: "purchase", From: from, To: to, Interval: cairn.IntervalWeek},
	}
	for i, q := range retentions {
		t.Run(fmt.Sprintf("Retention%d", i), func(t *testing.T) {
			got, err := svc.Retention(ctx, q)
			if err != nil {
				t.Fatalf("Retention: %v", err)
			}
			if want := bruteRetention(q, people); !reflect.DeepEqual(got, want) {
				t.Errorf("Retention:\n got %s\nwant %s", jsonOf(got), jsonOf(want))
			}
		})
	}
	tops := []cairn.TopQuery{
		{Type: "page_view", Field: "url", From: from, To: to, Limit: 3},
		{Field: "n", From: insightBase, To: to, Limit: 100},
		{Type: "purchase", Field: "url", From: from, To: to, Limit: 10},
	}
	all := storedEvents(people)
	for i, q := range tops {
		t.Run(fmt.Sprintf("Top%d", i), func(t *testing.T) {
			got, err := svc.Top(ctx, q)
			if err != nil {
				t.Fatalf("Top: %v", err)
			}
			counts := map[string]int64{}
			for _, e := range all {
				if e.OccurredAt.Before(q.From) || e.OccurredAt.After(q.To) || q.Type != "" && e.Type != q.Type {
					continue
				}
				var p map[string]any
				if json.Unmarshal(e.Payload, &p) == nil && p[q.Field] != nil {
					counts[fmt.Sprint(p[q.Field])]++
				}
			}
			want := &cairn.TopValues{Type: q.Type, Field: q.Field, Values: []cairn.TopValue{}}
			for v, c := range counts {
				want.Values = append(want.Values, cairn.TopValue{Value: v, Count: c})
			}
			slices.SortFunc(want.Values, func(a, b cairn.TopValue) int {
				if a.Count != b.Count {
					return int(b.Count - a.Count)
				}
				return strings.Compare(a.Value, b.Value)
			})
			want.Values = want.Values[:min(len(want.Values), q.Limit)]
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Top:\n got %s\nwant %s", jsonOf(got), jsonOf(want))
			}
		})
	}
}

// bruteFunnelUsers counts, per step, the people with some sequence of
// events matching steps 1..k in order within the window: an exhaustive
// (memoized) search over every start and every choice.
func bruteFunnelUsers(q cairn.FunnelQuery, people map[string][]cairn.Event) []int64 {
	out := make([]int64, len(q.Steps))
	for _, evs := range people {
		var es []cairn.Event
		for _, e := range evs {
			if !e.OccurredAt.Before(q.From) && !e.OccurredAt.After(q.To) {
				es = append(es, e)
			}
		}
		slices.SortFunc(es, func(a, b cairn.Event) int {
			return cairn.CompareEventKey(a.OccurredAt, a.EventID, b.OccurredAt, b.EventID)
		})
		best := 0
		for s := range es {
			if !q.Steps[0].Matches(&es[s]) {
				continue
			}
			memo := map[[2]int]int{}
			var depth func(step, last int) int
			depth = func(step, last int) int {
				if step == len(q.Steps) {
					return 0
				}
				if v, ok := memo[[2]int{step, last}]; ok {
					return v
				}
				d := 0
				for j := last + 1; j < len(es); j++ {
					if es[j].OccurredAt.Sub(es[s].OccurredAt) <= q.Within && q.Steps[step].Matches(&es[j]) {
						d = max(d, 1+depth(step+1, j))
					}
				}
				memo[[2]int{step, last}] = d
				return d
			}
			best = max(best, 1+depth(1, s))
		}
		for k := range best {
			out[k]++
		}
	}
	return out
}

func bruteRetention(q cairn.RetentionQuery, people map[string][]cairn.Event) *cairn.Retention {
	buckets := q.Interval.Buckets(q.From, q.To)
	anyType := func(t string) bool { return t == "" || t == cairn.AnyEventType }
	r := &cairn.Retention{Interval: q.Interval, Cohort: q.Cohort, Return: q.Return}
	if r.Cohort == "" {
		r.Cohort = cairn.AnyEventType
	}
	if r.Return == "" {
		r.Return = cairn.AnyEventType
	}
	for i, b := range buckets {
		r.Cohorts = append(r.Cohorts, cairn.RetentionCohort{T: b, Returned: make([]int64, len(buckets)-i)})
	}
	for _, evs := range people {
		first := -1
		var firstAt time.Time
		for _, e := range evs {
			i := q.Interval.Index(q.From, e.OccurredAt)
			if i < 0 || i >= len(buckets) || !anyType(q.Cohort) && e.Type != q.Cohort {
				continue
			}
			if first < 0 || e.OccurredAt.Before(firstAt) {
				first, firstAt = i, e.OccurredAt
			}
		}
		if first < 0 {
			continue
		}
		r.Cohorts[first].Users++
		back := map[int]bool{0: true}
		for _, e := range evs {
			i := q.Interval.Index(q.From, e.OccurredAt)
			if i > first && i < len(buckets) && (anyType(q.Return) || e.Type == q.Return) {
				back[i-first] = true
			}
		}
		for k := range back {
			r.Cohorts[first].Returned[k]++
		}
	}
	return r
}

// allInsights returns every insight of a fixed set of queries, as JSON.
func allInsights(t *testing.T, svc cairn.Insights) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	from, to := insightBase, insightBase.Add(insightDays*24*time.Hour)
	var out []any
	add := func(v any, err error) {
		if err != nil {
			t.Fatalf("insight: %v", err)
		}
		out = append(out, v)
	}
	add(svc.Trends(ctx, cairn.TrendsQuery{From: from, To: to, Interval: cairn.IntervalHour}))
	add(svc.UniqueUsers(ctx, cairn.UsersQuery{From: from, To: to, Interval: cairn.IntervalDay}))
	add(svc.Funnel(ctx, cairn.FunnelQuery{Steps: []cairn.FunnelStep{{Type: "page_view"}, {Type: "purchase"}}, Within: time.Hour, From: from, To: to}))
	add(svc.Retention(ctx, cairn.RetentionQuery{From: from, To: to, Interval: cairn.IntervalDay}))
	add(svc.Top(ctx, cairn.TopQuery{Field: "url", From: from, To: to, Limit: 10}))
	return jsonOf(out)
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}
