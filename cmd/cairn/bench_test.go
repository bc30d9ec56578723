package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// TestBenchOpeners: the benchmark's openers build what serve builds. A
// backlog written through OpenIngester is replayed into the store by a
// Main started on the same data directory, and OpenStore gives a store that
// accepts and syncs writes.
func TestBenchOpeners(t *testing.T) {
	openStore, openIngester, err := benchOpeners()
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	evs := make([]cairn.Event, 10)
	for i := range evs {
		evs[i] = cairn.Event{EventID: fmt.Sprintf("b-%d", i), UserID: "bench-user", SessionID: "s", Type: "page_view",
			Payload: []byte(`{}`), OccurredAt: now.Add(time.Duration(i) * time.Millisecond), ReceivedAt: now}
	}
	if res, err := st.InsertEvents(t.Context(), evs); err != nil || res.Inserted != len(evs) {
		t.Fatalf("InsertEvents = %+v, %v", res, err)
	}
	ds, ok := st.(cairn.DeferredSyncer)
	if !ok {
		t.Fatalf("%T is not synced as serve's store is", st)
	}
	if err := ds.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	dataDir := t.TempDir()
	ing, closeSpool, err := openIngester(dataDir, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := ing.Ingest(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if b := ing.Stats().Backlog; b != int64(len(evs)) {
		t.Errorf("backlog %d, want %d", b, len(evs))
	}
	if err := closeSpool(); err != nil {
		t.Fatal(err)
	}
	p := startMain(t, dataDir, "CAIRN_FLUSH_INTERVAL=20ms")
	p.waitDrained()
	p.login()
	if got := p.journeyIDs("bench-user", 100); len(got) != len(evs) {
		t.Fatalf("replayed journey has %d events, want %d: %v", len(got), len(evs), got)
	}
}
