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
// (occurredAt descending, ties broken by eventId descending).
type JourneyQuery struct {
	// UserID is the user whose events are read.
	UserID string
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

// Before reports whether an event at (t, id) comes after the cursor in
// journey order, that is, sorts strictly lower in (occurredAt, eventId).
func (c *Cursor) Before(t time.Time, id string) bool {
	if t.Equal(c.OccurredAt) {
		return id < c.EventID
	}
	return t.Before(c.OccurredAt)
}

// Encode returns the cursor as an opaque URL-safe string.
func (c *Cursor) Encode() string {
	b := binary.AppendVarint(nil, c.OccurredAt.UnixMilli())
	b = append(b, c.EventID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses a string made by Cursor.Encode. It returns an EINVALID
// error for anything else.
func DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, Errorf(EINVALID, "invalid cursor")
	}
	ms, k := binary.Varint(b)
	if k <= 0 || ValidateEventID(string(b[k:])) != "" {
		return nil, Errorf(EINVALID, "invalid cursor")
	}
	return &Cursor{OccurredAt: time.UnixMilli(ms).UTC(), EventID: string(b[k:])}, nil
}

// JourneyPage is one page of a journey.
type JourneyPage struct {
	// Events are newest first.
	Events []Event
	// Next is the cursor for the following page, or nil on the last page.
	Next *Cursor
}
