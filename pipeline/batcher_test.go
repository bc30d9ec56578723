package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/pipeline"
)

// seq is memSource's position: the number of records delivered.
type seq int

func (s seq) String() string { return strconv.Itoa(int(s)) }

// memSource is an in-memory Source, like a stream consumer: records are
// pushed in, and Commit records how far the batcher has acknowledged.
type memSource struct {
	mu        sync.Mutex
	recs      [][]byte
	next      int
	committed seq
	syncsAt   []int64 // the store's sync count at each Commit
	store     *deferredStore
	ready     chan struct{}
	closed    bool
}

func (m *memSource) push(rec []byte) {
	m.mu.Lock()
	m.recs = append(m.recs, rec)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

func (m *memSource) Next() ([]byte, pipeline.Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.next == len(m.recs) {
		return nil, nil, io.EOF
	}
	m.next++
	return m.recs[m.next-1], seq(m.next), nil
}

func (m *memSource) Ready() <-chan struct{} { return m.ready }

func (m *memSource) Commit(_ context.Context, pos pipeline.Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := pos.(seq)
	if !ok {
		return fmt.Errorf("foreign position %v", pos)
	}
	if s < m.committed {
		return fmt.Errorf("commit went back from %d to %d", m.committed, s)
	}
	m.committed = s
	m.syncsAt = append(m.syncsAt, m.store.syncs.Load())
	return nil
}

func (m *memSource) Releases(pipeline.Position) bool { return false }

func (m *memSource) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// TestBatcherOverSource: a batcher over a non-spool source writes every
// record to the store, retries through an outage, commits only after the
// deferred-sync store has synced, and closes the source on Close.
func TestBatcherOverSource(t *testing.T) {
	ps, err := pebble.Open(filepath.Join(t.TempDir(), "store"), pebble.Options{DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, ps)
	ds := &deferredStore{flakyStore: &flakyStore{EventStore: ps}, inner: ps}
	ds.failures.Store(2)
	src := &memSource{ready: make(chan struct{}, 1), store: ds}
	var recs [][]byte
	for i := range 30 {
		recs = append(recs, cairn.AppendBatch(nil, events(fmt.Sprintf("b%d", i), 1+i%3)))
	}
	want := 0
	for i := range recs {
		want += 1 + i%3
	}
	b := pipeline.NewBatcher(src, ds, pipeline.Options{FlushSize: 7, FlushInterval: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	b.Start()
	for _, r := range recs {
		src.push(r)
	}
	waitFor(t, "all stored", func() bool { return b.Stats().Stored == int64(want) })
	waitFor(t, "all committed", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.committed == seq(len(recs))
	})
	if n, err := b.Close(context.Background()); err != nil || n != 0 {
		t.Fatalf("Close = %d, %v", n, err)
	}
	st := b.Stats()
	if st.Backlog != 0 || st.FlushFailures != 2 || st.Accepted != 0 {
		t.Fatalf("stats: backlog %d, flush failures %d, accepted %d", st.Backlog, st.FlushFailures, st.Accepted)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for i, s := range src.syncsAt {
		if s == 0 {
			t.Fatalf("commit %d came before any store sync", i)
		}
	}
	if !src.closed {
		t.Fatal("source not closed")
	}
	if n, _ := ps.CountEvents(context.Background()); n != int64(want) {
		t.Fatalf("store has %d events, want %d", n, want)
	}
}
