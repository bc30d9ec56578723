package pebble_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
)

// benchEvents returns n events spread over users users, with ids starting at
// seq.
func benchEvents(seq, n, users int, t0 time.Time) []cairn.Event {
	payload := json.RawMessage(`{"url":"/products/laptop-pro-14","referrer":"https://www.google.com/","loadTimeMs":412}`)
	evs := make([]cairn.Event, n)
	for i := range evs {
		k := seq + i
		evs[i] = cairn.Event{
			EventID:    "ev-" + strconv.Itoa(k),
			UserID:     "user-" + strconv.Itoa(k%users),
			SessionID:  "s-" + strconv.Itoa(k%users),
			Type:       "page_view",
			Payload:    payload,
			OccurredAt: t0.Add(time.Duration(k) * time.Millisecond),
			ReceivedAt: t0.Add(time.Duration(k) * time.Millisecond),
		}
	}
	return evs
}

func openBench(b *testing.B) *pebble.Store {
	b.Helper()
	s, err := pebble.Open(b.TempDir(), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeStore(b, s) })
	return s
}

// BenchmarkInsertEvents measures durable (pebble.Sync) inserts of pre-built
// 500-event batches of new events: the store ceiling of the batcher.
func BenchmarkInsertEvents(b *testing.B) {
	const batch = 500
	s := openBench(b)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	batches := make([][]cairn.Event, 0, 64)
	for i := range cap(batches) {
		batches = append(batches, benchEvents(i*batch, batch, 10000, t0))
	}
	seq := 0
	b.ReportAllocs()
	for b.Loop() {
		evs := batches[seq%len(batches)]
		if seq >= len(batches) {
			// Fresh ids so every event is new (not a duplicate).
			evs = benchEvents(seq*batch, batch, 10000, t0)
		}
		seq++
		res, err := s.InsertEvents(ctx, evs)
		if err != nil || res.Inserted != batch {
			b.Fatalf("insert: %+v %v", res, err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkInsertDuplicates measures a replayed batch whose events are all
// stored already (the dedup path after a crash).
func BenchmarkInsertDuplicates(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	evs := benchEvents(0, 500, 10000, time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond))
	if _, err := s.InsertEvents(ctx, evs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := s.InsertEvents(ctx, evs)
		if err != nil || res.Duplicates != 500 {
			b.Fatalf("insert: %+v %v", res, err)
		}
	}
}

// BenchmarkJourney measures a journey page (limit 100) from a store of
// 200,000 events over 2,000 users (100 each).
func BenchmarkJourney(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	const users, total = 2000, 200000
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	for i := 0; i < total; i += 5000 {
		if _, err := s.InsertEvents(ctx, benchEvents(i, 5000, users, t0)); err != nil {
			b.Fatal(err)
		}
	}
	for _, limit := range []int{10, 100} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				p, err := s.Journey(ctx, cairn.JourneyQuery{UserID: "user-" + strconv.Itoa(i%users), Limit: limit})
				if err != nil || len(p.Events) != limit {
					b.Fatalf("journey: %d events, %v", len(p.Events), err)
				}
				i += 7
			}
		})
	}
}

// BenchmarkInsertEventsFilled measures durable 500-event inserts into a store
// already holding 400,000 events, where the dedup lookups of new eventIds
// reach sstables, with the default block cache and with a larger one. Pebble
// charges memtables (32 MiB each here) to the block cache, so the cache size
// decides whether filter and index blocks stay in memory:
//
//	go test -run - -bench InsertEventsFilled -count 6 ./pebble | benchstat -col /cache -
func BenchmarkInsertEventsFilled(b *testing.B) {
	const batch, prefill = 500, 400_000
	for _, cache := range []int64{0, 192 << 20} {
		name := "default"
		if cache > 0 {
			name = fmt.Sprintf("%dMiB", cache>>20)
		}
		b.Run("cache="+name, func(b *testing.B) {
			s, err := pebble.Open(b.TempDir(), pebble.Options{CacheSize: cache})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { closeStore(b, s) })
			ctx := context.Background()
			t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
			for i := 0; i < prefill; i += 5000 {
				if _, err := s.InsertEvents(ctx, benchEvents(i, 5000, 100_000, t0)); err != nil {
					b.Fatal(err)
				}
			}
			seq := prefill
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				evs := benchEvents(seq, batch, 100_000, t0)
				seq += batch
				b.StartTimer()
				if res, err := s.InsertEvents(ctx, evs); err != nil || res.Inserted != batch {
					b.Fatalf("insert: %+v %v", res, err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkInsertEventsDeferSync is BenchmarkInsertEvents with
// Options.DeferSync, as Cairn runs the store (the spool holds the durable
// copy): the CPU cost of an insert without an fsync per batch. cpu-ns/event
// is the process's CPU time (the writer plus Pebble's background flushes and
// compactions) per inserted event, event generation included.
func BenchmarkInsertEventsDeferSync(b *testing.B) {
	const batch = 500
	s, err := pebble.Open(b.TempDir(), pebble.Options{DeferSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeStore(b, s) })
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	seq := 0
	cpu0 := cpuTime(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		evs := benchEvents(seq*batch, batch, 10000, t0)
		seq++
		b.StartTimer()
		res, err := s.InsertEvents(ctx, evs)
		if err != nil || res.Inserted != batch {
			b.Fatalf("insert: %+v %v", res, err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*batch), "cpu-ns/event")
}

// BenchmarkJourneyPaged reads one user's 100,000-event journey page by page
// (1,000 events a page, following the cursor) straight from the store: the
// store's share of issue 14's "100k-event journey paged end to end ≥ 200k
// events/s" (cairn bench adds HTTP and JSON).
func BenchmarkJourneyPaged(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	const total = 100_000
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	for i := 0; i < total; i += 5000 {
		if _, err := s.InsertEvents(ctx, benchEvents(i, 5000, 1, t0)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		q := cairn.JourneyQuery{UserID: "user-0", Limit: cairn.MaxJourneyLimit}
		for {
			p, err := s.Journey(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			n += len(p.Events)
			if p.Next == nil {
				break
			}
			q.After = p.Next
		}
		if n != total {
			b.Fatalf("read %d events, want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
}
