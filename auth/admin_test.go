package auth_test

import (
	"context"
	"testing"

	"github.com/cairn-dev/cairn"
)

// TestAccountAdmin: role changes and account creation are for admins only,
// with the sign-up rules, whatever the sign-up policy; an admin cannot
// demote themselves.
func TestAccountAdmin(t *testing.T) {
	e := newEnv(t, false) // sign-up closed: admins still create accounts
	adminUser, err := e.svc.CreateAccount(as(t.Context(), "boot", cairn.RoleAdmin), cairn.NewAccount{
		Email: "Admin@Example.com", Name: "Admin", Password: "password-1", Role: cairn.RoleAdmin})
	if err != nil || adminUser.Role != cairn.RoleAdmin || adminUser.Email != "admin@example.com" {
		t.Fatalf("CreateAccount: %+v, %v", adminUser, err)
	}
	admin := as(t.Context(), adminUser.ID, cairn.RoleAdmin)
	member, err := e.svc.CreateAccount(admin, cairn.NewAccount{Email: "m@example.com", Name: "M", Password: "password-1", Role: cairn.RoleMember})
	if err != nil {
		t.Fatal(err)
	}
	memberCtx := as(t.Context(), member.ID, cairn.RoleMember)
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"MemberCreates", func() error {
			_, err := e.svc.CreateAccount(memberCtx, cairn.NewAccount{Email: "x@example.com", Name: "X", Password: "password-1", Role: cairn.RoleMember})
			return err
		}(), cairn.EFORBIDDEN},
		{"ErrTaken", func() error {
			_, err := e.svc.CreateAccount(admin, cairn.NewAccount{Email: "m@example.com", Name: "M", Password: "password-1", Role: cairn.RoleMember})
			return err
		}(), cairn.ECONFLICT},
		{"ErrShortPassword", func() error {
			_, err := e.svc.CreateAccount(admin, cairn.NewAccount{Email: "s@example.com", Name: "S", Password: "short", Role: cairn.RoleMember})
			return err
		}(), cairn.EINVALID},
		{"MemberSetsRole", e.svc.SetUserRole(memberCtx, member.ID, cairn.RoleAdmin), cairn.EFORBIDDEN},
		{"ErrRole", e.svc.SetUserRole(admin, member.ID, "owner"), cairn.EINVALID},
		{"ErrSelfDemote", e.svc.SetUserRole(admin, adminUser.ID, cairn.RoleMember), cairn.EFORBIDDEN},
		{"ErrUnknownUser", e.svc.SetUserRole(admin, "nope", cairn.RoleAdmin), cairn.ENOTFOUND},
		{"Promote", e.svc.SetUserRole(admin, member.ID, cairn.RoleAdmin), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cairn.ErrorCode(tc.err); (tc.code == "" && tc.err != nil) || (tc.code != "" && got != tc.code) {
				t.Errorf("error %v (%s), want code %q", tc.err, got, tc.code)
			}
		})
	}
	if u, err := e.store.UserByID(t.Context(), member.ID); err != nil || u.Role != cairn.RoleAdmin {
		t.Errorf("after Promote: %+v, %v", u, err)
	}
	if has, err := e.svc.HasUsers(t.Context()); !has || err != nil {
		t.Errorf("HasUsers: %v, %v", has, err)
	}
}

// as returns ctx carrying a principal with that id and role.
func as(ctx context.Context, id, role string) context.Context {
	return cairn.NewContextWithPrincipal(ctx, &cairn.Principal{UserID: id, Role: role})
}
