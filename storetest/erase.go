package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// EraseStore is an event store that records identity links and can erase
// a tracked user's data.
type EraseStore interface {
	IdentityStore
	cairn.Eraser
}

// RunErase runs the conformance suite for cairn.Eraser. open must return a
// fresh, empty store; the suite closes it.
func RunErase(t *testing.T, open func(t *testing.T) EraseStore) {
	newStore := func(t *testing.T) EraseStore {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { closeStore(t, s) })
		return s
	}
	t.Run("EraseUserAndMergedIDs", func(t *testing.T) { testEraseUser(t, newStore(t)) })
	t.Run("ErasedEventsNotResurrected", func(t *testing.T) { testEraseNoResurrect(t, newStore(t)) })
	t.Run("EraseUnknownUser", func(t *testing.T) { testEraseUnknown(t, newStore(t)) })
	t.Run("ErrEraseEmptyUser", func(t *testing.T) { testEraseEmpty(t, newStore(t)) })
}

// eraseAt is the erasure time of the suite: after NewEvent's ReceivedAt.
var eraseAt = base.Add(2 * time.Hour)

func mustErase(t *testing.T, s cairn.Eraser, user string) cairn.EraseResult {
	t.Helper()
	res, err := s.EraseUser(context.Background(), user, eraseAt)
	if err != nil {
		t.Fatalf("EraseUser(%q): %v", user, err)
	}
	return res
}

func mustCount(t *testing.T, s cairn.EventStore) int64 {
	t.Helper()
	n, err := s.CountEvents(context.Background())
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	return n
}

