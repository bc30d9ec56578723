package storetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// IdentityStore is an event store that records identity links and tracked
// users.
type IdentityStore interface {
	cairn.EventStore
	cairn.TrackedUserStore
}

// RunTrackedUsers runs the conformance suite for identity links, merged
// journeys and tracked users (cairn.TrackedUserStore). open must return a
// fresh, empty store; the suite closes it.
func RunTrackedUsers(t *testing.T, open func(t *testing.T) IdentityStore) {
	newStore := func(t *testing.T) IdentityStore {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { closeStore(t, s) })
		return s
	}
	t.Run("MergedJourney", func(t *testing.T) { testMergedJourney(t, newStore(t)) })
	t.Run("MergedPagination", func(t *testing.T) { testMergedPagination(t, newStore(t)) })
	t.Run("MergedIDsCapped", func(t *testing.T) { testMergedIDsCapped(t, newStore(t)) })
	t.Run("LinkAppearsBetweenPages", func(t *testing.T) { testLinkBetweenPages(t, newStore(t)) })
	t.Run("FirstLinkWins", func(t *testing.T) { testFirstLinkWins(t, newStore) })
	t.Run("DuplicatesNeverLink", func(t *testing.T) { testDuplicatesNeverLink(t, newStore(t)) })
	t.Run("TrackedUser", func(t *testing.T) { testTrackedUser(t, newStore(t)) })
	t.Run("SessionsCountedOnce", func(t *testing.T) { testSessionsCountedOnce(t, newStore(t)) })
	t.Run("ErrTrackedUserNotFound", func(t *testing.T) { testTrackedUserNotFound(t, newStore(t)) })
	t.Run("TrackedUsersList", func(t *testing.T) { testTrackedUsersList(t, newStore(t)) })
	t.Run("ErrTrackedUsersLimit", func(t *testing.T) { testTrackedUsersLimit(t, newStore(t)) })
}

// linkEvent is an event of user that links anon to it (an identify call
// with both ids).
func linkEvent(id, user, anon string, at time.Time) cairn.Event {
	e := NewEvent(id, user, at)
	e.Type, e.AnonymousID = cairn.IdentifyType, anon
	return e
}

func identifyEvent(id, user string, at time.Time, traits string) cairn.Event {
	e := NewEvent(id, user, at)
	e.Type = cairn.IdentifyType
	e.Payload = json.RawMessage(`{"userId":"` + user + `","traits":` + traits + `}`)
	return e
}

func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

// walk reads q's whole journey page by page and returns the event ids.
func walk(t *testing.T, s cairn.EventStore, q cairn.JourneyQuery) []string {
	t.Helper()
	var got []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("pagination of %+v does not end", q)
		}
		page := mustJourney(t, s, q)
		got = append(got, ids(page.Events)...)
		if page.Next == nil {
			return got
		}
		if len(page.Events) != q.Limit {
			t.Fatalf("non-final page has %d events, limit %d", len(page.Events), q.Limit)
		}
		q.After = page.Next
	}
}

