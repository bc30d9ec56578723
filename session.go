package cairn

import (
	"context"
	"strconv"
	"time"
)

// Derived sessions. Events sent without a session id (most Segment
// messages) are grouped into sessions when journeys are read, by one rule
// that depends only on the user's stored events, so re-delivery, replays
// and reading the journey a page at a time give the same ids:
//
//   - Only events with an empty SessionID take part; events with their
//     own session id keep it and neither start nor end derived sessions.
//   - A derived session ends when the next event (in occurredAt order)
//     comes more than the gap (CAIRN_SESSION_GAP, DefaultSessionGap) after
//     the previous one, or falls on another UTC day: every session starts
//     and ends within one UTC day, as Google Analytics splits at midnight.
//   - Its id is DerivedSessionPrefix and the Unix milliseconds of the
//     occurredAt of its first event: "auto-1765794600000".
//
// Finding where the oldest session of a page starts can require reading
// older events until a gap; the UTC-day rule bounds that look-back to one
// day, and MaxSessionLookBack bounds it to a number of events: only a user
// with more than that many gap-free sessionless events in one day can see
// that session's id differ between pages.

// Session derivation settings.
const (
	// DefaultSessionGap is the inactivity that ends a derived session.
	DefaultSessionGap = 30 * time.Minute
	// DerivedSessionPrefix starts every derived session id.
	DerivedSessionPrefix = "auto-"
	// MaxSessionLookBack is the most older events read to find where a
	// journey page's oldest derived session starts.
	MaxSessionLookBack = 5000
)

// DerivedSessionID returns the id of the derived session whose first event
// occurred at start.
func DerivedSessionID(start time.Time) string {
	return DerivedSessionPrefix + strconv.FormatInt(start.UnixMilli(), 10)
}

// SessionBreak reports whether a derived session ends between two
// consecutive sessionless events of a user that occurred at older and
// newer: they are more than gap apart or on different UTC days.
func SessionBreak(older, newer time.Time, gap time.Duration) bool {
	if newer.Sub(older) > gap {
		return true
	}
	oy, om, od := older.UTC().Date()
	ny, nm, nd := newer.UTC().Date()
	return oy != ny || om != nm || od != nd
}

// SessionLookBack says what DeriveSessions needs besides a journey page
// (newest first): the user's events older than the page's last, from
// (inclusive; the start of the UTC day of the page's oldest sessionless
// event) on. It returns false when the page has no sessionless event, so
// nothing needs reading.
func SessionLookBack(page []Event) (from time.Time, ok bool) {
	for i := len(page) - 1; i >= 0; i-- {
		if page[i].SessionID == "" {
			y, m, d := page[i].OccurredAt.UTC().Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), true
		}
	}
	return time.Time{}, false
}

// SessionStartFound reports whether older (the events that follow page in
// its journey, newest first) already reaches back past the start of the
// session of page's oldest sessionless event, so no more need reading.
func SessionStartFound(page, older []Event, gap time.Duration) bool {
	var prev time.Time
	found := false
	for i := len(page) - 1; i >= 0; i-- {
		if page[i].SessionID == "" {
			prev, found = page[i].OccurredAt, true
			break
		}
	}
	if !found {
		return true
	}
	for i := range older {
		if older[i].SessionID != "" {
			continue
		}
		if SessionBreak(older[i].OccurredAt, prev, gap) {
			return true
		}
		prev = older[i].OccurredAt
	}
	return false
}

// DeriveSessions sets the SessionID of every event of page (a journey
// page, newest first) that has none to its derived session's id. older
// are the events that follow page in the same journey, newest first: at
// least back to the start of the oldest session (see SessionStartFound),
// or all of them; the oldest sessionless event of page+older is taken as a
// session start. older is not modified.
func DeriveSessions(page, older []Event, gap time.Duration) {
	var start, prev time.Time
	have := false
	at := func(i int) *Event {
		if i < len(page) {
			return &page[i]
		}
		return &older[i-len(page)]
	}
	for i := len(page) + len(older) - 1; i >= 0; i-- {
		ev := at(i)
		if ev.SessionID != "" {
			continue
		}
		if !have || SessionBreak(prev, ev.OccurredAt, gap) {
			start = ev.OccurredAt
		}
		prev, have = ev.OccurredAt, true
		if i < len(page) {
			ev.SessionID = DerivedSessionID(start)
		}
	}
}

// DerivePageSessions gives the events of page (a journey page of userID
// read from store, newest first) that have no session id their derived
// session (see DeriveSessions), reading the older events the rule needs
// from store: back to a session break, within one UTC day, at most
// MaxSessionLookBack events. gap <= 0 means DefaultSessionGap. The HTTP
// journey API and the console's journey view both call it, so they show
// the same sessions.
func DerivePageSessions(ctx context.Context, store EventStore, userID string, page []Event, gap time.Duration) error {
	if gap <= 0 {
		gap = DefaultSessionGap
	}
	from, ok := SessionLookBack(page)
	if !ok {
		return nil
	}
	var older []Event
	last := page[len(page)-1]
	after := &Cursor{OccurredAt: last.OccurredAt, EventID: last.EventID}
	for !SessionStartFound(page, older, gap) && len(older) < MaxSessionLookBack {
		p, err := store.Journey(ctx, JourneyQuery{UserID: userID, From: from, After: after,
			Limit: min(MaxJourneyLimit, MaxSessionLookBack-len(older))})
		if err != nil {
			return err
		}
		older = append(older, p.Events...)
		if p.Next == nil {
			break
		}
		after = p.Next
	}
	DeriveSessions(page, older, gap)
	return nil
}
