// Package auth is Cairn's account and session domain: password hashing
// (scrypt in Better Auth's format), sessions (create, look up, expire,
// refresh), roles and the first-admin rule, the sign-up policy, and user
// listing for admins. It knows nothing of HTTP: package betterauth speaks
// the Better Auth wire protocol on top of it, and package http
// authenticates Cairn's own routes through cairn.Authenticator, which
// Service implements.
//
// The rules follow Better Auth 1.7's defaults, so that accounts migrated
// from a Better Auth database keep signing in: the same scrypt parameters
// and "saltHex:keyHex" hashes, 8 to 128 character passwords counted in
// UTF-16 code units, zod's email rule, 7-day sessions refreshed daily. A
// sign-in for an unknown email spends the time of a real one (a dummy
// hash), and passwords and tokens are never logged.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
)

// Session lifetimes, as Better Auth's defaults.
const (
	// SessionExpiresIn is how long a session lives without activity.
	SessionExpiresIn = 7 * 24 * time.Hour
	// SessionUpdateAge is how old a session's last refresh must be before
	// Refresh extends it.
	SessionUpdateAge = 24 * time.Hour
	// ShortSessionExpiresIn is the life of a session whose client asked
	// not to be remembered (rememberMe: false); it is never refreshed.
	ShortSessionExpiresIn = 24 * time.Hour
)

// SignupPolicy is the CAIRN_SIGNUP setting: whether anyone may create an
// account through the API.
type SignupPolicy string

// Sign-up policies.
const (
	// SignupDefault is open in development and closed in production.
	SignupDefault SignupPolicy = ""
	// SignupOpen lets anyone sign up.
	SignupOpen SignupPolicy = "open"
	// SignupClosed refuses sign-ups; accounts are made with `cairn users
	// create`.
	SignupClosed SignupPolicy = "closed"
)

// ParseSignupPolicy parses a CAIRN_SIGNUP value: "open", "closed", or ""
// for the default. It is the one place the setting is validated.
func ParseSignupPolicy(s string) (SignupPolicy, error) {
	switch p := SignupPolicy(s); p {
	case SignupDefault, SignupOpen, SignupClosed:
		return p, nil
	}
	return SignupDefault, errors.New("must be open or closed")
}

// Open reports whether sign-up is open under the policy.
func (p SignupPolicy) Open(production bool) bool {
	switch p {
	case SignupOpen:
		return true
	case SignupClosed:
		return false
	}
	return !production
}

// Config configures the account service.
type Config struct {
	// SignupOpen allows SignUp.
	SignupOpen bool
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// Logger receives the service's logs, already narrowed by the caller
	// (component=auth); nil discards them.
	Logger *slog.Logger
}

// Service manages accounts and sessions on a store. It is Cairn's
// cairn.Authenticator and cairn.UserLister.
type Service struct {
	store      cairn.AuthStore
	hasher     *Hasher
	signupOpen bool
	now        func() time.Time
	logger     *slog.Logger

	// signupMu makes "no user exists yet, so this one is admin" atomic
	// within the process.
	signupMu sync.Mutex
}

var (
	_ cairn.Authenticator = (*Service)(nil)
	_ cairn.UserLister    = (*Service)(nil)
)

// New returns the account service over store.
func New(store cairn.AuthStore, cfg Config) *Service {
	s := &Service{
		store:      store,
		hasher:     NewHasher(4),
		signupOpen: cfg.SignupOpen,
		now:        cfg.Now,
		logger:     cfg.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s
}

// SignupOpen reports whether SignUp is allowed.
func (s *Service) SignupOpen() bool { return s.signupOpen }

// Errors the service returns; callers test them with errors.Is. Each is a
// *cairn.Error, so cairn.ErrorCode gives its code.
var (
	// ErrNoSession: the token names no live session (unknown, expired,
	// or its user is gone).
	ErrNoSession = &cairn.Error{Code: cairn.EUNAUTHORIZED, Message: "Your session has expired or is invalid; sign in again."}
	// ErrNoCredentials: no session token was presented.
	ErrNoCredentials = &cairn.Error{Code: cairn.EUNAUTHORIZED, Message: "Sign in to use this endpoint."}
	// ErrInvalidCredentials: unknown email or wrong password (alike).
	ErrInvalidCredentials = &cairn.Error{Code: cairn.EUNAUTHORIZED, Message: "Invalid email or password."}
	// ErrSignupClosed: sign-up is closed by policy.
	ErrSignupClosed = &cairn.Error{Code: cairn.EFORBIDDEN, Message: "Sign-up is closed."}
	// ErrInvalidEmail: not an email address by zod's rule.
	ErrInvalidEmail = &cairn.Error{Code: cairn.EINVALID, Message: "Invalid email address."}
	// ErrPasswordTooShort: fewer than MinPasswordLength characters.
	ErrPasswordTooShort = &cairn.Error{Code: cairn.EINVALID, Message: fmt.Sprintf("Password too short: at least %d characters.", MinPasswordLength)}
	// ErrPasswordTooLong: more than MaxPasswordLength characters.
	ErrPasswordTooLong = &cairn.Error{Code: cairn.EINVALID, Message: fmt.Sprintf("Password too long: at most %d characters.", MaxPasswordLength)}
	// ErrEmailTaken: an account with that email exists.
	ErrEmailTaken = &cairn.Error{Code: cairn.ECONFLICT, Message: "An account with this email already exists."}
	// ErrCreateUser wraps a store failure to create a user.
	ErrCreateUser = &cairn.Error{Code: cairn.EINTERNAL, Message: "Failed to create user."}
	// ErrCreateSession wraps a store failure to create a session.
	ErrCreateSession = &cairn.Error{Code: cairn.EINTERNAL, Message: "Failed to create session."}
	// ErrNotAdmin: the operation is for admins only.
	ErrNotAdmin = &cairn.Error{Code: cairn.EFORBIDDEN, Message: "Only admins may list users."}
)

// Lookup returns the live session and user for a token. It returns
// ErrNoSession when there is none (an expired session is deleted), and the
// store's error, wrapped, when the store fails.
func (s *Service) Lookup(ctx context.Context, token string) (*cairn.Session, *cairn.User, error) {
	if token == "" {
		return nil, nil, ErrNoSession
	}
	sess, err := s.store.SessionByToken(ctx, token)
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return nil, nil, ErrNoSession
	} else if err != nil {
		return nil, nil, fmt.Errorf("find session: %w", err)
	}
	if sess.Expired(s.now()) {
		if err := s.store.DeleteSession(ctx, token); err != nil {
			s.logger.WarnContext(ctx, "delete expired session failed", "err", err)
		}
		return nil, nil, ErrNoSession
	}
	user, err := s.store.UserByID(ctx, sess.UserID)
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return nil, nil, ErrNoSession
	} else if err != nil {
		return nil, nil, fmt.Errorf("find user: %w", err)
	}
	return sess, user, nil
}

