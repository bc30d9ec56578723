package cairn

import (
	"context"
	"crypto/rand"
	"time"
)

// User is an account holder, shaped as Better Auth stores it, plus the role
// Better Auth's admin plugin adds. Times have millisecond precision (UTC).
type User struct {
	// ID is assigned by the store: 32 random [A-Za-z0-9] characters in the
	// embedded store, a 24-character ObjectId hex string in MongoDB.
	ID            string
	Name          string
	Email         string // always lowercase
	EmailVerified bool
	Image         string // "" when the user has none (JSON null)
	// Role is RoleAdmin or RoleMember; "" (users migrated from a database
	// without roles) counts as RoleMember.
	Role      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// IsAdmin reports whether the user has the admin role.
func (u *User) IsAdmin() bool { return u != nil && u.Role == RoleAdmin }

// ProviderCredential is the Account.ProviderID of an email/password account.
const ProviderCredential = "credential"

// Account links a user to a way of signing in. Cairn only uses the
// "credential" provider, whose Password holds the scrypt hash
// ("saltHex:keyHex") and whose AccountID equals the user's id.
type Account struct {
	ID         string // assigned by the store
	AccountID  string
	ProviderID string
	UserID     string
	Password   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Session is a signed-in browser or client. Token is the secret the client
// presents (signed in the cookie); it is unique.
type Session struct {
	ID        string // assigned by the store
	Token     string
	UserID    string
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	IPAddress string
	UserAgent string
}

// Expired reports whether the session has expired at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.ExpiresAt) }

// Limits on user listings.
const (
	DefaultUserListLimit = 100
	MaxUserListLimit     = 1000
)

// UserQuery selects a page of users, oldest first (createdAt ascending,
// ties broken by id ascending).
type UserQuery struct {
	// Limit is the page size, 1..MaxUserListLimit.
	Limit int
	// After, if set, starts the page strictly after this position.
	After *UserCursor
}

// UserCursor is a position in the user listing: the sort key of the last
// user of the previous page.
type UserCursor struct {
	CreatedAt time.Time
	ID        string
}

// Encode returns the cursor as an opaque URL-safe string.
func (c *UserCursor) Encode() string { return encodeCursor(c.CreatedAt, c.ID) }

// DecodeUserCursor parses a string made by UserCursor.Encode. It returns an
// EINVALID error for anything else.
func DecodeUserCursor(s string) (*UserCursor, error) {
	t, id, ok := decodeCursor(s)
	if !ok || id == "" || len(id) > 64 {
		return nil, Errorf(EINVALID, "invalid cursor")
	}
	return &UserCursor{CreatedAt: t, ID: id}, nil
}

// UserPage is one page of users.
type UserPage struct {
	Users []User
	// Next is the position to pass as UserQuery.After for the following
	// page, or nil on the last page.
	Next *UserCursor
}

// UserStore keeps users and their credential accounts. Every
// implementation must pass the conformance suite in package storetest.
type UserStore interface {
	// CreateUser stores a new user and its credential account together (both
	// or neither). It assigns user.ID, account.ID, and sets account.UserID
	// and account.AccountID to the user's id. The email must already be
	// lowercase. Returns ECONFLICT when a user with that email exists,
	// EINVALID for an empty email, EUNAVAILABLE when the store cannot be
	// reached.
	CreateUser(ctx context.Context, user *User, account *Account) error

	// UserByID returns the user with that id. Returns ENOTFOUND when there
	// is none (including a malformed id), EUNAVAILABLE when the store cannot
	// be reached.
	UserByID(ctx context.Context, id string) (*User, error)

	// UserByEmail returns the user with that (lowercase) email. Returns
	// ENOTFOUND when there is none, EUNAVAILABLE when the store cannot be
	// reached.
	UserByEmail(ctx context.Context, email string) (*User, error)

	// HasUsers reports whether at least one user exists. Returns
	// EUNAVAILABLE when the store cannot be reached.
	HasUsers(ctx context.Context) (bool, error)

	// ListUsers returns a page of users, oldest first (createdAt, then id).
	// Returns EINVALID for
	// a limit outside 1..MaxUserListLimit, EUNAVAILABLE when the store cannot
	// be reached.
	ListUsers(ctx context.Context, q UserQuery) (*UserPage, error)

	// SetUserRole changes a user's role and updatedAt. Returns ENOTFOUND
	// for an unknown user, EUNAVAILABLE when the store cannot be reached.
	SetUserRole(ctx context.Context, id, role string, now time.Time) error

	// CredentialAccount returns the user's "credential" account. Returns
	// ENOTFOUND when the user has none, EUNAVAILABLE when the store cannot
	// be reached.
	CredentialAccount(ctx context.Context, userID string) (*Account, error)
}

// SessionStore keeps sessions. Every implementation must pass the
// conformance suite in package storetest.
type SessionStore interface {
	// CreateSession stores a new session and assigns s.ID. Returns
	// ECONFLICT when the token is already used, EUNAVAILABLE when the store
	// cannot be reached.
	CreateSession(ctx context.Context, s *Session) error

	// SessionByToken returns the session with that token, expired or not.
	// Returns ENOTFOUND when there is none, EUNAVAILABLE when the store
	// cannot be reached.
	SessionByToken(ctx context.Context, token string) (*Session, error)

	// ExtendSession sets a session's expiresAt and updatedAt. Returns
	// ENOTFOUND when there is no session with that token, EUNAVAILABLE when
	// the store cannot be reached.
	ExtendSession(ctx context.Context, token string, expiresAt, updatedAt time.Time) error

	// DeleteSession removes the session with that token; removing an
	// unknown token is not an error. Returns EUNAVAILABLE when the store
	// cannot be reached.
	DeleteSession(ctx context.Context, token string) error

	// DeleteUserSessions removes every session of a user and returns how
	// many there were. Returns EUNAVAILABLE when the store cannot be
	// reached.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

// AuthStore is what the authentication service needs from a store: the
// embedded store and MongoDB both implement it.
type AuthStore interface {
	UserStore
	SessionStore
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewToken returns 32 random characters of [A-Za-z0-9] from crypto/rand, as
// Better Auth generates session tokens and ids.
func NewToken() string {
	const n = 32
	out := make([]byte, 0, n)
	buf := make([]byte, 48)
	for len(out) < n {
		rand.Read(buf) // never returns an error (Go 1.24+)
		for _, b := range buf {
			// 62*4 = 248: reject 248..255 so every character is equally likely.
			if b < 248 && len(out) < n {
				out = append(out, tokenAlphabet[b%62])
			}
		}
	}
	return string(out)
}
