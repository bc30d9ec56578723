package cairn

import (
	"context"
	"time"
)

// Tracked-user listing limits.
const (
	DefaultTrackedUserLimit = 50
	MaxTrackedUserLimit     = 500
)

// TrackedUser is a user seen in events (not an account): what the console's
// Users view lists.
type TrackedUser struct {
	UserID    string
	FirstSeen time.Time
	LastSeen  time.Time
	Events    int64
	Sessions  int64
}

// TrackedUserQuery selects a page of tracked users in userId order.
type TrackedUserQuery struct {
	// Prefix keeps the users whose id starts with it ("" for all).
	Prefix string
	// Limit is the page size, 1..MaxTrackedUserLimit.
	Limit int
	// After, if not "", starts the page strictly after this opaque cursor
	// (a TrackedUserPage.Next).
	After string
}

// TrackedUserPage is one page of tracked users.
type TrackedUserPage struct {
	Users []TrackedUser
	// Next is the cursor of the following page, or "" on the last page.
	Next string
}

// TrackedUserStore lists the users seen in events, from an index the store
// maintains at ingest.
type TrackedUserStore interface {
	// TrackedUsers returns a page of tracked users in userId order.
	// Returns EINVALID for a bad limit or cursor, EUNAVAILABLE when the
	// store cannot be reached.
	TrackedUsers(ctx context.Context, q TrackedUserQuery) (*TrackedUserPage, error)
}
