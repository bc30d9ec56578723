package storetest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// TestAuthStore runs the conformance suite for cairn.AuthStore (users,
// credential accounts and sessions). open must return a new, empty store
// for each call and arrange its cleanup.
func TestAuthStore(t *testing.T, open func(t *testing.T) cairn.AuthStore) {
	t.Run("CreateAndFindUser", func(t *testing.T) { testCreateAndFindUser(t, open(t)) })
	t.Run("ErrDuplicateEmail", func(t *testing.T) { testDuplicateEmail(t, open(t)) })
	t.Run("ConcurrentSameEmail", func(t *testing.T) { testConcurrentSameEmail(t, open(t)) })
	t.Run("ErrUnknownUser", func(t *testing.T) { testUnknownUser(t, open(t)) })
	t.Run("HasUsers", func(t *testing.T) { testHasUsers(t, open(t)) })
	t.Run("ListUsers", func(t *testing.T) { testListUsers(t, open(t)) })
	t.Run("SetUserRole", func(t *testing.T) { testSetUserRole(t, open(t)) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open(t)) })
	t.Run("DeleteUserSessions", func(t *testing.T) { testDeleteUserSessions(t, open(t)) })
}

// authTime is a fixed millisecond-precision instant for the suite.
var authTime = time.Date(2026, 11, 25, 18, 59, 35, 915_000_000, time.UTC)

func newUser(email string, at time.Time) (*cairn.User, *cairn.Account) {
	u := &cairn.User{Name: "Name of " + email, Email: email, Role: cairn.RoleMember, CreatedAt: at, UpdatedAt: at}
	a := &cairn.Account{ProviderID: cairn.ProviderCredential, Password: "d6f3f35e70551226a7811f02d33fea26:dcac1c", CreatedAt: at, UpdatedAt: at}
	return u, a
}

func mustCreateUser(t *testing.T, s cairn.AuthStore, email string) *cairn.User {
	t.Helper()
	u, a := newUser(email, authTime)
	if err := s.CreateUser(t.Context(), u, a); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cairn.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (%v), want %q", what, got, err, code)
	}
}

func equalUser(a, b *cairn.User) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Email == b.Email && a.EmailVerified == b.EmailVerified &&
		a.Image == b.Image && a.Role == b.Role && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testCreateAndFindUser(t *testing.T, s cairn.AuthStore) {
	ctx := t.Context()
	u, a := newUser("alice@example.com", authTime)
	u.Image = "https://img.example/alice.png"
	u.EmailVerified = true
	u.Role = cairn.RoleAdmin
	if err := s.CreateUser(ctx, u, a); err != nil {
		t.Fatal(err)
	}
	if u.ID == "" || a.ID == "" {
		t.Fatalf("ids not assigned: user %q account %q", u.ID, a.ID)
	}
	if a.UserID != u.ID || a.AccountID != u.ID {
		t.Fatalf("account userId %q accountId %q, want both %q", a.UserID, a.AccountID, u.ID)
	}
	for name, find := range map[string]func() (*cairn.User, error){
		"UserByID":    func() (*cairn.User, error) { return s.UserByID(ctx, u.ID) },
		"UserByEmail": func() (*cairn.User, error) { return s.UserByEmail(ctx, "alice@example.com") },
	} {
		got, err := find()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !equalUser(got, u) {
			t.Fatalf("%s = %+v, want %+v", name, got, u)
		}
	}
	acc, err := s.CredentialAccount(ctx, u.ID)
	if err != nil {
		t.Fatalf("CredentialAccount: %v", err)
	}
	if acc.ID != a.ID || acc.Password != a.Password || acc.ProviderID != cairn.ProviderCredential ||
		acc.UserID != u.ID || acc.AccountID != u.ID || !acc.CreatedAt.Equal(authTime) {
		t.Fatalf("CredentialAccount = %+v, want %+v", acc, a)
	}
	// A second user gets a different id.
	other := mustCreateUser(t, s, "bob@example.com")
	if other.ID == u.ID {
		t.Fatalf("two users share id %q", u.ID)
	}
}

