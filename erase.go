package cairn

import (
	"context"
	"time"
)

// Erasure of a tracked user's data (privacy requests).
//
// Eraser.EraseUser removes every stored event of the user and of the
// anonymous ids merged into it (they are the same person's events: see the
// Links rule in identity.go), and everything derived from them: the
// tracked-user records and distinct-session records of those ids, the
// user's list of merged ids and the links of its merged anonymous ids.
// Afterwards the user's journey is empty and TrackedUser returns ENOTFOUND.
// Erasure is not transitive: if the user was itself merged, as an
// anonymous id, into another user, that link is left (the other user's
// journey simply no longer finds its events).
//
// Two records survive, so that erased data does not come back:
//
//   - the eventIds of the erased events (tombstones): a re-delivered old
//     event (an SDK retry, a spool replay) is a duplicate and is not
//     stored again;
//   - an erasure marker per erased id with the erasure time: events of
//     that id received (Event.ReceivedAt) at or before it and inserted
//     afterwards — acknowledged by the spool but not yet flushed when the
//     erasure ran, or replayed from the spool later — are skipped as
//     duplicates.
//
// Events of the erased ids received after the erasure, with new eventIds,
// are stored normally: erasure is not a block list.

// Eraser is implemented by event stores that can erase a tracked user's
// data (both of Cairn's stores). Every implementation must pass
// storetest.RunErase.
type Eraser interface {
	// EraseUser erases userID's events and derived data (see above) and
	// records the tombstones and markers, with now as the erasure time.
	// Erasing an unknown user removes nothing but still records its
	// marker. Returns EINVALID for an empty userID, EUNAVAILABLE when the
	// store cannot be reached. A failed call may be retried: it then
	// completes the erasure.
	EraseUser(ctx context.Context, userID string, now time.Time) (EraseResult, error)
}

// EraseResult reports what Eraser.EraseUser removed.
type EraseResult struct {
	// Events is the number of events removed (the user's and those of its
	// merged anonymous ids).
	Events int64
	// AnonymousIDs are the anonymous ids that were merged into the user and
	// were erased with it, sorted; never nil.
	AnonymousIDs []string
}

// ErasedBefore reports whether e is covered by an erasure marker set at
// erasedAt: it was received at or before the erasure (millisecond
// precision, as stored).
func ErasedBefore(e *Event, erasedAt time.Time) bool {
	return e.ReceivedAt.UnixMilli() <= erasedAt.UnixMilli()
}
