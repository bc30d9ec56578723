package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/pipeline"
	"github.com/cairn-dev/cairn/wal"
)

// flakyStore wraps a real store and fails or rejects on demand (a test double
// around the real embedded store).
type flakyStore struct {
	cairn.EventStore
	failures atomic.Int64 // fail this many more calls
	reject   string       // reject events whose id has this prefix
	calls    atomic.Int64
	sizes    chan int
}

func (f *flakyStore) InsertEvents(ctx context.Context, evs []cairn.Event) (cairn.InsertResult, error) {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return cairn.InsertResult{}, cairn.Errorf(cairn.EUNAVAILABLE, "injected outage")
	}
	var keep []cairn.Event
	var rejected []cairn.RejectedEvent
	for _, e := range evs {
		if f.reject != "" && strings.HasPrefix(e.EventID, f.reject) {
			rejected = append(rejected, cairn.RejectedEvent{Event: e, Reason: "injected rejection"})
		} else {
			keep = append(keep, e)
		}
	}
	res, err := f.EventStore.InsertEvents(ctx, keep)
	res.Rejected = rejected
	if f.sizes != nil && err == nil {
		select {
		case f.sizes <- len(evs):
		default:
		}
	}
	return res, err
}

type env struct {
	dir   string
	wal   *wal.WAL
	store *flakyStore
	pipe  *pipeline.Pipeline
}

func setup(t *testing.T, dir string, opts pipeline.Options) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ps, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wal.Open(filepath.Join(dir, "spool"), wal.Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{EventStore: ps}
	opts.DeadLetterPath = filepath.Join(dir, "deadletter.jsonl")
	if opts.MinBackoff == 0 {
		opts.MinBackoff = time.Millisecond
		opts.MaxBackoff = 10 * time.Millisecond
	}
	p, err := pipeline.New(w, fs, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, wal: w, store: fs, pipe: p}
	t.Cleanup(func() { e.close(t) })
	return e
}

// close stops the pipeline and closes the spool and the store (each
// Close is idempotent, so a test may have closed them already).
func (e *env) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.pipe.Close(ctx); err != nil {
		t.Errorf("close pipeline: %v", err)
	}
	if err := e.wal.Close(); err != nil {
		t.Errorf("close spool: %v", err)
	}
	if err := e.store.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
}

