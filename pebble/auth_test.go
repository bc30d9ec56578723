package pebble_test

import (
	"testing"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/storetest"
)

func TestAuthStore(t *testing.T) {
	storetest.TestAuthStore(t, func(t *testing.T) cairn.AuthStore {
		s, err := pebble.Open(t.TempDir(), pebble.Options{CacheSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeStore(t, s) })
		return s
	})
}

// TestAuthSurvivesReopen checks that users and sessions are on disk.
func TestAuthSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	u := &cairn.User{Name: "Alice", Email: "alice@example.com", Role: cairn.RoleAdmin}
	if err := s.CreateUser(t.Context(), u, &cairn.Account{ProviderID: cairn.ProviderCredential, Password: "x:y"}); err != nil {
		t.Fatal(err)
	}
	sess := &cairn.Session{Token: cairn.NewToken(), UserID: u.ID}
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebble.Open(dir, pebble.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	got, err := s.UserByEmail(t.Context(), "alice@example.com")
	if err != nil || got.ID != u.ID || got.Role != cairn.RoleAdmin {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if _, err := s.SessionByToken(t.Context(), sess.Token); err != nil {
		t.Fatalf("session after reopen: %v", err)
	}
	if n, err := s.CountEvents(t.Context()); err != nil || n != 0 {
		t.Fatalf("auth keys counted as events: %d, %v", n, err)
	}
}