func testDuplicateEmail(t *testing.T, s cairn.AuthStore) {
	first := mustCreateUser(t, s, "alice@example.com")
	u, a := newUser("alice@example.com", authTime.Add(time.Hour))
	u.Name = "Impostor"
	wantCode(t, "CreateUser duplicate", s.CreateUser(t.Context(), u, a), cairn.ECONFLICT)
	got, err := s.UserByEmail(t.Context(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != first.ID || got.Name != first.Name {
		t.Fatalf("after duplicate, user = %+v, want the first one %+v", got, first)
	}
	page, err := s.ListUsers(t.Context(), cairn.UserQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Users) != 1 {
		t.Fatalf("after duplicate, %d users, want 1", len(page.Users))
	}
}

func testConcurrentSameEmail(t *testing.T, s cairn.AuthStore) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, a := newUser("race@example.com", authTime)
			errs[i] = s.CreateUser(context.WithoutCancel(t.Context()), u, a)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantCode(t, "concurrent CreateUser", err, cairn.ECONFLICT)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent sign-ups with one email succeeded, want 1", ok, n)
	}
}

func testUnknownUser(t *testing.T, s cairn.AuthStore) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "alice@example.com")
	_, err := s.UserByEmail(ctx, "nobody@example.com")
	wantCode(t, "UserByEmail unknown", err, cairn.ENOTFOUND)
	for _, id := range []string{"0123456789abcdef01234567", "unknownunknownunknownunknown1234", "not an id", ""} {
		if id == u.ID {
			continue
		}
		_, err = s.UserByID(ctx, id)
		wantCode(t, fmt.Sprintf("UserByID(%q)", id), err, cairn.ENOTFOUND)
		_, err = s.CredentialAccount(ctx, id)
		wantCode(t, fmt.Sprintf("CredentialAccount(%q)", id), err, cairn.ENOTFOUND)
	}
}

func testHasUsers(t *testing.T, s cairn.AuthStore) {
	has, err := s.HasUsers(t.Context())
	if err != nil || has {
		t.Fatalf("empty store: HasUsers = %v, %v; want false, nil", has, err)
	}
	mustCreateUser(t, s, "alice@example.com")
	has, err = s.HasUsers(t.Context())
	if err != nil || !has {
		t.Fatalf("after a user: HasUsers = %v, %v; want true, nil", has, err)
	}
}

func testListUsers(t *testing.T, s cairn.AuthStore) {
	ctx := t.Context()
	// Created out of order, two sharing a createdAt: the listing is by
	// createdAt, then id.
	type key struct {
		at time.Time
		id string
	}
	var want []key
	for i, offset := range []time.Duration{3, 1, 5, 1, 4, 2, 6} {
		u, a := newUser(fmt.Sprintf("user%d@example.com", i), authTime.Add(offset*time.Minute))
		if err := s.CreateUser(ctx, u, a); err != nil {
			t.Fatal(err)
		}
		want = append(want, key{u.CreatedAt, u.ID})
	}
	sort.Slice(want, func(i, j int) bool {
		if !want[i].at.Equal(want[j].at) {
			return want[i].at.Before(want[j].at)
		}
		return want[i].id < want[j].id
	})
	var got []key
	q := cairn.UserQuery{Limit: 3}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		page, err := s.ListUsers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Users) > 3 {
			t.Fatalf("page of %d users, limit 3", len(page.Users))
		}
		for _, u := range page.Users {
			got = append(got, key{u.CreatedAt, u.ID})
			if u.Email == "" {
				t.Fatalf("listed user lacks fields: %+v", u)
			}
		}
		if page.Next == nil {
			break
		}
		// The cursor survives encoding, as it does through the API.
		next, err := cairn.DecodeUserCursor(page.Next.Encode())
		if err != nil {
			t.Fatal(err)
		}
		q.After = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v (all, oldest first)", got, want)
	}
	for _, limit := range []int{0, -1, cairn.MaxUserListLimit + 1} {
		_, err := s.ListUsers(ctx, cairn.UserQuery{Limit: limit})
		wantCode(t, fmt.Sprintf("ListUsers limit %d", limit), err, cairn.EINVALID)
	}
	last := want[len(want)-1]
	page, err := s.ListUsers(ctx, cairn.UserQuery{Limit: 10, After: &cairn.UserCursor{CreatedAt: last.at, ID: last.id}})
	if err != nil || len(page.Users) != 0 || page.Next != nil {
		t.Fatalf("after the last user: %+v, %v; want an empty last page", page, err)
	}
}