// mustClose closes c, failing the test (without stopping it) on error.
func mustClose(t *testing.T, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func events(prefix string, n int) []cairn.Event {
	now := time.Now().UTC().Truncate(time.Millisecond)
	out := make([]cairn.Event, n)
	for i := range out {
		out[i] = cairn.Event{EventID: fmt.Sprintf("%s-%d", prefix, i), UserID: "u", SessionID: "s", Type: "page_view",
			Payload: json.RawMessage(`{}`), OccurredAt: now, ReceivedAt: now}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSizeTrigger(t *testing.T) {
	e := setup(t, "", pipeline.Options{FlushSize: 10, FlushInterval: time.Hour})
	e.store.sizes = make(chan int, 10)
	e.pipe.Start()
	if err := e.pipe.Ingest(context.Background(), events("a", 9)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-e.store.sizes:
		t.Fatalf("flushed %d events below the size trigger", n)
	case <-time.After(100 * time.Millisecond):
	}
	if err := e.pipe.Ingest(context.Background(), events("b", 1)); err != nil {
		t.Fatal(err)
	}
	if n := <-e.store.sizes; n != 10 {
		t.Fatalf("flushed %d, want 10", n)
	}
	waitFor(t, "backlog 0", func() bool { return e.pipe.Stats().Backlog == 0 })
}

// TestTimeTriggerUnderSteadyTraffic: the seed restarts its timer on every
// event, so steady traffic postpones the flush forever. Cairn's interval
// counts from the oldest waiting event.
func TestTimeTriggerUnderSteadyTraffic(t *testing.T) {
	e := setup(t, "", pipeline.Options{FlushSize: 100000, FlushInterval: 100 * time.Millisecond})
	e.pipe.Start()
	stop := time.Now().Add(time.Second)
	for i := 0; time.Now().Before(stop); i++ {
		if err := e.pipe.Ingest(context.Background(), events(fmt.Sprintf("s%d", i), 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Traffic never paused for a whole interval, yet flushes happened.
	if f := e.pipe.Stats().Flushes; f < 3 {
		t.Fatalf("%d flushes during 1s of steady traffic with a 100ms interval; want several", f)
	}
}

func TestRetriesUntilStoreRecovers(t *testing.T) {
	e := setup(t, "", pipeline.Options{FlushSize: 5, FlushInterval: 10 * time.Millisecond})
	e.store.failures.Store(5)
	e.pipe.Start()
	if err := e.pipe.Ingest(context.Background(), events("r", 12)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drain after outage", func() bool { return e.pipe.Stats().Backlog == 0 })
	st := e.pipe.Stats()
	if st.FlushFailures != 5 || st.Stored != 12 || st.Accepted != 12 {
		t.Fatalf("stats = %+v; want 5 failures, 12 stored", st)
	}
	if n, _ := e.store.CountEvents(context.Background()); n != 12 {
		t.Fatalf("store has %d events, want 12", n)
	}
}

func TestBacklogLimit(t *testing.T) {
	e := setup(t, "", pipeline.Options{FlushSize: 1000, FlushInterval: time.Hour, MaxBacklog: 10})
	e.pipe.Start()
	if err := e.pipe.Ingest(context.Background(), events("x", 8)); err != nil {
		t.Fatal(err)
	}
	err := e.pipe.Ingest(context.Background(), events("y", 3))
	if cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
		t.Fatalf("over the limit: %v, want EUNAVAILABLE", err)
	}
	if st := e.pipe.Stats(); st.Backlog != 8 || st.Accepted != 8 {
		t.Fatalf("a refused request was partly accepted: %+v", st)
	}
	// Admit (asked before a body is read) still admits: 2 more fit.
	if err := e.pipe.Admit(); err != nil {
		t.Fatalf("Admit with 8 of 10 waiting: %v", err)
	}
	if err := e.pipe.Ingest(context.Background(), events("z", 2)); err != nil {
		t.Fatal(err)
	}
	err = e.pipe.Admit()
	if cairn.ErrorCode(err) != cairn.EUNAVAILABLE || !errors.Is(err, cairn.ErrBacklogFull) {
		t.Fatalf("Admit with the backlog full: %v, want EUNAVAILABLE wrapping ErrBacklogFull", err)
	}
}

func TestDeadLetter(t *testing.T) {
	e := setup(t, "", pipeline.Options{FlushSize: 1, FlushInterval: time.Millisecond})
	e.store.reject = "bad"
	e.pipe.Start()
	evs := append(events("good", 2), events("bad", 1)...)
	if err := e.pipe.Ingest(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drain", func() bool { return e.pipe.Stats().Backlog == 0 })
	if st := e.pipe.Stats(); st.DeadLettered != 1 || st.Stored != 2 {
		t.Fatalf("stats %+v", st)
	}
	b, err := os.ReadFile(filepath.Join(e.dir, "deadletter.jsonl"))
	if err != nil || !strings.Contains(string(b), `"reason":"injected rejection"`) || !strings.Contains(string(b), `"eventId":"bad-0"`) {
		t.Fatalf("dead-letter file: %q %v", b, err)
	}
}

func TestReplayAfterRestartAndDrainOnClose(t *testing.T) {
	dir := t.TempDir()
	e := setup(t, dir, pipeline.Options{FlushSize: 1000, FlushInterval: time.Hour})
	e.store.failures.Store(1 << 30) // store down: nothing reaches it
	e.pipe.Start()
	for i := range 5 {
		if err := e.pipe.Ingest(context.Background(), events(fmt.Sprintf("p%d", i), 20)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if _, err := e.pipe.Close(ctx); err == nil {
		t.Fatal("drain against a dead store reported success")
	}
	cancel()
	if err := e.wal.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with a healthy store: the backlog is known before Start, and
	// Close drains it.
	e2 := setup(t, dir, pipeline.Options{FlushSize: 1000, FlushInterval: time.Hour})
	if b := e2.pipe.Stats().Backlog; b != 100 {
		t.Fatalf("backlog after restart = %d, want 100", b)
	}
	e2.pipe.Start()
	n, err := e2.pipe.Close(context.Background())
	if err != nil || n != 100 {
		t.Fatalf("drain flushed %d, %v; want 100", n, err)
	}
	if c, _ := e2.store.CountEvents(context.Background()); c != 100 {
		t.Fatalf("store has %d, want 100", c)
	}
}

func TestConcurrentIngest(t *testing.T) {
	e := setup(t, "", pipeline.Options{FlushSize: 50, FlushInterval: 5 * time.Millisecond})
	e.pipe.Start()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if err := e.pipe.Ingest(context.Background(), events(fmt.Sprintf("c%d-%d", g, i), 7)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "drain", func() bool { return e.pipe.Stats().Backlog == 0 })
	if c, _ := e.store.CountEvents(context.Background()); c != 16*20*7 {
		t.Fatalf("store has %d, want %d", c, 16*20*7)
	}
	if _, segs := e.wal.Size(); segs > 2 {
		t.Fatalf("spool not trimmed: %d segments", segs)
	}
}

func TestAssignsUUIDv7(t *testing.T) {
	e := setup(t, "", pipeline.Options{})
	evs := events("x", 2)
	evs[0].EventID = ""
	if err := e.pipe.Ingest(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if id := evs[0].EventID; len(id) != 36 || id[14] != '7' {
		t.Fatalf("generated id %q is not a UUIDv7", id)
	}
	if evs[1].EventID != "x-1" {
		t.Fatalf("client id replaced: %q", evs[1].EventID)
	}
}

// deferredStore exposes the embedded store's deferred sync through the
// flaky wrapper and counts Sync calls.
type deferredStore struct {
	*flakyStore
	inner *pebble.Store
	syncs atomic.Int64
}

func (d *deferredStore) Sync(ctx context.Context) error {
	d.syncs.Add(1)
	return d.inner.Sync(ctx)
}

// TestDeferredSyncCheckpoints: with a store that syncs lazily, the checkpoint
// moves only after a Sync, and a restart replays nothing that was synced.
func TestDeferredSyncCheckpoints(t *testing.T) {
	dir := t.TempDir()
	ps, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wal.Open(filepath.Join(dir, "spool"), wal.Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	ds := &deferredStore{flakyStore: &flakyStore{EventStore: ps}, inner: ps}
	p, err := pipeline.New(w, ds, pipeline.Options{FlushSize: 10, FlushInterval: time.Millisecond, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	for i := range 20 {
		if err := p.Ingest(context.Background(), events(fmt.Sprintf("d%d", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "drain", func() bool { return p.Stats().Backlog == 0 })
	waitFor(t, "idle sync", func() bool { return ds.syncs.Load() > 0 })
	if _, err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(filepath.Join(dir, "spool", "checkpoint"))
	if err != nil {
		t.Fatalf("no checkpoint: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ps.Close(); err != nil {
		t.Fatal(err)
	}

	ps, _ = pebble.Open(filepath.Join(dir, "store"), pebble.Options{DeferSync: true})
	defer mustClose(t, ps)
	w, _ = wal.Open(filepath.Join(dir, "spool"), wal.Options{SegmentSize: 4096})
	defer mustClose(t, w)
	p2, err := pipeline.New(w, ps, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b := p2.Stats().Backlog; b != 0 {
		t.Fatalf("after a clean close the spool still holds %d events (checkpoint %s)", b, cp)
	}
	if n, _ := ps.CountEvents(context.Background()); n != 200 {
		t.Fatalf("store has %d events, want 200", n)
	}
}

// TestIngestErrorsSayWhy: Ingest's error names its cause, so callers need
// not read Stats to find out.
func TestIngestErrorsSayWhy(t *testing.T) {
	t.Run("BacklogFull", func(t *testing.T) {
		e := setup(t, "", pipeline.Options{FlushSize: 1000, FlushInterval: time.Hour, MaxBacklog: 1})
		err := e.pipe.Ingest(context.Background(), events("f", 2))
		if !errors.Is(err, cairn.ErrBacklogFull) || cairn.RejectReason(err) != cairn.RejectBacklogFull || cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
			t.Fatalf("Ingest = %v, want EUNAVAILABLE wrapping ErrBacklogFull", err)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		e := setup(t, "", pipeline.Options{})
		if err := e.wal.Close(); err != nil {
			t.Fatal(err)
		}
		err := e.pipe.Ingest(context.Background(), events("c", 1))
		if !errors.Is(err, cairn.ErrIngestClosed) || cairn.RejectReason(err) != cairn.RejectClosed || cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
			t.Fatalf("Ingest = %v, want EUNAVAILABLE wrapping ErrIngestClosed", err)
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		e := setup(t, "", pipeline.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := e.pipe.Ingest(ctx, events("x", 1))
		if err != nil && cairn.RejectReason(err) != cairn.RejectCanceled {
			t.Fatalf("Ingest = %v, want nil or context.Canceled", err)
		}
	})
}

// TestBadCheckpointReplaysSpool (issue 15, defect 1): a checkpoint that
// points past the end of the spool (drained segments deleted, a corrupted
// digit) must not hide the backlog: the spool is replayed from its oldest
// record and every event reaches the store.
func TestBadCheckpointReplaysSpool(t *testing.T) {
	cases := []struct {
		name       string
		checkpoint func(end wal.Position) string
	}{
		{"PastEndSegment", func(end wal.Position) string { return fmt.Sprintf("%d:%d\n", end.Segment+5, 8) }},
		{"PastEndOffset", func(end wal.Position) string { return fmt.Sprintf("%d:%d\n", end.Segment, end.Offset+1000) }},
		{"CorruptedDigit", func(end wal.Position) string { return fmt.Sprintf("%d:%d\n", end.Segment, end.Offset*10+7) }},
		{"NotARecordBoundary", func(end wal.Position) string { return "1:13\n" }},
		{"Malformed", func(end wal.Position) string { return "1:x\n" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := setup(t, dir, pipeline.Options{FlushSize: 1000, FlushInterval: time.Hour})
			e.store.failures.Store(1 << 30) // store down: the events stay in the spool
			e.pipe.Start()
			for i := range 3 {
				if err := e.pipe.Ingest(context.Background(), events(fmt.Sprintf("k%d", i), 10)); err != nil {
					t.Fatal(err)
				}
			}
			end := e.wal.Synced()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_, _ = e.pipe.Close(ctx) // the store is down: the drain cannot finish before ctx ends
			cancel()
			if err := e.wal.Close(); err != nil {
				t.Fatal(err)
			}
			if err := e.store.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "spool", "checkpoint"), []byte(tc.checkpoint(end)), 0o644); err != nil {
				t.Fatal(err)
			}
			e2 := setup(t, dir, pipeline.Options{FlushSize: 1000, FlushInterval: time.Hour})
			if b := e2.pipe.Stats().Backlog; b != 30 {
				t.Fatalf("backlog after restart with checkpoint %q = %d, want 30", tc.checkpoint(end), b)
			}
			e2.pipe.Start()
			if n, err := e2.pipe.Close(context.Background()); err != nil || n != 30 {
				t.Fatalf("drain flushed %d, %v; want 30", n, err)
			}
			if c, _ := e2.store.CountEvents(context.Background()); c != 30 {
				t.Fatalf("store has %d events, want 30", c)
			}
		})
	}
}

// TestCorruptRecordCounted (issue 15, defect 2): a damaged record in an older
// spool segment costs only its own events; the loss is counted in Stats.
func TestCorruptRecordCounted(t *testing.T) {
	dir := t.TempDir()
	e := setup(t, dir, pipeline.Options{FlushSize: 1000, FlushInterval: time.Hour})
	e.store.failures.Store(1 << 30) // store down: the events stay in the spool
	e.pipe.Start()
	for i := range 40 {
		if err := e.pipe.Ingest(context.Background(), events(fmt.Sprintf("q%d", i), 5)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, _ = e.pipe.Close(ctx) // the store is down: the drain cannot finish before ctx ends
	cancel()
	if err := e.wal.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "spool", "*.seg"))
	if len(segs) < 2 {
		t.Fatalf("want several segments, have %d", len(segs))
	}
	// Flip a byte inside the first record of the oldest segment.
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[8+8+20] ^= 0x01
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}

	e2 := setup(t, dir, pipeline.Options{FlushSize: 1000, FlushInterval: time.Hour})
	e2.pipe.Start()
	if _, err := e2.pipe.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, _ := e2.store.CountEvents(context.Background()); c != 195 {
		t.Fatalf("store has %d events, want 195 (one 5-event record lost)", c)
	}
	if n := e2.pipe.Stats().SpoolCorruptRecords; n != 1 {
		t.Fatalf("SpoolCorruptRecords = %d, want 1", n)
	}
}

// blockingSyncer is a deferred-sync store whose Sync waits for its context.
type blockingSyncer struct{ *flakyStore }

func (blockingSyncer) Sync(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestCloseHonoursDeadline: Close returns soon after its context ends even
// when the store's sync hangs (the commit uses the caller's deadline, not a
// fresh timeout), and nothing is committed past what the store made durable.
func TestCloseHonoursDeadline(t *testing.T) {
	dir := t.TempDir()
	ps, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, ps)
	w, err := wal.Open(filepath.Join(dir, "spool"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, w)
	p, err := pipeline.New(w, blockingSyncer{&flakyStore{EventStore: ps}}, pipeline.Options{FlushSize: 10, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	if err := p.Ingest(context.Background(), events("h", 10)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.Close(ctx); err == nil {
		t.Fatal("Close with a hanging store sync reported success")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v past a 100ms deadline", d)
	}
	if c := w.Committed(); c.Offset > 8 {
		t.Fatalf("committed %s although the store never synced", c)
	}
}

// TestMaxFlushSize: a backlog already waiting goes to the store in writes
// of MaxFlushSize events (the last one takes the rest), not FlushSize.
func TestMaxFlushSize(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	e := setup(t, "", pipeline.Options{FlushSize: 100, MaxFlushSize: 1000, FlushInterval: 20 * time.Millisecond,
		OnFlush: func(n int, _ time.Duration, err error) {
			if err == nil {
				mu.Lock()
				sizes = append(sizes, n)
				mu.Unlock()
			}
		}})
	for i := range 25 {
		if err := e.pipe.Ingest(context.Background(), events(fmt.Sprintf("m%d-", i), 100)); err != nil {
			t.Fatal(err)
		}
	}
	e.pipe.Start()
	waitFor(t, "drain", func() bool { return e.pipe.Stats().Backlog == 0 })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sizes, []int{1000, 1000, 500}) {
		t.Errorf("store writes of %v events, want [1000 1000 500]", sizes)
	}
	if n, _ := e.store.CountEvents(context.Background()); n != 2500 {
		t.Errorf("store has %d events, want 2500", n)
	}
}
