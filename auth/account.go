package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// SignUp is what a new account is created from.
type SignUp struct {
	Name     string
	Email    string // any case; stored lowercased
	Password string
	Image    string // "" for none
}

// SignUp creates a member account, or the admin when it is the very first
// account of the install, and signs it in. It returns ErrSignupClosed,
// ErrPasswordTooShort, ErrPasswordTooLong, ErrInvalidEmail (checked in that
// order), ErrEmailTaken, ErrCreateUser or ErrCreateSession (wrapping the
// store's error), or the store's error, wrapped, when looking up the email
// fails.
func (s *Service) SignUp(ctx context.Context, in SignUp, c Client) (*cairn.Session, *cairn.User, error) {
	switch {
	case !s.signupOpen:
		return nil, nil, ErrSignupClosed
	case PasswordLength(in.Password) < MinPasswordLength:
		return nil, nil, ErrPasswordTooShort
	case PasswordLength(in.Password) > MaxPasswordLength:
		return nil, nil, ErrPasswordTooLong
	case !ValidEmail(in.Email):
		return nil, nil, ErrInvalidEmail
	}
	email := strings.ToLower(in.Email)
	if _, err := s.store.UserByEmail(ctx, email); err == nil {
		return nil, nil, ErrEmailTaken
	} else if cairn.ErrorCode(err) != cairn.ENOTFOUND {
		return nil, nil, fmt.Errorf("find user: %w", err)
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, nil, fmt.Errorf("hash password: %w", err)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	user := &cairn.User{Name: in.Name, Email: email, Image: in.Image, Role: cairn.RoleMember, CreatedAt: now, UpdatedAt: now}
	account := &cairn.Account{ProviderID: cairn.ProviderCredential, Password: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.createFirstAdminOrMember(ctx, user, account); err != nil {
		if cairn.ErrorCode(err) == cairn.ECONFLICT {
			return nil, nil, ErrEmailTaken
		}
		s.logger.ErrorContext(ctx, "create user failed", "err", err)
		return nil, nil, fmt.Errorf("%w: %w", ErrCreateUser, err)
	}
	s.logger.InfoContext(ctx, "user signed up", "userId", user.ID, "role", user.Role)
	sess, err := s.newSession(ctx, user, c)
	if err != nil {
		return nil, nil, err
	}
	return sess, user, nil
}

// createFirstAdminOrMember stores a signed-up user, as admin when it is the
// very first account of the install (sign-up is necessarily open here).
func (s *Service) createFirstAdminOrMember(ctx context.Context, user *cairn.User, account *cairn.Account) error {
	s.signupMu.Lock()
	defer s.signupMu.Unlock()
	has, err := s.store.HasUsers(ctx)
	if err != nil {
		return err
	}
	if !has {
		user.Role = cairn.RoleAdmin
	}
	return s.store.CreateUser(ctx, user, account)
}

// SignIn checks an email and password and creates a session. It returns
// ErrInvalidEmail, ErrPasswordTooLong (there is no minimum at sign-in),
// ErrInvalidCredentials for an unknown email or a wrong password alike,
// ErrCreateSession, or the store's or hasher's error, wrapped.
func (s *Service) SignIn(ctx context.Context, email, password string, c Client) (*cairn.Session, *cairn.User, error) {
	switch {
	case !ValidEmail(email):
		return nil, nil, ErrInvalidEmail
	case PasswordLength(password) > MaxPasswordLength:
		return nil, nil, ErrPasswordTooLong
	}
	user, err := s.store.UserByEmail(ctx, strings.ToLower(email))
	var account *cairn.Account
	if err == nil {
		account, err = s.store.CredentialAccount(ctx, user.ID)
	}
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		if err := s.hasher.VerifyDummy(ctx, password); err != nil {
			return nil, nil, fmt.Errorf("hash password: %w", err)
		}
		return nil, nil, ErrInvalidCredentials
	} else if err != nil {
		return nil, nil, fmt.Errorf("find user: %w", err)
	}
	ok, err := s.hasher.Verify(ctx, account.Password, password)
	if err != nil {
		return nil, nil, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		s.logger.InfoContext(ctx, "sign-in refused: wrong password", "userId", user.ID)
		return nil, nil, ErrInvalidCredentials
	}
	sess, err := s.newSession(ctx, user, c)
	if err != nil {
		return nil, nil, err
	}
	return sess, user, nil
}

// CreateUser creates an account with the same rules as sign-up (valid
// email, password of 8 to 128 characters), for the command line. role is
// cairn.RoleAdmin or cairn.RoleMember. It returns EINVALID for bad input
// and ECONFLICT when the email is taken.
func CreateUser(ctx context.Context, store cairn.UserStore, email, name, password, role string, now time.Time) (*cairn.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	switch {
	case !ValidEmail(email):
		return nil, cairn.Errorf(cairn.EINVALID, "invalid email address %q", email)
	case strings.TrimSpace(name) == "":
		return nil, cairn.Errorf(cairn.EINVALID, "a name is required")
	case PasswordLength(password) < MinPasswordLength:
		return nil, cairn.Errorf(cairn.EINVALID, "password too short: at least %d characters", MinPasswordLength)
	case PasswordLength(password) > MaxPasswordLength:
		return nil, cairn.Errorf(cairn.EINVALID, "password too long: at most %d characters", MaxPasswordLength)
	case role != cairn.RoleAdmin && role != cairn.RoleMember:
		return nil, cairn.Errorf(cairn.EINVALID, "role must be %q or %q", cairn.RoleAdmin, cairn.RoleMember)
	}
	hash, err := NewHasher(1).Hash(ctx, password)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	now = now.UTC().Truncate(time.Millisecond)
	u := &cairn.User{Name: strings.TrimSpace(name), Email: email, Role: role, CreatedAt: now, UpdatedAt: now}
	a := &cairn.Account{ProviderID: cairn.ProviderCredential, Password: hash, CreatedAt: now, UpdatedAt: now}
	if err := store.CreateUser(ctx, u, a); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// PasswordLength is the length of a password as Better Auth measures it:
// UTF-16 code units, as JavaScript's .length.
func PasswordLength(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// ValidEmail reports whether s is an email address by the rule of zod's
// z.email(), which Better Auth uses.
func ValidEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.HasPrefix(local, ".") || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !isAlnum(c) && strings.IndexByte("_'+-.", c) < 0 {
			return false
		}
	}
	if c := local[len(local)-1]; !isAlnum(c) && c != '_' && c != '+' && c != '-' {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for i, l := range labels {
		if l == "" {
			return false
		}
		if i == len(labels)-1 {
			if len(l) < 2 {
				return false
			}
			for j := 0; j < len(l); j++ {
				if letter := 'a' <= l[j] && l[j] <= 'z' || 'A' <= l[j] && l[j] <= 'Z'; !letter {
					return false
				}
			}
			continue
		}
		if !isAlnum(l[0]) {
			return false
		}
		for j := 0; j < len(l); j++ {
			if !isAlnum(l[j]) && l[j] != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
