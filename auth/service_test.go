package auth_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
	"github.com/cairn-dev/cairn/pebble"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is an account service on a real embedded store.
type env struct {
	svc   *auth.Service
	store *pebble.Store
	clock *clock
}

func newEnv(t testing.TB, signupOpen bool) *env {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	c := &clock{now: time.Date(2026, 11, 25, 18, 59, 35, 0, time.UTC)}
	return &env{svc: auth.New(st, auth.Config{SignupOpen: signupOpen, Now: c.Now}), store: st, clock: c}
}

func (e *env) signUp(t *testing.T, email, password string) *cairn.Session {
	t.Helper()
	sess, _, err := e.svc.SignUp(t.Context(), auth.SignUp{Name: "N", Email: email, Password: password}, auth.Client{})
	if err != nil {
		t.Fatalf("sign-up %s: %v", email, err)
	}
	return sess
}

func TestSignupPolicy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		production bool
		setting    string
		open       bool
		err        bool
	}{
		{"DevelopmentDefault", false, "", true, false},
		{"ProductionDefault", true, "", false, false},
		{"ProductionOpen", true, "open", true, false},
		{"DevelopmentClosed", false, "closed", false, false},
		{"ErrBadValue", true, "yes", false, true},
		{"ErrCase", false, "Open", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := auth.ParseSignupPolicy(tc.setting)
			if (err != nil) != tc.err {
				t.Fatalf("ParseSignupPolicy(%q) = %q, %v; want err=%v", tc.setting, p, err, tc.err)
			}
			if err == nil && p.Open(tc.production) != tc.open {
				t.Fatalf("%q.Open(%v) = %v, want %v", p, tc.production, !tc.open, tc.open)
			}
		})
	}
}

// TestFirstAdmin checks that only the first account of an install becomes
// admin.
func TestFirstAdmin(t *testing.T) {
	e := newEnv(t, true)
	e.signUp(t, "First@example.com", "password-1")
	e.signUp(t, "second@example.com", "password-2")
	for email, role := range map[string]string{"first@example.com": cairn.RoleAdmin, "second@example.com": cairn.RoleMember} {
		u, err := e.store.UserByEmail(t.Context(), email)
		if err != nil || u.Role != role {
			t.Errorf("%s: %+v, %v; want role %s", email, u, err, role)
		}
	}
}

