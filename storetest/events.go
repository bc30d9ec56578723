// Package storetest is the conformance suite every cairn.EventStore must
// pass (as litestream runs one contract suite against every replica
// backend). A store's own tests call RunEventStore with a constructor that
// returns a fresh, empty store.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// base is the occurredAt of the first test event.
var base = time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)

// NewEvent returns a valid event for tests.
func NewEvent(id, user string, occurredAt time.Time) cairn.Event {
	return cairn.Event{
		EventID: id, UserID: user, SessionID: "sess-" + user, Type: "page_view",
		Payload:    json.RawMessage(fmt.Sprintf(`{"url":"/p/%s","n":42,"f":1.5,"ok":true,"tags":["a","b"],"nested":{"k":"v"}}`, id)),
		OccurredAt: occurredAt.UTC().Truncate(time.Millisecond),
		ReceivedAt: base.Add(time.Hour),
	}
}

// RunEventStore runs the conformance suite. open must return a fresh, empty
// closeStore closes s and fails the test if closing fails.
func closeStore(t *testing.T, s cairn.EventStore) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
}

// store; the suite closes it.
func RunEventStore(t *testing.T, open func(t *testing.T) cairn.EventStore) {
	newStore := func(t *testing.T) cairn.EventStore {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { closeStore(t, s) })
		return s
	}
	t.Run("InsertAndReadBack", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		var evs []cairn.Event
		for i := range 5 {
			evs = append(evs, NewEvent(fmt.Sprintf("a-%d", i), "alice", base.Add(time.Duration(i)*time.Minute)))
		}
		evs = append(evs, NewEvent("b-0", "bob", base))
		res := mustInsert(t, s, evs)
		if res.Inserted != 6 || res.Duplicates != 0 || len(res.Rejected) != 0 {
			t.Fatalf("insert: got %+v, want 6 inserted", res)
		}
		page := mustJourney(t, s, cairn.JourneyQuery{UserID: "alice", Limit: 100})
		want := []string{"a-4", "a-3", "a-2", "a-1", "a-0"}
		if got := ids(page.Events); !slices.Equal(got, want) {
			t.Fatalf("journey order: got %v, want %v", got, want)
		}
		if page.Next != nil {
			t.Errorf("last page has a next cursor: %+v", page.Next)
		}
		assertSameEvent(t, page.Events[4], evs[0])
		if n, err := s.CountEvents(ctx); err != nil || n != 6 {
			t.Errorf("CountEvents = %d, %v; want 6", n, err)
		}
	})
	t.Run("IdempotentReinsert", func(t *testing.T) {
		s := newStore(t)
		evs := []cairn.Event{NewEvent("x-1", "u1", base), NewEvent("x-2", "u1", base.Add(time.Second))}
		mustInsert(t, s, evs)
		again := []cairn.Event{NewEvent("x-1", "u1", base), NewEvent("x-2", "u1", base.Add(time.Second)), NewEvent("x-3", "u1", base)}
		res := mustInsert(t, s, again)
		if res.Inserted != 1 || res.Duplicates != 2 {
			t.Fatalf("re-insert: got %+v, want 1 inserted 2 duplicates", res)
		}
		if n, _ := s.CountEvents(t.Context()); n != 3 {
			t.Errorf("CountEvents = %d, want 3", n)
		}
		page := mustJourney(t, s, cairn.JourneyQuery{UserID: "u1", Limit: 10})
		if len(page.Events) != 3 {
			t.Errorf("journey has %d events, want 3", len(page.Events))
		}
	})
	t.Run("DuplicateWithinBatch", func(t *testing.T) {
		s := newStore(t)
		res := mustInsert(t, s, []cairn.Event{NewEvent("d-1", "u", base), NewEvent("d-1", "u", base), NewEvent("d-2", "u", base)})
		if res.Inserted != 2 || res.Duplicates != 1 {
			t.Fatalf("got %+v, want 2 inserted 1 duplicate", res)
		}
	})
	t.Run("TiesBrokenByEventIDDescending", func(t *testing.T) {
		s := newStore(t)
		mustInsert(t, s, []cairn.Event{NewEvent("t-b", "u", base), NewEvent("t-a", "u", base), NewEvent("t-c", "u", base), NewEvent("t-ab", "u", base)})
		page := mustJourney(t, s, cairn.JourneyQuery{UserID: "u", Limit: 10})
		if got, want := ids(page.Events), []string{"t-c", "t-b", "t-ab", "t-a"}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("RangeIsInclusive", func(t *testing.T) {
		s := newStore(t)
		var evs []cairn.Event
		for i := range 10 {
			evs = append(evs, NewEvent(fmt.Sprintf("r-%d", i), "u", base.Add(time.Duration(i)*time.Millisecond)))
		}
		mustInsert(t, s, evs)
		page := mustJourney(t, s, cairn.JourneyQuery{UserID: "u", Limit: 100,
			From: base.Add(2 * time.Millisecond), To: base.Add(5 * time.Millisecond)})
		if got, want := ids(page.Events), []string{"r-5", "r-4", "r-3", "r-2"}; !slices.Equal(got, want) {
			t.Fatalf("from/to: got %v, want %v", got, want)
		}
		page = mustJourney(t, s, cairn.JourneyQuery{UserID: "u", Limit: 100, From: base.Add(8 * time.Millisecond)})
		if got, want := ids(page.Events), []string{"r-9", "r-8"}; !slices.Equal(got, want) {
			t.Fatalf("from only: got %v, want %v", got, want)
		}
		page = mustJourney(t, s, cairn.JourneyQuery{UserID: "u", Limit: 100, To: base.Add(1 * time.Millisecond)})
		if got, want := ids(page.Events), []string{"r-1", "r-0"}; !slices.Equal(got, want) {
			t.Fatalf("to only: got %v, want %v", got, want)
		}
		page = mustJourney(t, s, cairn.JourneyQuery{UserID: "u", Limit: 100, From: base.Add(time.Hour)})
		if len(page.Events) != 0 {
			t.Fatalf("empty range: got %v", ids(page.Events))
		}
	})
	t.Run("CursorPagination", func(t *testing.T) {
		s := newStore(t)
		var evs []cairn.Event
		for i := range 23 {
			// Groups of three share a timestamp, to exercise tie-breaking across pages.
			evs = append(evs, NewEvent(fmt.Sprintf("p-%02d", i), "pager", base.Add(time.Duration(i/3)*time.Second)))
		}
		evs = append(evs, NewEvent("other", "pager2", base))
		mustInsert(t, s, evs)
		all := mustJourney(t, s, cairn.JourneyQuery{UserID: "pager", Limit: 1000})
		if len(all.Events) != 23 {
			t.Fatalf("full journey has %d events, want 23", len(all.Events))
		}
		for _, limit := range []int{1, 5, 7, 23} {
			var walked []string
			q := cairn.JourneyQuery{UserID: "pager", Limit: limit}
			for pages := 0; ; pages++ {
				if pages > 30 {
					t.Fatalf("limit %d: pagination does not end", limit)
				}
				page := mustJourney(t, s, q)
				walked = append(walked, ids(page.Events)...)
				if page.Next == nil {
					break
				}
				if len(page.Events) != limit {
					t.Fatalf("limit %d: non-final page has %d events", limit, len(page.Events))
				}
				q.After = page.Next
			}
			if want := ids(all.Events); !slices.Equal(walked, want) {
				t.Fatalf("limit %d: walked %v, want %v", limit, walked, want)
			}
		}
		// A cursor also composes with a range.
		page := mustJourney(t, s, cairn.JourneyQuery{UserID: "pager", Limit: 2, From: base.Add(2 * time.Second), To: base.Add(3 * time.Second)})
		next := mustJourney(t, s, cairn.JourneyQuery{UserID: "pager", Limit: 10, From: base.Add(2 * time.Second), To: base.Add(3 * time.Second), After: page.Next})
		if got, want := append(ids(page.Events), ids(next.Events)...), []string{"p-11", "p-10", "p-09", "p-08", "p-07", "p-06"}; !slices.Equal(got, want) {
			t.Fatalf("range+cursor: got %v, want %v", got, want)
		}
	})
	t.Run("UnknownUserIsEmpty", func(t *testing.T) {
		s := newStore(t)
		mustInsert(t, s, []cairn.Event{NewEvent("k-1", "known", base)})
		page := mustJourney(t, s, cairn.JourneyQuery{UserID: "nobody", Limit: 10})
		if len(page.Events) != 0 || page.Next != nil {
			t.Fatalf("got %+v, want an empty last page", page)
		}
	})
	t.Run("UsersThatArePrefixesStayApart", func(t *testing.T) {
		s := newStore(t)
		mustInsert(t, s, []cairn.Event{NewEvent("pa", "a", base), NewEvent("pab", "ab", base), NewEvent("pa2", "a\u00e9", base)})
		for user, want := range map[string]string{"a": "pa", "ab": "pab", "a\u00e9": "pa2"} {
			page := mustJourney(t, s, cairn.JourneyQuery{UserID: user, Limit: 10})
			if got := ids(page.Events); !slices.Equal(got, []string{want}) {
				t.Errorf("user %q: got %v, want [%s]", user, got, want)
			}
		}
	})
	t.Run("Export", func(t *testing.T) {
		s := newStore(t)
		mustInsert(t, s, []cairn.Event{NewEvent("e-1", "x", base), NewEvent("e-2", "x", base.Add(time.Second)), NewEvent("e-3", "y", base)})
		var got []string
		if err := s.ExportEvents(t.Context(), "x", func(e *cairn.Event) error { got = append(got, e.EventID); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"e-1", "e-2"}) {
			t.Errorf("export x: got %v", got)
		}
		got = nil
		if err := s.ExportEvents(t.Context(), "", func(e *cairn.Event) error { got = append(got, e.EventID); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"e-1", "e-2", "e-3"}) {
			t.Errorf("export all: got %v", got)
		}
	})
	t.Run("SourceAndAnonymousID", func(t *testing.T) {
		s := newStore(t)
		with := NewEvent("si-1", "u", base)
		with.SourceID, with.AnonymousID = "src_0123456789abcdef", "anon-\u00e9"
		onlySource := NewEvent("si-2", "u", base.Add(time.Second))
		onlySource.SourceID = "src_1"
		plain := NewEvent("si-3", "u", base.Add(2*time.Second))
		mustInsert(t, s, []cairn.Event{with, onlySource, plain})
		page := mustJourney(t, s, cairn.JourneyQuery{UserID: "u", Limit: 10})
		if len(page.Events) != 3 {
			t.Fatalf("journey has %d events, want 3", len(page.Events))
		}
		for i, want := range []cairn.Event{plain, onlySource, with} {
			got := page.Events[i]
			assertSameEvent(t, got, want)
			if got.SourceID != want.SourceID || got.AnonymousID != want.AnonymousID {
				t.Errorf("event %s: sourceId %q anonymousId %q, want %q %q", want.EventID, got.SourceID, got.AnonymousID, want.SourceID, want.AnonymousID)
			}
		}
		var exported []cairn.Event
		if err := s.ExportEvents(t.Context(), "u", func(e *cairn.Event) error { exported = append(exported, *e); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, e := range exported {
			if e.EventID == "si-1" && (e.SourceID != with.SourceID || e.AnonymousID != with.AnonymousID) {
				t.Errorf("exported %+v", e)
			}
		}
	})
	t.Run("Ping", func(t *testing.T) {
		s := newStore(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("InvalidLimit", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: "u", Limit: 0})
		if cairn.ErrorCode(err) != cairn.EINVALID {
			t.Fatalf("limit 0: got %v, want EINVALID", err)
		}
	})
}

func mustInsert(t *testing.T, s cairn.EventStore, evs []cairn.Event) cairn.InsertResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := s.InsertEvents(ctx, evs)
	if err != nil {
		t.Fatalf("InsertEvents: %v", err)
	}
	return res
}

func mustJourney(t *testing.T, s cairn.EventStore, q cairn.JourneyQuery) *cairn.JourneyPage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	page, err := s.Journey(ctx, q)
	if err != nil {
		t.Fatalf("Journey(%+v): %v", q, err)
	}
	return page
}

func ids(evs []cairn.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

// assertSameEvent compares two events field by field, payloads as JSON values.
func assertSameEvent(t *testing.T, got, want cairn.Event) {
	t.Helper()
	if got.EventID != want.EventID || got.UserID != want.UserID || got.SessionID != want.SessionID || got.Type != want.Type {
		t.Errorf("event ids/strings: got %+v, want %+v", got, want)
	}
	if !got.OccurredAt.Equal(want.OccurredAt) || !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Errorf("event times: got %v/%v, want %v/%v", got.OccurredAt, got.ReceivedAt, want.OccurredAt, want.ReceivedAt)
	}
	var g, w any
	if err := json.Unmarshal(got.Payload, &g); err != nil {
		t.Fatalf("stored payload is not JSON: %q", got.Payload)
	}
	if err := json.Unmarshal(want.Payload, &w); err != nil {
		t.Fatalf("wanted payload is not JSON: %q", want.Payload)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("payload: got %s, want %s", got.Payload, want.Payload)
	}
	if strings.TrimSpace(string(got.Payload)) == "" {
		t.Errorf("empty payload")
	}
}