func testMergedJourney(t *testing.T, s IdentityStore) {
	ctx := t.Context()
	mustInsert(t, s, []cairn.Event{
		NewEvent("m-1", "anon-1", at(1)), NewEvent("m-2", "anon-1", at(2)),
		NewEvent("m-3", "other", at(3)),
	})
	// Before the link, the user's journey has only its own events.
	mustInsert(t, s, []cairn.Event{NewEvent("m-0", "alice", at(0))})
	page := mustJourney(t, s, cairn.JourneyQuery{UserID: "alice", Limit: 10})
	if got := ids(page.Events); !slices.Equal(got, []string{"m-0"}) || len(page.MergedIDs) != 0 {
		t.Fatalf("before the link: %v merged %v", got, page.MergedIDs)
	}
	withIDs := linkEvent("m-4", "alice", "anon-1", at(4))
	withIDs.SourceID = "src_web"
	res := mustInsert(t, s, []cairn.Event{withIDs, NewEvent("m-5", "anon-1", at(5)), NewEvent("m-6", "alice", at(6))})
	if res.Inserted != 3 || res.LinkConflicts != 0 {
		t.Fatalf("insert: %+v", res)
	}
	page = mustJourney(t, s, cairn.JourneyQuery{UserID: "alice", Limit: 100})
	if got, want := ids(page.Events), []string{"m-6", "m-5", "m-4", "m-2", "m-1", "m-0"}; !slices.Equal(got, want) {
		t.Fatalf("merged journey: got %v, want %v", got, want)
	}
	if !slices.Equal(page.MergedIDs, []string{"anon-1"}) {
		t.Fatalf("MergedIDs = %v, want [anon-1]", page.MergedIDs)
	}
	if e := page.Events[2]; e.AnonymousID != "anon-1" || e.SourceID != "src_web" || e.UserID != "alice" {
		t.Fatalf("link event read back as %+v", e)
	}
	if e := page.Events[1]; e.UserID != "anon-1" {
		t.Fatalf("merged events keep their own userId: %+v", e)
	}
	page = mustJourney(t, s, cairn.JourneyQuery{UserID: "alice", Limit: 100, Unmerged: true})
	if got, want := ids(page.Events), []string{"m-6", "m-4", "m-0"}; !slices.Equal(got, want) || page.MergedIDs != nil {
		t.Fatalf("unmerged journey: got %v merged %v, want %v", got, page.MergedIDs, want)
	}
	// A range applies to every merged id.
	page = mustJourney(t, s, cairn.JourneyQuery{UserID: "alice", Limit: 100, From: at(2), To: at(5)})
	if got, want := ids(page.Events), []string{"m-5", "m-4", "m-2"}; !slices.Equal(got, want) {
		t.Fatalf("merged range: got %v, want %v", got, want)
	}
	// The anonymous id's own journey is not merged with the user's.
	page = mustJourney(t, s, cairn.JourneyQuery{UserID: "anon-1", Limit: 100})
	if got, want := ids(page.Events), []string{"m-5", "m-2", "m-1"}; !slices.Equal(got, want) {
		t.Fatalf("anonymous journey: got %v, want %v", got, want)
	}
	if u, err := s.LinkedUser(ctx, "anon-1"); err != nil || u != "alice" {
		t.Fatalf("LinkedUser(anon-1) = %q, %v; want alice", u, err)
	}
	if u, err := s.LinkedUser(ctx, "other"); err != nil || u != "" {
		t.Fatalf("LinkedUser(other) = %q, %v; want \"\"", u, err)
	}
}

func testMergedPagination(t *testing.T, s IdentityStore) {
	var evs []cairn.Event
	var want []cairn.Event
	anons := []string{"a", "ab", "b", "z\u00e9"}
	for i := range 40 {
		// Several ids share each timestamp, to exercise ties across ids.
		owner := "pager"
		if i%5 != 0 {
			owner = anons[i%len(anons)]
		}
		e := NewEvent(fmt.Sprintf("q-%02d", i), owner, at(i/4))
		evs = append(evs, e)
		want = append(want, e)
	}
	for i, anon := range anons {
		e := linkEvent(fmt.Sprintf("l-%d", i), "pager", anon, at(100+i))
		evs = append(evs, e)
		want = append(want, e)
	}
	evs = append(evs, NewEvent("noise", "a2", at(3)), NewEvent("noise2", "pager2", at(3)))
	mustInsert(t, s, evs)
	slices.SortFunc(want, func(a, b cairn.Event) int {
		return -cairn.CompareEventKey(a.OccurredAt, a.EventID, b.OccurredAt, b.EventID)
	})
	all := mustJourney(t, s, cairn.JourneyQuery{UserID: "pager", Limit: 1000})
	if got := ids(all.Events); !slices.Equal(got, ids(want)) {
		t.Fatalf("merged journey:\n got %v\nwant %v", got, ids(want))
	}
	if !slices.Equal(all.MergedIDs, anons) {
		t.Fatalf("MergedIDs = %v, want %v", all.MergedIDs, anons)
	}
	for _, limit := range []int{1, 3, 7, 44} {
		if got := walk(t, s, cairn.JourneyQuery{UserID: "pager", Limit: limit}); !slices.Equal(got, ids(want)) {
			t.Fatalf("limit %d: walked\n %v\nwant %v", limit, got, ids(want))
		}
	}
	from, to := at(2), at(6)
	var inRange []string
	for _, e := range want {
		if !e.OccurredAt.Before(from) && !e.OccurredAt.After(to) {
			inRange = append(inRange, e.EventID)
		}
	}
	if got := walk(t, s, cairn.JourneyQuery{UserID: "pager", Limit: 4, From: from, To: to}); !slices.Equal(got, inRange) {
		t.Fatalf("range walk: got %v, want %v", got, inRange)
	}
}