// TestSignUpAndSignInErrors checks the sentinel each refusal returns, in
// the order Better Auth checks them.
func TestSignUpAndSignInErrors(t *testing.T) {
	open, closed := newEnv(t, true), newEnv(t, false)
	open.signUp(t, "alice@example.com", "password-1")
	long := strings.Repeat("x", auth.MaxPasswordLength+1)
	for _, tc := range []struct {
		name string
		e    *env
		in   auth.SignUp
		want error
	}{
		{"ErrSignupClosed", closed, auth.SignUp{Email: "a@example.com", Password: "short"}, auth.ErrSignupClosed},
		{"ErrPasswordTooShort", open, auth.SignUp{Email: "bad", Password: "short"}, auth.ErrPasswordTooShort},
		{"ErrPasswordTooLong", open, auth.SignUp{Email: "bad", Password: long}, auth.ErrPasswordTooLong},
		{"ErrInvalidEmail", open, auth.SignUp{Email: "bad", Password: "password-1"}, auth.ErrInvalidEmail},
		{"ErrEmailTaken", open, auth.SignUp{Email: "ALICE@example.com", Password: "password-1"}, auth.ErrEmailTaken},
	} {
		t.Run("SignUp"+tc.name, func(t *testing.T) {
			if _, _, err := tc.e.svc.SignUp(t.Context(), tc.in, auth.Client{}); !errors.Is(err, tc.want) {
				t.Fatalf("SignUp: %v, want %v", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, email, password string
		want                  error
	}{
		{"ErrInvalidEmail", "bad", long, auth.ErrInvalidEmail},
		{"ErrPasswordTooLong", "alice@example.com", long, auth.ErrPasswordTooLong},
		{"ErrWrongPassword", "alice@example.com", "password-2", auth.ErrInvalidCredentials},
		{"ErrUnknownEmail", "bob@example.com", "password-1", auth.ErrInvalidCredentials},
	} {
		t.Run("SignIn"+tc.name, func(t *testing.T) {
			if _, _, err := open.svc.SignIn(t.Context(), tc.email, tc.password, auth.Client{}); !errors.Is(err, tc.want) {
				t.Fatalf("SignIn: %v, want %v", err, tc.want)
			}
		})
	}
	sess, user, err := open.svc.SignIn(t.Context(), "Alice@Example.com", "password-1", auth.Client{IPAddress: "127.0.0.1", UserAgent: "ua"})
	if err != nil || user.Email != "alice@example.com" || sess.UserID != user.ID || sess.IPAddress != "127.0.0.1" || sess.UserAgent != "ua" {
		t.Fatalf("SignIn: %+v %+v %v", sess, user, err)
	}
}

// TestCreateUser checks the command line's account creation, which works
// whatever the sign-up policy.
func TestCreateUser(t *testing.T) {
	e := newEnv(t, false)
	if _, err := auth.CreateUser(t.Context(), e.store, "Admin@Example.com", "Admin", "password-1", cairn.RoleAdmin, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, u, err := e.svc.SignIn(t.Context(), "admin@example.com", "password-1", auth.Client{}); err != nil || !u.IsAdmin() {
		t.Fatalf("sign-in of a CLI-made admin: %+v, %v", u, err)
	}
	for _, tc := range []struct {
		name, email, userName, password, role, code string
	}{
		{"ErrTaken", "admin@example.com", "Again", "password-2", cairn.RoleMember, cairn.ECONFLICT},
		{"ErrShortPassword", "short@example.com", "S", "short", cairn.RoleMember, cairn.EINVALID},
		{"ErrNoName", "n@example.com", " ", "password-1", cairn.RoleMember, cairn.EINVALID},
		{"ErrBadRole", "r@example.com", "R", "password-1", "owner", cairn.EINVALID},
		{"ErrBadEmail", "nope", "E", "password-1", cairn.RoleMember, cairn.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := auth.CreateUser(t.Context(), e.store, tc.email, tc.userName, tc.password, tc.role, e.clock.Now()); cairn.ErrorCode(err) != tc.code {
				t.Fatalf("CreateUser: %v, want %s", err, tc.code)
			}
		})
	}
}

// TestAuthenticate covers tokens: live, missing, unknown, expired (and
// then deleted), signed out.
func TestAuthenticate(t *testing.T) {
	e := newEnv(t, true)
	sess := e.signUp(t, "alice@example.com", "password-1")
	p, err := e.svc.Authenticate(t.Context(), sess.Token)
	if err != nil || p.Email != "alice@example.com" || !p.IsAdmin() || p.Session.Token != sess.Token || p.User.ID != p.UserID {
		t.Fatalf("live token: %+v, %v", p, err)
	}
	for name, tc := range map[string]struct {
		token string
		want  error
	}{
		"NoToken":      {"", auth.ErrNoCredentials},
		"UnknownToken": {"unknowntokenunknowntokenunknown1", auth.ErrNoSession},
	} {
		if _, err := e.svc.Authenticate(t.Context(), tc.token); !errors.Is(err, tc.want) || cairn.ErrorCode(err) != cairn.EUNAUTHORIZED {
			t.Errorf("%s: %v, want %v (EUNAUTHORIZED)", name, err, tc.want)
		}
	}
	e.clock.Advance(auth.SessionExpiresIn)
	if _, err := e.svc.Authenticate(t.Context(), sess.Token); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("expired session: %v; want ErrNoSession", err)
	}
	if _, err := e.store.SessionByToken(t.Context(), sess.Token); cairn.ErrorCode(err) != cairn.ENOTFOUND {
		t.Fatalf("expired session not deleted: %v", err)
	}

	sess = e.signUp(t, "bob@example.com", "password-2")
	if err := e.svc.SignOut(t.Context(), sess.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(t.Context(), sess.Token); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("after sign-out: %v; want ErrNoSession", err)
	}
}

// TestRefresh checks that a session is extended only once its last
// extension is a day old.
func TestRefresh(t *testing.T) {
	e := newEnv(t, true)
	sess := e.signUp(t, "alice@example.com", "password-1")
	created := sess.ExpiresAt
	e.clock.Advance(auth.SessionUpdateAge - time.Second)
	if ok, err := e.svc.Refresh(t.Context(), sess); ok || err != nil || !sess.ExpiresAt.Equal(created) {
		t.Fatalf("young session refreshed: %v, %v, %v", ok, err, sess.ExpiresAt)
	}
	e.clock.Advance(time.Second)
	if ok, err := e.svc.Refresh(t.Context(), sess); !ok || err != nil || !sess.ExpiresAt.Equal(e.clock.Now().Add(auth.SessionExpiresIn)) {
		t.Fatalf("day-old session: %v, %v, expires %v", ok, err, sess.ExpiresAt)
	}
	stored, err := e.store.SessionByToken(t.Context(), sess.Token)
	if err != nil || !stored.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Fatalf("stored session %+v, %v", stored, err)
	}
}

// TestListUsers checks that only an admin principal may list accounts.
func TestListUsers(t *testing.T) {
	e := newEnv(t, true)
	admin := e.signUp(t, "admin@example.com", "password-1")
	member := e.signUp(t, "member@example.com", "password-2")
	for name, tc := range map[string]struct {
		token string
		want  error
	}{
		"Admin":     {admin.Token, nil},
		"ErrMember": {member.Token, auth.ErrNotAdmin},
		"ErrAnon":   {"", auth.ErrNotAdmin},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			if tc.token != "" {
				p, err := e.svc.Authenticate(ctx, tc.token)
				if err != nil {
					t.Fatal(err)
				}
				ctx = cairn.NewContextWithPrincipal(ctx, p)
			}
			page, err := e.svc.ListUsers(ctx, cairn.UserQuery{Limit: 10})
			if !errors.Is(err, tc.want) || (err == nil && len(page.Users) != 2) {
				t.Fatalf("ListUsers: %+v, %v; want %v", page, err, tc.want)
			}
		})
	}
}

