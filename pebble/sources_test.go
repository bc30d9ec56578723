package pebble_test

import (
	"testing"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/storetest"
)

func TestSourceStore(t *testing.T) {
	storetest.RunSourceStore(t, func(t *testing.T) cairn.SourceStore {
		s, err := pebble.Open(t.TempDir(), pebble.Options{CacheSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return s
	})
}

// TestSourcesSurviveReopen checks that sources are on disk and are not
// counted or exported as events.
func TestSourcesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	src := &cairn.Source{Name: "web", Enabled: true}
	if err := s.CreateSource(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebble.Open(dir, pebble.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	got, err := s.SourceByWriteKey(t.Context(), src.WriteKey)
	if err != nil || got.ID != src.ID || !got.Enabled {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if n, err := s.CountEvents(t.Context()); err != nil || n != 0 {
		t.Fatalf("source keys counted as events: %d, %v", n, err)
	}
	exported := 0
	if err := s.ExportEvents(t.Context(), "", func(*cairn.Event) error { exported++; return nil }); err != nil || exported != 0 {
		t.Fatalf("export saw %d events, %v; want none", exported, err)
	}
}