// testMergedIDsCapped: a journey merges at most cairn.MaxMergedIDs
// anonymous ids, the smallest in byte order; the tracked user lists all.
func testMergedIDsCapped(t *testing.T, s IdentityStore) {
	n := cairn.MaxMergedIDs + 3
	var evs []cairn.Event
	var all []string
	for i := range n {
		anon := fmt.Sprintf("cap-%03d", n-1-i)
		all = append(all, anon)
		evs = append(evs, linkEvent(fmt.Sprintf("c-%03d", i), "capped", anon, at(i)), NewEvent(fmt.Sprintf("d-%03d", i), anon, at(i)))
	}
	mustInsert(t, s, evs)
	slices.Sort(all)
	page := mustJourney(t, s, cairn.JourneyQuery{UserID: "capped", Limit: 1000})
	if !slices.Equal(page.MergedIDs, all[:cairn.MaxMergedIDs]) {
		t.Fatalf("MergedIDs = %v, want the %d smallest of %v", page.MergedIDs, cairn.MaxMergedIDs, all)
	}
	if len(page.Events) != n+cairn.MaxMergedIDs {
		t.Fatalf("journey has %d events, want %d", len(page.Events), n+cairn.MaxMergedIDs)
	}
	u, err := s.TrackedUser(t.Context(), "capped")
	if err != nil || !slices.Equal(u.AnonymousIDs, all) {
		t.Fatalf("TrackedUser = %+v, %v; want all %d ids", u, err, n)
	}
}

func testLinkBetweenPages(t *testing.T, s IdentityStore) {
	mustInsert(t, s, []cairn.Event{
		NewEvent("u-1", "late", at(1)), NewEvent("u-5", "late", at(5)), NewEvent("u-9", "late", at(9)),
		NewEvent("v-2", "late-anon", at(2)), NewEvent("v-6", "late-anon", at(6)), NewEvent("v-10", "late-anon", at(10)),
	})
	first := mustJourney(t, s, cairn.JourneyQuery{UserID: "late", Limit: 2})
	if got := ids(first.Events); !slices.Equal(got, []string{"u-9", "u-5"}) {
		t.Fatalf("first page: %v", got)
	}
	mustInsert(t, s, []cairn.Event{linkEvent("link", "late", "late-anon", at(0))})
	rest := walk(t, s, cairn.JourneyQuery{UserID: "late", Limit: 2, After: first.Next})
	// Nothing returned repeats; the newly merged events older than the
	// cursor follow.
	if want := []string{"v-2", "u-1", "link"}; !slices.Equal(rest, want) {
		t.Fatalf("after the link: got %v, want %v", rest, want)
	}
}