func TestPasswordHash(t *testing.T) {
	h := auth.NewHasher(2)
	hash, err := h.Hash(t.Context(), "ﬁsh-and-chips") // U+FB01 "ﬁ" ligature
	if err != nil {
		t.Fatal(err)
	}
	salt, key, _ := strings.Cut(hash, ":")
	if len(salt) != 32 || len(key) != 128 {
		t.Fatalf("hash %q: want 32 hex salt and 128 hex key", hash)
	}
	for pw, want := range map[string]bool{"ﬁsh-and-chips": true, "fish-and-chips": true, "fish-and-chip": false} {
		if ok, err := h.Verify(t.Context(), hash, pw); err != nil || ok != want {
			t.Errorf("Verify(%q) = %v, %v; want %v (NFKC)", pw, ok, err, want)
		}
	}
	for _, bad := range []string{"", "nocolon", "abc:zz", salt + ":" + key[:10]} {
		if ok, err := h.Verify(t.Context(), bad, "fish-and-chips"); ok || err != nil {
			t.Errorf("Verify(malformed %q) = %v, %v", bad, ok, err)
		}
	}
}

// BenchmarkVerify measures one password verification (scrypt, N=16384,
// r=16): the cost of every sign-in.
func BenchmarkVerify(b *testing.B) {
	h := auth.NewHasher(1)
	hash, err := h.Hash(b.Context(), "correct-horse-9")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := h.Verify(b.Context(), hash, "correct-horse-9"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