func testEraseUser(t *testing.T, s EraseStore) {
	ctx := context.Background()
	mustInsert(t, s, []cairn.Event{
		NewEvent("u1", "alice", at(10)),
		identifyEvent("u2", "alice", at(20), `{"email":"a@example.com"}`),
		linkEvent("u3", "alice", "anon-a", at(30)),
		NewEvent("a1", "anon-a", at(5)),
		NewEvent("a2", "anon-a", at(6)),
		linkEvent("u4", "alice", "anon-b", at(40)), // anon-b has no events of its own
		NewEvent("b1", "bob", at(10)),
		linkEvent("b2", "bob", "anon-c", at(11)),
		NewEvent("c1", "anon-c", at(1)),
		NewEvent("x1", "alice2", at(10)), // a user whose id extends alice's
	})
	res := mustErase(t, s, "alice")
	if res.Events != 6 {
		t.Errorf("Events = %d, want 6 (4 of alice, 2 of anon-a)", res.Events)
	}
	if want := []string{"anon-a", "anon-b"}; !slices.Equal(res.AnonymousIDs, want) {
		t.Errorf("AnonymousIDs = %q, want %q", res.AnonymousIDs, want)
	}
	if n := mustCount(t, s); n != 4 {
		t.Errorf("CountEvents after erasure = %d, want 4", n)
	}
	for _, id := range []string{"alice", "anon-a"} {
		if got := walk(t, s, cairn.JourneyQuery{UserID: id, Limit: 2}); len(got) != 0 {
			t.Errorf("journey of %s after erasure = %q, want empty", id, got)
		}
		if _, err := s.TrackedUser(ctx, id); cairn.ErrorCode(err) != cairn.ENOTFOUND {
			t.Errorf("TrackedUser(%s) after erasure: err = %v, want ENOTFOUND", id, err)
		}
	}
	for _, anon := range []string{"anon-a", "anon-b"} {
		if u, err := s.LinkedUser(ctx, anon); err != nil || u != "" {
			t.Errorf("LinkedUser(%s) = %q, %v; want unlinked", anon, u, err)
		}
	}
	var exported []string
	if err := s.ExportEvents(ctx, "", func(e *cairn.Event) error { exported = append(exported, e.EventID); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(exported)
	if want := []string{"b1", "b2", "c1", "x1"}; !slices.Equal(exported, want) {
		t.Errorf("exported after erasure = %q, want %q", exported, want)
	}
	// Other users are untouched, merged ids included.
	if got, want := walk(t, s, cairn.JourneyQuery{UserID: "bob", Limit: 10}), []string{"b2", "b1", "c1"}; !slices.Equal(got, want) {
		t.Errorf("journey of bob = %q, want %q", got, want)
	}
	page, err := s.TrackedUsers(ctx, cairn.TrackedUserQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, u := range page.Users {
		users = append(users, u.UserID)
	}
	if want := []string{"alice2", "anon-c", "bob"}; !slices.Equal(users, want) {
		t.Errorf("tracked users after erasure = %q, want %q", users, want)
	}
	// Erasing again finds nothing more.
	if res := mustErase(t, s, "alice"); res.Events != 0 || len(res.AnonymousIDs) != 0 || res.AnonymousIDs == nil {
		t.Errorf("second erasure = %+v, want 0 events and no (non-nil) ids", res)
	}
}

func testEraseNoResurrect(t *testing.T, s EraseStore) {
	ctx := context.Background()
	old := []cairn.Event{
		NewEvent("u1", "alice", at(10)),
		linkEvent("u2", "alice", "anon-a", at(20)),
		NewEvent("a1", "anon-a", at(5)),
	}
	mustInsert(t, s, old)
	mustErase(t, s, "alice")

	// Re-delivered old events (SDK retries, a spool replay) are duplicates.
	res := mustInsert(t, s, old)
	if res.Inserted != 0 || res.Duplicates != 3 {
		t.Errorf("re-delivered erased events: %+v, want 0 inserted, 3 duplicates", res)
	}
	// New eventIds received before the erasure (acknowledged, still in the
	// spool when it ran) are skipped too; those received after are stored.
	late := NewEvent("u3", "alice", at(30))
	lateAnon := NewEvent("a2", "anon-a", at(31))
	fresh := NewEvent("u4", "alice", at(40))
	fresh.ReceivedAt = eraseAt.Add(time.Second)
	res = mustInsert(t, s, []cairn.Event{late, lateAnon, fresh})
	if res.Inserted != 1 || res.Duplicates != 2 {
		t.Errorf("events after erasure: %+v, want 1 inserted (u4), 2 duplicates", res)
	}
	if got, want := walk(t, s, cairn.JourneyQuery{UserID: "alice", Limit: 10}), []string{"u4"}; !slices.Equal(got, want) {
		t.Errorf("journey of alice = %q, want %q", got, want)
	}
	u, err := s.TrackedUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.EventCount != 1 || len(u.AnonymousIDs) != 0 {
		t.Errorf("tracked user after new event: %+v, want 1 event, no merged ids", u)
	}
	if n := mustCount(t, s); n != 1 {
		t.Errorf("CountEvents = %d, want 1", n)
	}
}

func testEraseUnknown(t *testing.T, s EraseStore) {
	mustInsert(t, s, []cairn.Event{NewEvent("b1", "bob", at(1))})
	res := mustErase(t, s, "nobody")
	if res.Events != 0 || res.AnonymousIDs == nil || len(res.AnonymousIDs) != 0 {
		t.Errorf("erasing an unknown user = %+v, want 0 events, empty non-nil ids", res)
	}
	// The marker covers events of the user still on their way.
	if res := mustInsert(t, s, []cairn.Event{NewEvent("n1", "nobody", at(2))}); res.Inserted != 0 {
		t.Errorf("event received before the erasure was stored: %+v", res)
	}
	if n := mustCount(t, s); n != 1 {
		t.Errorf("CountEvents = %d, want 1", n)
	}
}

func testEraseEmpty(t *testing.T, s EraseStore) {
	if _, err := s.EraseUser(context.Background(), "", eraseAt); cairn.ErrorCode(err) != cairn.EINVALID {
		t.Errorf("EraseUser(\"\"): err = %v, want EINVALID", err)
	}
}
