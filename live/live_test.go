package live_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/live"
)

func events(n int, typ, user string) []cairn.Event {
	out := make([]cairn.Event, n)
	for i := range out {
		out[i] = cairn.Event{EventID: fmt.Sprintf("%s-%s-%d", user, typ, i), UserID: user, SessionID: "s", Type: typ}
	}
	return out
}

func ids(evs []cairn.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.EventID)
	}
	return out
}

// liveIDs returns the event ids of delivered events, checking that each
// one's JSON is its event's encoding.
func liveIDs(t *testing.T, evs []cairn.LiveEvent) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		if want := e.Event.AppendJSON(nil); string(e.JSON) != string(want) {
			t.Errorf("event %s: JSON %s, want %s", e.Event.EventID, e.JSON, want)
		}
		out = append(out, e.Event.EventID)
	}
	return out
}

// TestFilter: a subscriber receives the events matching its filter, in
// publish order. Each case ends with a sentinel event that matches its
// filter: delivery keeps publish order, so once the sentinel arrived
// everything published before it has.
func TestFilter(t *testing.T) {
	hub := live.NewHub(100)
	for _, tc := range []struct {
		name   string
		filter cairn.LiveFilter
		want   []string
	}{
		{"All", cairn.LiveFilter{}, []string{"u1-search-0", "u1-page_view-0", "u2-search-0", "u2-page_view-0", "src"}},
		{"Type", cairn.LiveFilter{Type: "search"}, []string{"u1-search-0", "u2-search-0"}},
		{"User", cairn.LiveFilter{UserID: "u2"}, []string{"u2-search-0", "u2-page_view-0"}},
		{"TypeAndUser", cairn.LiveFilter{Type: "search", UserID: "u2"}, []string{"u2-search-0"}},
		{"NoMatch", cairn.LiveFilter{Type: "purchase"}, nil},
		{"Source", cairn.LiveFilter{SourceID: "src_a"}, []string{"src"}},
		{"UnknownSource", cairn.LiveFilter{SourceID: "src_x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := hub.Subscribe(tc.filter)
			defer sub.Close()
			batch := append(append(events(1, "search", "u1"), events(1, "page_view", "u1")...),
				append(events(1, "search", "u2"), events(1, "page_view", "u2")...)...)
			batch = append(batch, cairn.Event{EventID: "src", UserID: "u3", SessionID: "s", Type: "track", SourceID: "src_a"})
			hub.Publish(batch)
			sentinel := cairn.Event{EventID: "sentinel", UserID: "zz", SessionID: "s", Type: "sentinel", SourceID: tc.filter.SourceID}
			if tc.filter.Type != "" {
				sentinel.Type = tc.filter.Type
			}
			if tc.filter.UserID != "" {
				sentinel.UserID = tc.filter.UserID
			}
			hub.Publish([]cairn.Event{sentinel})
			var got []string
			for len(got) == 0 || got[len(got)-1] != "sentinel" {
				evs, skipped, err := sub.Next(t.Context())
				if err != nil || skipped != 0 {
					t.Fatalf("Next: skipped %d, err %v (got so far %v)", skipped, err, got)
				}
				got = append(got, liveIDs(t, evs)...)
			}
			if got = got[:len(got)-1]; fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestOnlyLaterEvents: a subscriber receives what is published after it
// subscribed, not before.
func TestOnlyLaterEvents(t *testing.T) {
	hub := live.NewHub(100)
	early := hub.Subscribe(cairn.LiveFilter{})
	defer early.Close()
	hub.Publish(events(3, "search", "before"))
	late := hub.Subscribe(cairn.LiveFilter{})
	defer late.Close()
	hub.Publish(events(2, "search", "after"))
	for _, tc := range []struct {
		name string
		sub  cairn.LiveSubscription
		want int
	}{{"Early", early, 5}, {"Late", late, 2}} {
		var got []string
		for len(got) < tc.want {
			evs, _, err := tc.sub.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, liveIDs(t, evs)...)
		}
		if len(got) != tc.want || got[0] != map[bool]string{true: "before-search-0", false: "after-search-0"}[tc.want == 5] {
			t.Errorf("%s subscriber got %v", tc.name, got)
		}
	}
}

// TestEncodedOnce: every subscriber receives the same encoding of an
// event, not a copy of its own.
func TestEncodedOnce(t *testing.T) {
	hub := live.NewHub(100)
	a, b := hub.Subscribe(cairn.LiveFilter{}), hub.Subscribe(cairn.LiveFilter{Type: "search"})
	defer a.Close()
	defer b.Close()
	hub.Publish(events(3, "search", "u"))
	var got [2][]cairn.LiveEvent
	for i, sub := range []cairn.LiveSubscription{a, b} {
		for len(got[i]) < 3 {
			evs, _, err := sub.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			liveIDs(t, evs)
			got[i] = append(got[i], evs...)
		}
	}
	for k := range 3 {
		if &got[0][k].JSON[0] != &got[1][k].JSON[0] || got[0][k].Event != got[1][k].Event {
			t.Errorf("event %d: the subscribers hold different encodings", k)
		}
	}
}

// TestSlowSubscriber: a subscriber that does not read never blocks
// Publish; the events beyond its buffer are dropped for it alone and its
// next read says how many, while a subscriber that keeps up gets
// everything. (Each batch reaches the subscribers in the order they
// subscribed, so once the fast one has the last batch the slow one has
// been offered it too.)
func TestSlowSubscriber(t *testing.T) {
	hub := live.NewHub(10)
	slow := hub.Subscribe(cairn.LiveFilter{})
	defer slow.Close()
	fast := hub.Subscribe(cairn.LiveFilter{})
	defer fast.Close()

	fastGot := 0
	for i := range 100 {
		hub.Publish(events(10, "search", fmt.Sprint("u", i)))
		evs, skipped, err := fast.Next(t.Context())
		if err != nil || skipped != 0 {
			t.Fatalf("fast subscriber: skipped %d, err %v", skipped, err)
		}
		fastGot += len(evs)
	}
	if fastGot != 1000 {
		t.Errorf("fast subscriber got %d events, want 1000", fastGot)
	}
	evs, skipped, err := slow.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 10 || skipped != 990 {
		t.Errorf("slow subscriber: %d events, %d skipped; want 10 and 990", len(evs), skipped)
	}
	if got := liveIDs(t, evs); len(got) > 0 && got[0] != "u0-search-0" {
		t.Errorf("slow subscriber kept %v, want the oldest events", got)
	}
	// Once it reads again it receives new events, with no stale count.
	hub.Publish(events(1, "search", "late"))
	evs, skipped, err = slow.Next(t.Context())
	if err != nil || len(evs) != 1 || skipped != 0 {
		t.Errorf("slow subscriber after catching up: %v, skipped %d, err %v", liveIDs(t, evs), skipped, err)
	}
}

// TestDisconnect: Close unsubscribes, wakes a waiting reader, and later
// publishes skip it.
func TestDisconnect(t *testing.T) {
	hub := live.NewHub(10)
	sub := hub.Subscribe(cairn.LiveFilter{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := sub.Next(context.Background())
		errc <- err
	}()
	sub.Close()
	if err := <-errc; !errors.Is(err, live.ErrClosed) {
		t.Errorf("Next after Close: %v, want ErrClosed", err)
	}
	if n := hub.Subscribers(); n != 0 {
		t.Errorf("%d subscribers after Close, want 0", n)
	}
	hub.Publish(events(5, "search", "u"))
	sub.Close() // twice is fine

	// A reader whose context ends gets the context's error.
	sub2 := hub.Subscribe(cairn.LiveFilter{})
	defer sub2.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := sub2.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context: %v", err)
	}
}

// BenchmarkPublish10Subscribers: publishing 500-event batches to 10
// subscribers that read continuously, until each has received every
// event. Publishing waits (blocked, not spinning) while the slowest
// subscriber is more than 8 batches behind (less than its buffer), so
// nothing is dropped: skipped/op would report it.
func BenchmarkPublish10Subscribers(b *testing.B) {
	const subs, size, inFlight = 10, 500, 8
	hub := live.NewHub(live.DefaultBuffer)
	var seen [subs]atomic.Int64
	var skipped atomic.Int64
	progress := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for k := range subs {
		sub := hub.Subscribe(cairn.LiveFilter{})
		defer sub.Close()
		go func() {
			for {
				evs, n, err := sub.Next(ctx)
				if err != nil {
					return
				}
				seen[k].Add(int64(len(evs)) + n)
				skipped.Add(n)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	batch := events(size, "search", "u")
	wait := func(batches int) {
		for {
			slowest := seen[0].Load()
			for k := 1; k < subs; k++ {
				slowest = min(slowest, seen[k].Load())
			}
			if slowest >= int64(batches)*size {
				return
			}
			<-progress
		}
	}
	b.ResetTimer()
	for i := range b.N {
		hub.Publish(batch)
		wait(i + 1 - inFlight)
	}
	wait(b.N)
	b.ReportMetric(float64(skipped.Load())/float64(b.N), "skipped/op")
}

// TestHistory: rates per second and per minute, the latest events and the
// types of the day, as the console's overview reads them.
func TestHistory(t *testing.T) {
	hub := live.NewHub(10)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	hub.SetClock(func() time.Time { return now })
	hub.Publish(events(3, "search", "u1"))
	now = now.Add(2 * time.Second)
	hub.Publish(append(events(2, "page_view", "u2"), events(60, "search", "u3")...))
	hub.Reject(4)

	sec := hub.Rate(now, time.Second)
	if len(sec) != 3600 || sec[3599] != 62 || sec[3598] != 0 || sec[3597] != 3 {
		t.Errorf("per second: len %d, tail %v; want 3600 points ending 3,0,62", len(sec), sec[3595:])
	}
	if m := hub.Rate(now, time.Minute); len(m) != 1440 || m[1439] != 65 {
		t.Errorf("per minute: len %d, last %d; want 1440 points ending 65", len(m), m[len(m)-1])
	}
	if later := hub.Rate(now.Add(2*time.Hour), time.Second); later[3599] != 0 || later[0] != 0 {
		t.Errorf("an hour later the per-second series still shows old counts")
	}
	recent := hub.Recent(5)
	if len(recent) != 5 || recent[0].EventID != "u3-search-59" || recent[4].EventID != "u3-search-55" {
		t.Errorf("recent: %v, want the 5 newest, newest first", ids(recent))
	}
	if got := hub.TypesToday(now); got["search"] != 63 || got["page_view"] != 2 {
		t.Errorf("types today: %v", got)
	}
	if got := hub.TypesToday(now.Add(24 * time.Hour)); len(got) != 0 {
		t.Errorf("types tomorrow: %v, want none", got)
	}
	if hub.Rejected() != 4 {
		t.Errorf("rejected %d, want 4", hub.Rejected())
	}
}

// TestSourceRate: per-source counts in 10-second steps over ten minutes,
// events without a source counted nowhere, old steps forgotten.
func TestSourceRate(t *testing.T) {
	from := func(src string, n int) []cairn.Event {
		evs := events(n, "track", "u")
		for i := range evs {
			evs[i].SourceID = src
		}
		return evs
	}
	hub := live.NewHub(10)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	hub.SetClock(func() time.Time { return now })
	hub.Publish(append(from("src_a", 3), from("src_b", 2)...))
	now = now.Add(10 * time.Second)
	hub.Publish(append(append(from("src_a", 4), from("", 7)...), from("src_a", 1)...))

	tests := []struct {
		name   string
		at     time.Time
		source string
		last   []int64 // the newest points, oldest first
	}{
		{"two steps of a", now, "src_a", []int64{3, 5}},
		{"one step of b", now, "src_b", []int64{2, 0}},
		{"unknown source", now, "src_x", []int64{0, 0}},
		{"no source is not a source", now, "", []int64{0, 0}},
		{"ten minutes later", now.Add(10 * time.Minute), "src_a", []int64{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hub.SourceRate(tt.at, tt.source)
			if len(got) != cairn.SourceRatePoints {
				t.Fatalf("len %d, want %d", len(got), cairn.SourceRatePoints)
			}
			var sum int64
			for _, c := range got {
				sum += c
			}
			var want int64
			for _, c := range tt.last {
				want += c
			}
			if tail := got[len(got)-len(tt.last):]; fmt.Sprint(tail) != fmt.Sprint(tt.last) || sum != want {
				t.Errorf("tail %v (sum %d), want %v (sum %d)", tail, sum, tt.last, want)
			}
		})
	}
}

// TestEncodingOutgrowsEstimate: events whose JSON is much longer than
// the buffer estimate (ids full of characters that need escaping) move the
// batch's encoding to a larger array midway; every event delivered still
// carries its own encoding.
func TestEncodingOutgrowsEstimate(t *testing.T) {
	hub := live.NewHub(100)
	sub := hub.Subscribe(cairn.LiveFilter{})
	defer sub.Close()
	batch := events(20, "search", "u")
	for i := range batch {
		batch[i].UserID = strings.Repeat("\"\x01", 100) + strconv.Itoa(i)
	}
	hub.Publish(batch)
	var got []string
	for len(got) < len(batch) {
		evs, _, err := sub.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, liveIDs(t, evs)...)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids(batch)) {
		t.Errorf("got %v, want %v", got, ids(batch))
	}
}

// TestConcurrentPublish: batches published from several goroutines at
// once (as concurrent requests do) all reach a subscriber or are counted as
// skipped (when the fan-out queue overflows: 1,200 batches may outrun its
// 1,024), each publisher's batches in order, while the fan-out goroutine
// stops whenever the queue runs dry and is started again by the next
// Publish.
func TestConcurrentPublish(t *testing.T) {
	const publishers, batches, size = 4, 300, 5
	hub := live.NewHub(publishers * batches * size)
	sub := hub.Subscribe(cairn.LiveFilter{})
	defer sub.Close()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				hub.Publish(events(size, "search", fmt.Sprintf("p%d-b%d", p, b)))
				if b%50 == 0 {
					runtime.Gosched() // let the queue run dry now and then
				}
			}
		}()
	}
	last := map[int]int{} // per publisher: the last batch seen
	var n, skipped int64
	for n+skipped < publishers*batches*size {
		evs, k, err := sub.Next(t.Context())
		if err != nil {
			t.Fatalf("after %d events and %d skipped: %v", n, skipped, err)
		}
		skipped += k
		for _, id := range liveIDs(t, evs) {
			var p, b, i int
			if _, err := fmt.Sscanf(id, "p%d-b%d-search-%d", &p, &b, &i); err != nil {
				t.Fatalf("event id %q: %v", id, err)
			}
			if prev, ok := last[p]; ok && b < prev {
				t.Fatalf("publisher %d: batch %d after batch %d", p, b, prev)
			}
			last[p] = b
			n++
		}
	}
	wg.Wait()
	if n+skipped != publishers*batches*size || skipped%size != 0 {
		t.Errorf("%d delivered + %d skipped, want %d in whole batches", n, skipped, publishers*batches*size)
	}
	t.Logf("%d delivered, %d skipped", n, skipped)
}