// Authenticate returns the principal of the live session whose token is
// token: EUNAUTHORIZED (ErrNoCredentials, ErrNoSession) when there is none,
// EUNAVAILABLE when the store cannot be reached, EINTERNAL for other store
// failures.
func (s *Service) Authenticate(ctx context.Context, token string) (*cairn.Principal, error) {
	if token == "" {
		return nil, ErrNoCredentials
	}
	sess, user, err := s.Lookup(ctx, token)
	switch {
	case errors.Is(err, ErrNoSession):
		return nil, ErrNoSession
	case cairn.ErrorCode(err) == cairn.EUNAVAILABLE:
		return nil, &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "The session store is unavailable.", Err: err}
	case err != nil:
		return nil, &cairn.Error{Code: cairn.EINTERNAL, Message: "Internal error.", Err: err}
	}
	return &cairn.Principal{UserID: user.ID, Email: user.Email, Name: user.Name, Role: RoleOf(user),
		User: user, Session: sess}, nil
}

// RoleOf returns a user's role; users without one (migrated from a
// database without roles) are members.
func RoleOf(u *cairn.User) string {
	if u.Role == "" {
		return cairn.RoleMember
	}
	return u.Role
}

// Client describes who a session is created for, as the session records
// it.
type Client struct {
	IPAddress string
	UserAgent string
	// DontRemember asks for a short session (ShortSessionExpiresIn) that
	// Refresh never extends.
	DontRemember bool
}

// newSession creates and stores a session for user.
func (s *Service) newSession(ctx context.Context, user *cairn.User, c Client) (*cairn.Session, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	life := SessionExpiresIn
	if c.DontRemember {
		life = ShortSessionExpiresIn
	}
	sess := &cairn.Session{Token: cairn.NewToken(), UserID: user.ID, ExpiresAt: now.Add(life),
		CreatedAt: now, UpdatedAt: now, IPAddress: c.IPAddress, UserAgent: c.UserAgent}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		s.logger.ErrorContext(ctx, "create session failed", "err", err)
		return nil, fmt.Errorf("%w: %w", ErrCreateSession, err)
	}
	return sess, nil
}

// Refresh extends sess to SessionExpiresIn from now when its last
// extension is SessionUpdateAge old or more, updating sess, and reports
// whether it did. Sessions created with Client.DontRemember must not be
// refreshed; the caller knows them (Better Auth marks them with a cookie).
func (s *Service) Refresh(ctx context.Context, sess *cairn.Session) (bool, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	if now.Before(sess.ExpiresAt.Add(-SessionExpiresIn).Add(SessionUpdateAge)) {
		return false, nil
	}
	expires := now.Add(SessionExpiresIn)
	if err := s.store.ExtendSession(ctx, sess.Token, expires, now); err != nil {
		return false, fmt.Errorf("extend session: %w", err)
	}
	sess.ExpiresAt, sess.UpdatedAt = expires, now
	return true, nil
}

// SignOut deletes the session with that token, if any.
func (s *Service) SignOut(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	if err := s.store.DeleteSession(ctx, token); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// ListUsers returns a page of users, oldest first, to the admin principal
// in ctx: ErrNotAdmin (EFORBIDDEN) for anyone else, EINVALID for a bad
// limit, EUNAVAILABLE when the store cannot be reached.
func (s *Service) ListUsers(ctx context.Context, q cairn.UserQuery) (*cairn.UserPage, error) {
	if !cairn.PrincipalFromContext(ctx).IsAdmin() {
		return nil, ErrNotAdmin
	}
	page, err := s.store.ListUsers(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return page, nil
}