// testFirstLinkWins: an anonymous id linked to two users stays with the
// one linked by the earliest (occurredAt, eventId), whatever the delivery
// order.
func testFirstLinkWins(t *testing.T, newStore func(t *testing.T) IdentityStore) {
	early := linkEvent("k-2", "first", "shared", at(10))
	tie := linkEvent("k-1", "second", "shared", at(20)) // later time, smaller eventId
	late := linkEvent("k-3", "second", "shared", at(20))
	orders := map[string][][]cairn.Event{
		"InOrder":    {{early}, {tie, late}},
		"Reversed":   {{late}, {tie}, {early}},
		"OneBatch":   {{late, early, tie}},
		"LaterFirst": {{tie, late}, {early}},
	}
	for _, name := range slices.Sorted(maps.Keys(orders)) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			mustInsert(t, s, []cairn.Event{NewEvent("anon-ev", "shared", at(1))})
			conflicts := 0
			for _, batch := range orders[name] {
				conflicts += mustInsert(t, s, batch).LinkConflicts
			}
			if u, err := s.LinkedUser(t.Context(), "shared"); err != nil || u != "first" {
				t.Fatalf("LinkedUser = %q, %v; want first", u, err)
			}
			page := mustJourney(t, s, cairn.JourneyQuery{UserID: "first", Limit: 10})
			if got, want := ids(page.Events), []string{"k-2", "anon-ev"}; !slices.Equal(got, want) || !slices.Equal(page.MergedIDs, []string{"shared"}) {
				t.Fatalf("first's journey: %v merged %v, want %v", got, page.MergedIDs, want)
			}
			page = mustJourney(t, s, cairn.JourneyQuery{UserID: "second", Limit: 10})
			if got, want := ids(page.Events), []string{"k-3", "k-1"}; !slices.Equal(got, want) || len(page.MergedIDs) != 0 {
				t.Fatalf("second's journey: %v merged %v, want %v and nothing merged", got, page.MergedIDs, want)
			}
			for user, want := range map[string][]string{"first": {"shared"}, "second": {}} {
				u, err := s.TrackedUser(t.Context(), user)
				if err != nil || !slices.Equal(u.AnonymousIDs, want) {
					t.Fatalf("TrackedUser(%s).AnonymousIDs = %v, %v; want %v", user, u, err, want)
				}
			}
			if name == "InOrder" || name == "OneBatch" {
				if conflicts != 2 {
					t.Fatalf("LinkConflicts = %d, want 2 (both links to second are ignored)", conflicts)
				}
			}
		})
	}
	t.Run("TieOnTime", func(t *testing.T) {
		s := newStore(t)
		mustInsert(t, s, []cairn.Event{linkEvent("t-b", "bee", "anon", at(5))})
		res := mustInsert(t, s, []cairn.Event{linkEvent("t-a", "ay", "anon", at(5))})
		if u, err := s.LinkedUser(t.Context(), "anon"); err != nil || u != "ay" {
			t.Fatalf("LinkedUser = %q, %v; want ay (smaller eventId at the same time)", u, err)
		}
		if res.LinkConflicts != 0 {
			t.Fatalf("LinkConflicts = %d, want 0: the new link won", res.LinkConflicts)
		}
	})
}

func testDuplicatesNeverLink(t *testing.T, s IdentityStore) {
	mustInsert(t, s, []cairn.Event{NewEvent("dup-1", "user", at(1)), NewEvent("anon-ev", "anon", at(0))})
	// The same eventId again, now carrying a link: a duplicate, so nothing.
	res := mustInsert(t, s, []cairn.Event{linkEvent("dup-1", "user", "anon", at(1))})
	if res.Duplicates != 1 || res.Inserted != 0 {
		t.Fatalf("re-insert: %+v", res)
	}
	if u, err := s.LinkedUser(t.Context(), "anon"); err != nil || u != "" {
		t.Fatalf("LinkedUser = %q, %v; want no link", u, err)
	}
	// A real link, re-delivered, changes nothing either.
	link := linkEvent("dup-2", "user", "anon", at(2))
	mustInsert(t, s, []cairn.Event{link})
	before, err := s.TrackedUser(t.Context(), "user")
	if err != nil {
		t.Fatal(err)
	}
	res = mustInsert(t, s, []cairn.Event{link, link})
	if res.Duplicates != 2 || res.LinkConflicts != 0 {
		t.Fatalf("re-delivery: %+v", res)
	}
	after, err := s.TrackedUser(t.Context(), "user")
	if err != nil {
		t.Fatal(err)
	}
	assertTrackedUser(t, after, before)
}