func testSetUserRole(t *testing.T, s cairn.AuthStore) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "alice@example.com")
	later := authTime.Add(time.Hour)
	if err := s.SetUserRole(ctx, u.ID, cairn.RoleAdmin, later); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != cairn.RoleAdmin || !got.UpdatedAt.Equal(later) || !got.CreatedAt.Equal(authTime) {
		t.Fatalf("after SetUserRole: %+v", got)
	}
	wantCode(t, "SetUserRole unknown", s.SetUserRole(ctx, "0123456789abcdef01234567", cairn.RoleAdmin, later), cairn.ENOTFOUND)
}

func newSession(userID string) *cairn.Session {
	return &cairn.Session{Token: cairn.NewToken(), UserID: userID, ExpiresAt: authTime.Add(7 * 24 * time.Hour),
		CreatedAt: authTime, UpdatedAt: authTime, IPAddress: "203.0.113.7", UserAgent: "storetest/1.0"}
}

func testSessions(t *testing.T, s cairn.AuthStore) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "alice@example.com")
	sess := newSession(u.ID)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if sess.ID == "" {
		t.Fatal("session id not assigned")
	}
	got, err := s.SessionByToken(ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != sess.ID || got.Token != sess.Token || got.UserID != sess.UserID ||
		!got.ExpiresAt.Equal(sess.ExpiresAt) || !got.CreatedAt.Equal(sess.CreatedAt) || !got.UpdatedAt.Equal(sess.UpdatedAt) ||
		got.IPAddress != sess.IPAddress || got.UserAgent != sess.UserAgent {
		t.Fatalf("SessionByToken = %+v, want %+v", got, sess)
	}
	dup := newSession(u.ID)
	dup.Token = sess.Token
	wantCode(t, "CreateSession duplicate token", s.CreateSession(ctx, dup), cairn.ECONFLICT)

	_, err = s.SessionByToken(ctx, "unknowntokenunknowntokenunknown1")
	wantCode(t, "SessionByToken unknown", err, cairn.ENOTFOUND)

	exp, upd := authTime.Add(9*24*time.Hour), authTime.Add(2*24*time.Hour)
	if err := s.ExtendSession(ctx, sess.Token, exp, upd); err != nil {
		t.Fatal(err)
	}
	got, err = s.SessionByToken(ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ExpiresAt.Equal(exp) || !got.UpdatedAt.Equal(upd) || !got.CreatedAt.Equal(authTime) {
		t.Fatalf("after ExtendSession: %+v", got)
	}
	wantCode(t, "ExtendSession unknown", s.ExtendSession(ctx, "unknowntokenunknowntokenunknown1", exp, upd), cairn.ENOTFOUND)

	if err := s.DeleteSession(ctx, sess.Token); err != nil {
		t.Fatal(err)
	}
	_, err = s.SessionByToken(ctx, sess.Token)
	wantCode(t, "SessionByToken after delete", err, cairn.ENOTFOUND)
	if err := s.DeleteSession(ctx, sess.Token); err != nil {
		t.Fatalf("deleting an unknown session: %v", err)
	}
}

func testDeleteUserSessions(t *testing.T, s cairn.AuthStore) {
	ctx := t.Context()
	alice := mustCreateUser(t, s, "alice@example.com")
	bob := mustCreateUser(t, s, "bob@example.com")
	var aliceTokens []string
	for range 3 {
		sess := newSession(alice.ID)
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		aliceTokens = append(aliceTokens, sess.Token)
	}
	bobs := newSession(bob.ID)
	if err := s.CreateSession(ctx, bobs); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteUserSessions(ctx, alice.ID)
	if err != nil || n != 3 {
		t.Fatalf("DeleteUserSessions = %d, %v; want 3, nil", n, err)
	}
	for _, tok := range aliceTokens {
		_, err := s.SessionByToken(ctx, tok)
		wantCode(t, "alice's session after DeleteUserSessions", err, cairn.ENOTFOUND)
	}
	if _, err := s.SessionByToken(ctx, bobs.Token); err != nil {
		t.Fatalf("bob's session was touched: %v", err)
	}
}
