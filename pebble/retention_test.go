package pebble_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
)

// TestPurgeExpired: events received before the cutoff go (with their dedup
// keys: a re-delivery is stored again), later ones stay, in batches smaller
// than a user's range and than the store, and the count follows.
func TestPurgeExpired(t *testing.T) {
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cutoff := old.Add(time.Hour)
	recent := cutoff.Add(time.Hour)
	ev := func(id, user string, rec time.Time, i int) cairn.Event {
		return cairn.Event{EventID: id, UserID: user, Type: "t", Payload: json.RawMessage(`{}`),
			OccurredAt: old.Add(time.Duration(i) * time.Second), ReceivedAt: rec}
	}
	tests := []struct {
		name  string
		batch int
	}{{"one key per batch", 1}, {"three keys per batch", 3}, {"whole store in one batch", 1000}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pebble.Open(t.TempDir(), pebble.Options{PurgeBatch: tt.batch, PurgePause: time.Microsecond})
			if err != nil {
				t.Fatal(err)
			}
			defer closeStore(t, s)
			var events []cairn.Event
			for i := range 5 {
				events = append(events, ev(fmt.Sprintf("gone-%d", i), "all-old", old, i)) // DeleteRange when in one batch
				events = append(events, ev(fmt.Sprintf("mixed-old-%d", i), "mixed", old, 2*i))
				events = append(events, ev(fmt.Sprintf("mixed-new-%d", i), "mixed", recent, 2*i+1))
				events = append(events, ev(fmt.Sprintf("kept-%d", i), "all-new", recent, i))
			}
			if _, err := s.InsertEvents(t.Context(), events); err != nil {
				t.Fatal(err)
			}
			n, err := s.PurgeExpired(t.Context(), cutoff)
			if err != nil || n != 10 {
				t.Fatalf("PurgeExpired = %d, %v; want 10", n, err)
			}
			if c, err := s.CountEvents(t.Context()); err != nil || c != 10 {
				t.Fatalf("CountEvents = %d, %v; want 10", c, err)
			}
			for user, want := range map[string]int{"all-old": 0, "mixed": 5, "all-new": 5} {
				p, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: user, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Events) != want {
					t.Errorf("%s: %d events, want %d", user, len(p.Events), want)
				}
				for _, e := range p.Events {
					if e.ReceivedAt.Before(cutoff) {
						t.Errorf("%s: expired event %s kept", user, e.EventID)
					}
				}
			}
			// A second pass finds nothing; a re-delivered expired event is new again.
			if n, err := s.PurgeExpired(t.Context(), cutoff); err != nil || n != 0 {
				t.Fatalf("second pass = %d, %v", n, err)
			}
			res, err := s.InsertEvents(t.Context(), []cairn.Event{ev("gone-0", "all-old", old, 0), ev("kept-0", "all-new", recent, 0)})
			if err != nil || res.Inserted != 1 || res.Duplicates != 1 {
				t.Fatalf("re-delivery: %+v, %v", res, err)
			}
		})
	}
}

// TestRetentionLoop: with Options.Retention the store deletes expired
// events by itself.
func TestRetentionLoop(t *testing.T) {
	s, err := pebble.Open(t.TempDir(), pebble.Options{Retention: time.Hour, PurgeInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	now := time.Now()
	if _, err := s.InsertEvents(t.Context(), []cairn.Event{
		{EventID: "old", UserID: "u", Type: "t", Payload: json.RawMessage(`{}`), OccurredAt: now, ReceivedAt: now.Add(-2 * time.Hour)},
		{EventID: "new", UserID: "u", Type: "t", Payload: json.RawMessage(`{}`), OccurredAt: now, ReceivedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := s.CountEvents(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("count still %d", c)
		}
		time.Sleep(5 * time.Millisecond) //nolint:forbidigo // polling for the condition, not a fixed wait
	}
	p, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: "u", Limit: 10})
	if err != nil || len(p.Events) != 1 || p.Events[0].EventID != "new" {
		t.Fatalf("journey %+v, %v", p, err)
	}
}
