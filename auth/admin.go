package auth

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn"
)

var _ cairn.AccountAdmin = (*Service)(nil)

// errNotAccountAdmin refuses account management to non-admins.
var errNotAccountAdmin = &cairn.Error{Code: cairn.EFORBIDDEN, Message: "Only admins may manage accounts."}

// SetUserRole changes a user's role for the admin principal in ctx. It
// returns EFORBIDDEN for anyone else, EFORBIDDEN when admins would demote
// themselves (so an install always keeps an admin who can undo it),
// EINVALID for an unknown role, ENOTFOUND for an unknown user, and the
// store's error, wrapped.
func (s *Service) SetUserRole(ctx context.Context, userID, role string) error {
	p := cairn.PrincipalFromContext(ctx)
	switch {
	case !p.IsAdmin():
		return errNotAccountAdmin
	case role != cairn.RoleAdmin && role != cairn.RoleMember:
		return cairn.Errorf(cairn.EINVALID, "role must be %q or %q", cairn.RoleAdmin, cairn.RoleMember)
	case userID == p.UserID && role != cairn.RoleAdmin:
		return cairn.Errorf(cairn.EFORBIDDEN, "Admins cannot remove their own admin role; ask another admin.")
	}
	if err := s.store.SetUserRole(ctx, userID, role, s.now()); err != nil {
		return fmt.Errorf("set role: %w", err)
	}
	s.logger.InfoContext(ctx, "role changed", "userId", userID, "role", role, "by", p.UserID)
	return nil
}

// CreateAccount creates an account for the admin principal in ctx, with
// CreateUser's rules, whatever the sign-up policy. It returns EFORBIDDEN
// for anyone else, EINVALID for bad input, ECONFLICT when the email is
// taken.
func (s *Service) CreateAccount(ctx context.Context, a cairn.NewAccount) (*cairn.User, error) {
	p := cairn.PrincipalFromContext(ctx)
	if !p.IsAdmin() {
		return nil, errNotAccountAdmin
	}
	u, err := CreateUser(ctx, s.store, a.Email, a.Name, a.Password, a.Role, s.now())
	if err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "account created", "userId", u.ID, "role", u.Role, "by", p.UserID)
	return u, nil
}

// HasUsers reports whether any account exists.
func (s *Service) HasUsers(ctx context.Context) (bool, error) {
	has, err := s.store.HasUsers(ctx)
	if err != nil {
		return false, fmt.Errorf("has users: %w", err)
	}
	return has, nil
}