func testTrackedUser(t *testing.T, s IdentityStore) {
	ctx := t.Context()
	evs := []cairn.Event{
		NewEvent("tu-1", "tom", at(10)),
		NewEvent("tu-2", "tom", at(5)),
		identifyEvent("tu-3", "tom", at(20), `{"plan":"pro","name":"Tom","address":{"city":"Oslo"}}`),
		identifyEvent("tu-4", "tom", at(15), `{"plan":"free","age":30}`), // older: only age is new
		linkEvent("tu-5", "tom", "tom-phone", at(7)),
		NewEvent("tu-6", "tom-phone", at(3)),
	}
	evs[1].SessionID = "s2"
	evs[3].SessionID = ""
	mustInsert(t, s, evs[:3])
	mustInsert(t, s, append(evs[3:], evs[0])) // evs[0] again: a duplicate, not counted
	late := NewEvent("tu-7", "tom", at(30))
	late.SessionID = "s2"
	mustInsert(t, s, []cairn.Event{late, identifyEvent("tu-8", "tom", at(20), `{"plan":"team"}`)}) // same time, larger eventId: wins

	got, err := s.TrackedUser(ctx, "tom")
	if err != nil {
		t.Fatalf("TrackedUser: %v", err)
	}
	assertTrackedUser(t, got, &cairn.TrackedUser{
		UserID: "tom", FirstSeen: at(5), LastSeen: at(30), EventCount: 7,
		SessionCount: 2, // sess-tom and s2; the empty sessionId does not count
		Traits: map[string]json.RawMessage{
			"plan": json.RawMessage(`"team"`), "name": json.RawMessage(`"Tom"`),
			"address": json.RawMessage(`{"city":"Oslo"}`), "age": json.RawMessage(`30`),
		},
		AnonymousIDs: []string{"tom-phone"},
	})
	phone, err := s.TrackedUser(ctx, "tom-phone")
	if err != nil {
		t.Fatalf("TrackedUser(tom-phone): %v", err)
	}
	assertTrackedUser(t, phone, &cairn.TrackedUser{UserID: "tom-phone", FirstSeen: at(3), LastSeen: at(3),
		EventCount: 1, SessionCount: 1, Traits: map[string]json.RawMessage{}, AnonymousIDs: []string{}})
}

// testSessionsCountedOnce: a session seen again, in any later call and
// however many other sessions came between, is not counted again.
func testSessionsCountedOnce(t *testing.T, s IdentityStore) {
	n := 0
	send := func(sessions ...string) {
		t.Helper()
		var evs []cairn.Event
		for _, sess := range sessions {
			e := NewEvent(fmt.Sprintf("sc-%03d", n), "sam", at(n))
			e.SessionID = sess
			evs = append(evs, e)
			n++
		}
		mustInsert(t, s, evs)
	}
	for i := 1; i <= 6; i++ {
		send(fmt.Sprintf("s%d", i))
	}
	send("s1", "s3", "s1")
	send("s7", "s2", "", "s7")
	send("s6", "s5", "s4", "s3", "s2", "s1")
	u, err := s.TrackedUser(t.Context(), "sam")
	if err != nil {
		t.Fatal(err)
	}
	if u.SessionCount != 7 || u.EventCount != int64(n) {
		t.Fatalf("SessionCount %d EventCount %d, want 7 and %d", u.SessionCount, u.EventCount, n)
	}
}

func testTrackedUserNotFound(t *testing.T, s IdentityStore) {
	mustInsert(t, s, []cairn.Event{NewEvent("nf-1", "known", at(1))})
	for _, id := range []string{"unknown", "know", ""} {
		if _, err := s.TrackedUser(t.Context(), id); cairn.ErrorCode(err) != cairn.ENOTFOUND {
			t.Errorf("TrackedUser(%q) = %v, want ENOTFOUND", id, err)
		}
	}
}

