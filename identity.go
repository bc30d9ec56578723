package cairn

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"
)

// Identity stitching and tracked users.
//
// # Links
//
// A newly stored event whose AnonymousID is set and differs from its
// UserID is a link candidate: "AnonymousID is UserID". Stores record links
// only for events they newly store (under the same dedup decision that
// stores the event), so a re-delivered event never changes anything.
//
// Conflicts follow Mixpanel's ID merge ("an anonymous/device id can be
// merged into only one user id; once it is, links to other user ids are
// ignored"; Amplitude and Segment Personas behave alike): an anonymous id
// is merged into the FIRST user it was linked to. "First" is decided by the
// linking event's sort key, (occurredAt, eventId) ascending, not by arrival
// order, so replays and out-of-order delivery give the same answer: when a
// link with an earlier key arrives later, it takes the anonymous id over.
// The final state depends only on the set of stored events. Links that
// lose are kept as history (they never merge anything) and counted in
// InsertResult.LinkConflicts; stores log them.
//
// Links are one level deep: the events of an anonymous id A merged into
// user U are those stored with UserID == A. Links are not transitive (if U
// is itself linked as an anonymous id to V, V's journey does not include
// A's events).
//
// # Merged journeys
//
// EventStore.Journey returns, for JourneyQuery.UserID, the events stored
// under that id and under every anonymous id merged into it (at most
// MaxMergedIDs of them), in the usual order and with the usual cursor. The
// page's MergedIDs names the anonymous ids read.
//
// # Tracked users
//
// A tracked user is a person being tracked (not an account): one record per
// Event.UserID, maintained by the store as it inserts new events — see
// TrackedUser.

// LogLinkConflicts counts the links that lose: the events of links (newly
// stored link candidates) whose anonymous id winners (anonymous id → the
// user it is merged into, after the batch) gives to another user. It logs
// the first at warning level with its ids, and the count when there are
// more, and returns the count (InsertResult.LinkConflicts).
func LogLinkConflicts(log *slog.Logger, links []*Event, winners map[string]string) int {
	conflicts := 0
	for _, e := range links {
		if w := winners[e.AnonymousID]; w != e.UserID {
			conflicts++
			if conflicts == 1 {
				log.Warn("identity link ignored: the anonymous id is merged into another user",
					"anonymous_id", e.AnonymousID, "user_id", e.UserID, "merged_into", w, "event_id", e.EventID)
			}
		}
	}
	if conflicts > 1 {
		log.Warn("identity links ignored", "count", conflicts)
	}
	return conflicts
}

// MaxMergedIDs is the most anonymous ids a journey merges into one user's
// events: the MaxMergedIDs smallest (byte order) of the ids merged into it.
const MaxMergedIDs = 100

// IdentifyType is the event type of a Segment identify call. The "traits"
// object of an $identify event's payload updates the user's traits.
const IdentifyType = "$identify"

// Tracked-user listing limits.
const (
	DefaultTrackedUserLimit = 100
	MaxTrackedUserLimit     = 1000
)

// TrackedUser is what a store knows about one tracked user (an
// Event.UserID: a signed-in user id or, for events sent before or without
// sign-in, an anonymous id). Only events newly stored count; duplicates
// never do. Counts are per UserID: the events of merged anonymous ids count
// in their own records, not in the user's.
type TrackedUser struct {
	// UserID is the tracked id.
	UserID string
	// FirstSeen and LastSeen are the smallest and largest occurredAt of the
	// user's events.
	FirstSeen, LastSeen time.Time
	// EventCount is the number of the user's stored events.
	EventCount int64
	// SessionCount is the number of distinct non-empty sessionIds among
	// them (exact).
	SessionCount int64
	// Traits are the user's traits: for each key of the "traits" object of
	// the user's $identify events' payloads, the value from the event with
	// the latest (occurredAt, eventId). Never nil. Keys that are empty are
	// ignored.
	Traits map[string]json.RawMessage
	// AnonymousIDs are the anonymous ids merged into this user (see the
	// Links rule), sorted; never nil.
	AnonymousIDs []string
}

// TrackedUserQuery selects a page of tracked users, by UserID ascending
// (byte order).
type TrackedUserQuery struct {
	// Prefix keeps only users whose UserID starts with it ("" for all).
	Prefix string
	// Limit is the page size, 1..MaxTrackedUserLimit.
	Limit int
	// After, if not "", starts the page strictly after this UserID: pass
	// the previous page's Next.
	After string
}

// TrackedUserPage is one page of tracked users.
type TrackedUserPage struct {
	// Users are by UserID ascending; never nil.
	Users []TrackedUser
	// Next is the UserID to pass as the next query's After, or "" on the
	// last page. It is a plain user id; the HTTP layer may encode it.
	Next string
}

// TrackedUserStore is implemented by event stores that maintain identity
// links and tracked users as they insert events (both of Cairn's stores).
// Every implementation must pass storetest.RunTrackedUsers.
type TrackedUserStore interface {
	// TrackedUser returns the record of userID. Returns ENOTFOUND when no
	// event of userID is stored, EUNAVAILABLE when the store cannot be
	// reached.
	TrackedUser(ctx context.Context, userID string) (*TrackedUser, error)

	// TrackedUsers returns a page of tracked users. Returns EINVALID for a
	// Limit out of range, EUNAVAILABLE when the store cannot be reached.
	TrackedUsers(ctx context.Context, q TrackedUserQuery) (*TrackedUserPage, error)

	// LinkedUser returns the user the anonymous id is merged into, or ""
	// when it is not linked. Returns EUNAVAILABLE when the store cannot be
	// reached.
	LinkedUser(ctx context.Context, anonymousID string) (string, error)
}

// Validate checks the query's Limit: EINVALID when it is out of range.
func (q *TrackedUserQuery) Validate() error {
	if q.Limit <= 0 || q.Limit > MaxTrackedUserLimit {
		return Errorf(EINVALID, "limit must be between 1 and %d", MaxTrackedUserLimit)
	}
	return nil
}

// LinkCandidate reports whether storing e links an anonymous id to its
// user: AnonymousID and UserID both set and different.
func (e *Event) LinkCandidate() bool {
	return e.AnonymousID != "" && e.UserID != "" && e.AnonymousID != e.UserID
}

// CompareEventKey orders events by (occurredAt, eventId) ascending: the
// order that decides which link is first and which trait value is latest.
func CompareEventKey(aAt time.Time, aID string, bAt time.Time, bID string) int {
	am, bm := aAt.UnixMilli(), bAt.UnixMilli()
	switch {
	case am < bm:
		return -1
	case am > bm:
		return 1
	}
	return strings.Compare(aID, bID)
}

// EventTraits returns the members of the "traits" object of an $identify
// event's payload, each value compacted JSON, or nil when e is not an
// $identify event or has no traits object. Empty keys are dropped; a key
// given twice keeps its last value.
func EventTraits(e *Event) map[string]json.RawMessage {
	if e.Type != IdentifyType || len(e.Payload) == 0 || !bytes.Contains(e.Payload, []byte(`"traits"`)) {
		return nil
	}
	var p struct {
		Traits json.RawMessage `json:"traits"`
	}
	if json.Unmarshal(e.Payload, &p) != nil || len(p.Traits) == 0 || p.Traits[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(p.Traits, &m) != nil {
		return nil
	}
	delete(m, "")
	if len(m) == 0 {
		return nil
	}
	for k, v := range m {
		m[k] = compactJSON(v)
	}
	return m
}
