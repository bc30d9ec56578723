package pebble_test

import (
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunEventStore(t, func(t *testing.T) cairn.EventStore {
		s, err := pebble.Open(t.TempDir(), pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// userCacheSizes are the user cache budgets the identity and erasure
// suites run with: the default, one so small that entries are evicted all
// the time, and none (every record read from the store).
var userCacheSizes = []struct {
	name string
	size int
}{{"DefaultCache", 0}, {"TinyCache", 300}, {"NoCache", -1}}

// openWithUserCache opens a store in a temporary directory with a user
// cache of size bytes (Options.UserCacheSize).
func openWithUserCache(t *testing.T, size int) *pebble.Store {
	s, err := pebble.Open(t.TempDir(), pebble.Options{UserCacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTrackedUsersConformance(t *testing.T) {
	for _, c := range userCacheSizes {
		t.Run(c.name, func(t *testing.T) {
			storetest.RunTrackedUsers(t, func(t *testing.T) storetest.IdentityStore { return openWithUserCache(t, c.size) })
		})
	}
}

func TestReopenKeepsEventsAndCount(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := storetest.NewEvent("r-1", "u", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if _, err := s.InsertEvents(t.Context(), []cairn.Event{base, storetest.NewEvent("r-2", "u", base.OccurredAt)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	if n, err := s.CountEvents(t.Context()); err != nil || n != 2 {
		t.Fatalf("count after reopen = %d, %v; want 2", n, err)
	}
	res, err := s.InsertEvents(t.Context(), []cairn.Event{base})
	if err != nil || res.Duplicates != 1 {
		t.Fatalf("re-insert after reopen: %+v, %v; want a duplicate", res, err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	if err := s.Ping(t.Context()); cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
		t.Fatalf("Ping after Close = %v, want EUNAVAILABLE", err)
	}
}

// closeStore closes s and fails the test if closing fails.
func closeStore(tb testing.TB, s *pebble.Store) {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Errorf("close store: %v", err)
	}
}

// TestReopenKeepsIdentity: links and tracked users are written with the
// events, so they survive a reopen (DeferSync, then Sync, as Cairn runs).
func TestReopenKeepsIdentity(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	link := storetest.NewEvent("i-1", "user", at)
	link.Type, link.AnonymousID = cairn.IdentifyType, "anon"
	if _, err := s.InsertEvents(t.Context(), []cairn.Event{link, storetest.NewEvent("i-2", "anon", at.Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	page, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: "user", Limit: 10})
	if err != nil || len(page.Events) != 2 || len(page.MergedIDs) != 1 || page.Events[0].AnonymousID != "anon" {
		t.Fatalf("journey after reopen: %+v, %v", page, err)
	}
	u, err := s.TrackedUser(t.Context(), "user")
	if err != nil || u.EventCount != 1 || len(u.AnonymousIDs) != 1 {
		t.Fatalf("tracked user after reopen: %+v, %v", u, err)
	}
}

func TestEraseConformance(t *testing.T) {
	for _, c := range userCacheSizes {
		t.Run(c.name, func(t *testing.T) {
			storetest.RunErase(t, func(t *testing.T) storetest.EraseStore { return openWithUserCache(t, c.size) })
		})
	}
}