func testTrackedUsersList(t *testing.T, s IdentityStore) {
	users := []string{"a", "ab", "abc", "b", "user-01", "user-02", "user-10", "user-2", "z\u00e9"}
	var evs []cairn.Event
	for i, u := range users {
		evs = append(evs, NewEvent(fmt.Sprintf("tl-%d", i), u, at(i)), NewEvent(fmt.Sprintf("tl-%d-b", i), u, at(i+100)))
	}
	mustInsert(t, s, evs)
	list := func(q cairn.TrackedUserQuery) []string {
		t.Helper()
		var got []string
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatalf("listing %+v does not end", q)
			}
			page, err := s.TrackedUsers(t.Context(), q)
			if err != nil {
				t.Fatalf("TrackedUsers(%+v): %v", q, err)
			}
			for _, u := range page.Users {
				got = append(got, u.UserID)
				if u.EventCount != 2 || u.Traits == nil || u.AnonymousIDs == nil {
					t.Fatalf("listed user %+v", u)
				}
			}
			if page.Next == "" {
				return got
			}
			if len(page.Users) != q.Limit {
				t.Fatalf("non-final page has %d users, limit %d", len(page.Users), q.Limit)
			}
			q.After = page.Next
		}
	}
	for _, tc := range []struct {
		name string
		q    cairn.TrackedUserQuery
		want []string
	}{
		{"All", cairn.TrackedUserQuery{Limit: 100}, users},
		{"Paged", cairn.TrackedUserQuery{Limit: 2}, users},
		{"Prefix", cairn.TrackedUserQuery{Prefix: "a", Limit: 1}, []string{"a", "ab", "abc"}},
		{"PrefixPaged", cairn.TrackedUserQuery{Prefix: "user-", Limit: 3}, []string{"user-01", "user-02", "user-10", "user-2"}},
		{"After", cairn.TrackedUserQuery{After: "ab", Limit: 3}, users[2:]},
		{"AfterUnknown", cairn.TrackedUserQuery{Prefix: "user-", After: "user-05", Limit: 10}, []string{"user-10", "user-2"}},
		{"AfterBeforePrefix", cairn.TrackedUserQuery{Prefix: "user-", After: "b", Limit: 10}, []string{"user-01", "user-02", "user-10", "user-2"}},
		{"NoMatch", cairn.TrackedUserQuery{Prefix: "nobody", Limit: 10}, nil},
		{"Unicode", cairn.TrackedUserQuery{Prefix: "z\u00e9", Limit: 10}, []string{"z\u00e9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.q); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testTrackedUsersLimit(t *testing.T, s IdentityStore) {
	for _, limit := range []int{0, -1, cairn.MaxTrackedUserLimit + 1} {
		if _, err := s.TrackedUsers(t.Context(), cairn.TrackedUserQuery{Limit: limit}); cairn.ErrorCode(err) != cairn.EINVALID {
			t.Errorf("limit %d: got %v, want EINVALID", limit, err)
		}
	}
}

func assertTrackedUser(t *testing.T, got, want *cairn.TrackedUser) {
	t.Helper()
	if got.UserID != want.UserID || !got.FirstSeen.Equal(want.FirstSeen) || !got.LastSeen.Equal(want.LastSeen) ||
		got.EventCount != want.EventCount || got.SessionCount != want.SessionCount ||
		!slices.Equal(got.AnonymousIDs, want.AnonymousIDs) || got.AnonymousIDs == nil {
		t.Fatalf("tracked user:\n got %+v\nwant %+v", got, want)
	}
	if got.FirstSeen.Location() != time.UTC || got.LastSeen.Location() != time.UTC {
		t.Fatalf("times not in UTC: %v %v", got.FirstSeen, got.LastSeen)
	}
	if got.Traits == nil || len(got.Traits) != len(want.Traits) {
		t.Fatalf("traits: got %s, want %s", fmtTraits(got.Traits), fmtTraits(want.Traits))
	}
	for k, v := range want.Traits {
		var g, w any
		if json.Unmarshal(got.Traits[k], &g) != nil || json.Unmarshal(v, &w) != nil || fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("trait %q: got %s, want %s", k, got.Traits[k], v)
		}
	}
}

func fmtTraits(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}
