package cairn

import (
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Journey query limits.
const (
	DefaultJourneyLimit = 100
	MaxJourneyLimit     = 1000
)

// JourneyQuery selects a page of one user's events, newest first
// (occurredAt descending, ties broken by eventId descending). The events
// of every anonymous id merged into the user are included (see identity.go).
type JourneyQuery struct {
	// UserID is the user whose events are read.
	UserID string
	// Unmerged reads only the events stored under UserID itself, without
	// those of the anonymous ids merged into it.
	Unmerged bool
	// From and To bound occurredAt inclusively; zero means unbounded.
	From, To time.Time
	// Limit is the page size, 1..MaxJourneyLimit.
	Limit int
	// After, if set, starts the page strictly after this position.
	After *Cursor
}

// Cursor is a position in a journey: the sort key of the last event of the
// previous page.
type Cursor struct {
	OccurredAt time.Time
	EventID    string
}

// Encode returns the cursor as an opaque URL-safe string.
func (c *Cursor) Encode() string { return encodeCursor(c.OccurredAt, c.EventID) }

// DecodeCursor parses a string made by Cursor.Encode. It returns an EINVALID
// error for anything else.
func DecodeCursor(s string) (*Cursor, error) {
	t, id, ok := decodeCursor(s)
	if !ok || ValidateEventID(id) != "" {
		return nil, Errorf(EINVALID, "invalid cursor")
	}
	return &Cursor{OccurredAt: t, EventID: id}, nil
}

// encodeCursor encodes a (time, id) sort key as an opaque URL-safe string:
// base64url(varint(unix ms) || id). Journey and user-listing cursors share it.
func encodeCursor(t time.Time, id string) string {
	b := binary.AppendVarint(nil, t.UnixMilli())
	b = append(b, id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor is the inverse of encodeCursor; callers validate the id.
func decodeCursor(s string) (time.Time, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", false
	}
	ms, k := binary.Varint(b)
	if k <= 0 {
		return time.Time{}, "", false
	}
	return time.UnixMilli(ms).UTC(), string(b[k:]), true
}

// JourneyPage is one page of a journey.
type JourneyPage struct {
	// Events are newest first.
	Events []Event
	// Next is the cursor for the following page, or nil on the last page.
	Next *Cursor
	// MergedIDs are the anonymous ids (other than the query's UserID)
	// whose events were merged into this page's query, sorted; nil when
	// none. A link made between two pages can add ids: the next page then
	// includes their events older than the cursor (events already returned
	// never repeat, newer ones of the new ids are not shown).
	MergedIDs []string
}
