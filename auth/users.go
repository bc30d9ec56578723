package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// CreateUser creates an account with the same rules as sign-up (valid
// email, password of 8 to 128 characters), for the command line. role is
// cairn.RoleAdmin or cairn.RoleMember. It returns EINVALID for bad input
// and ECONFLICT when the email is taken.
func CreateUser(ctx context.Context, store cairn.UserStore, email, name, password, role string, now time.Time) (*cairn.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	switch {
	case !validEmail(email):
		return nil, cairn.Errorf(cairn.EINVALID, "invalid email address %q", email)
	case strings.TrimSpace(name) == "":
		return nil, cairn.Errorf(cairn.EINVALID, "a name is required")
	case jsLen(password) < MinPasswordLength:
		return nil, cairn.Errorf(cairn.EINVALID, "password too short: at least %d characters", MinPasswordLength)
	case jsLen(password) > MaxPasswordLength:
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
