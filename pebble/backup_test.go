package pebble_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/storetest"
)

// TestCheckpoint checks that a checkpoint of a store with deferred syncs
// holds every event inserted before it, and not those inserted after.
func TestCheckpoint(t *testing.T) {
	s, err := pebble.Open(t.TempDir(), pebble.Options{DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var events []cairn.Event
	for i := range 50 {
		events = append(events, storetest.NewEvent(fmt.Sprintf("c-%d", i), "u", at.Add(time.Duration(i)*time.Second)))
	}
	if _, err := s.InsertEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	if err := s.Checkpoint(t.Context(), dir); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if _, err := s.InsertEvents(t.Context(), []cairn.Event{storetest.NewEvent("after", "u", at)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(t.Context(), dir); err == nil {
		t.Error("a checkpoint into an existing directory succeeded")
	}

	c, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatalf("open the checkpoint: %v", err)
	}
	t.Cleanup(func() { closeStore(t, c) })
	if n, err := c.CountEvents(t.Context()); err != nil || n != 50 {
		t.Errorf("the checkpoint counts %d events (%v), want 50", n, err)
	}
	var ids []string
	if err := c.ExportEvents(t.Context(), "u", func(e *cairn.Event) error { ids = append(ids, e.EventID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 50 || ids[0] != "c-49" {
		t.Errorf("the checkpoint exports %d events starting %v, want 50 from c-49", len(ids), ids[:min(1, len(ids))])
	}
}

func TestCheckpointClosedStore(t *testing.T) {
	s, err := pebble.Open(t.TempDir(), pebble.Options{DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	if err := s.Checkpoint(t.Context(), filepath.Join(t.TempDir(), "copy")); cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
		t.Errorf("Checkpoint after Close = %v, want EUNAVAILABLE", err)
	}
}
