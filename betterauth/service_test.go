package betterauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
	"github.com/cairn-dev/cairn/betterauth"
)

// TestFirstAdmin checks that only the first account of an install becomes
// admin, and only through open sign-up.
func TestFirstAdmin(t *testing.T) {
	e := newEnv(t, nil)
	e.signUp(t, "first@example.com", "password-1")
	e.signUp(t, "second@example.com", "password-2")
	for email, role := range map[string]string{"first@example.com": cairn.RoleAdmin, "second@example.com": cairn.RoleMember} {
		u, err := e.store.UserByEmail(t.Context(), email)
		if err != nil || u.Role != role {
			t.Errorf("%s: %+v, %v; want role %s", email, u, err, role)
		}
	}
}

func TestSignupClosed(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.SignupOpen = false; c.Production = true })
	w := e.do("POST", "/api/auth/sign-up/email", `{"name":"A","email":"a@example.com","password":"password-1"}`,
		map[string]string{"Content-Type": "application/json"})
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"code":"EMAIL_PASSWORD_SIGN_UP_DISABLED"`) {
		t.Fatalf("closed sign-up: %d %s", w.Code, w.Body)
	}
	if has, _ := e.store.HasUsers(t.Context()); has {
		t.Fatal("closed sign-up created a user")
	}
	// An account made by the command line can still sign in.
	if _, err := auth.CreateUser(t.Context(), e.store, "Admin@Example.com", "Admin", "password-1", cairn.RoleAdmin, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	w = e.do("POST", "/api/auth/sign-in/email", `{"email":"admin@example.com","password":"password-1"}`,
		map[string]string{"Content-Type": "application/json"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"role":"admin"`) {
		t.Fatalf("sign-in of a CLI-made admin: %d %s", w.Code, w.Body)
	}
	if _, err := auth.CreateUser(t.Context(), e.store, "admin@example.com", "Again", "password-2", cairn.RoleMember, e.clock.Now()); cairn.ErrorCode(err) != cairn.ECONFLICT {
		t.Fatalf("CreateUser with a taken email: %v, want ECONFLICT", err)
	}
	if _, err := auth.CreateUser(t.Context(), e.store, "short@example.com", "S", "short", cairn.RoleMember, e.clock.Now()); cairn.ErrorCode(err) != cairn.EINVALID {
		t.Fatalf("CreateUser with a short password: %v, want EINVALID", err)
	}
}

func authenticate(e *env, header map[string]string) (*cairn.Principal, error) {
	r := httptest.NewRequest("GET", "/users/u1/journey", nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return e.svc.Authenticate(r.Context(), e.api.SessionToken(r))
}

// TestAuthenticate covers which credentials protected routes accept: the
// token SessionToken reads, authenticated by the account service.
func TestAuthenticate(t *testing.T) {
	e := newEnv(t, nil)
	cookie := e.signUp(t, "alice@example.com", "password-1")
	name, value, _ := strings.Cut(cookie, "=")
	token, _, _ := strings.Cut(strings.ReplaceAll(strings.ReplaceAll(value, "%2F", "/"), "%2B", "+"), ".")

	p, err := authenticate(e, map[string]string{"Cookie": cookie})
	if err != nil || p.Email != "alice@example.com" || !p.IsAdmin() {
		t.Fatalf("valid cookie: %+v, %v", p, err)
	}
	if p, err := authenticate(e, map[string]string{"Authorization": "Bearer " + token}); err != nil || p.Email != "alice@example.com" {
		t.Fatalf("raw bearer token: %+v, %v", p, err)
	}
	tampered := name + "=" + token[:31] + "X" + value[32:]
	other := betterauth.NewSigner("some-other-secret").Sign(token)
	for caseName, h := range map[string]map[string]string{
		"NoCredentials":     nil,
		"TamperedToken":     {"Cookie": tampered},
		"UnsignedCookie":    {"Cookie": name + "=" + token},
		"ForeignSignature":  {"Cookie": name + "=" + other},
		"BadBearerSig":      {"Authorization": "Bearer " + token + ".AAAA"},
		"UnknownBearer":     {"Authorization": "Bearer unknowntokenunknowntokenunknown1"},
		"SecureNameOnPlain": {"Cookie": "__Secure-" + cookie},
	} {
		if p, err := authenticate(e, h); cairn.ErrorCode(err) != cairn.EUNAUTHORIZED {
			t.Errorf("%s: %+v, %v; want EUNAUTHORIZED", caseName, p, err)
		}
	}
	// Expired: a week later without a refresh.
	e.clock.Advance(auth.SessionExpiresIn)
	if p, err := authenticate(e, map[string]string{"Cookie": cookie}); cairn.ErrorCode(err) != cairn.EUNAUTHORIZED {
		t.Fatalf("expired session: %+v, %v; want EUNAUTHORIZED", p, err)
	}
	if _, err := e.store.SessionByToken(t.Context(), token); cairn.ErrorCode(err) != cairn.ENOTFOUND {
		t.Fatalf("expired session not deleted: %v", err)
	}
}

// TestSignOutRevokes checks that a signed-out cookie no longer authenticates.
func TestSignOutRevokes(t *testing.T) {
	e := newEnv(t, nil)
	cookie := e.signUp(t, "alice@example.com", "password-1")
	w := e.do("POST", "/api/auth/sign-out", "{}", map[string]string{"Cookie": cookie, "Origin": "http://localhost:3000", "Content-Type": "application/json"})
	if w.Code != 200 {
		t.Fatalf("sign-out: %d %s", w.Code, w.Body)
	}
	if _, err := authenticate(e, map[string]string{"Cookie": cookie}); cairn.ErrorCode(err) != cairn.EUNAUTHORIZED {
		t.Fatalf("after sign-out: %v; want EUNAUTHORIZED", err)
	}
}

// TestRememberMeFalse checks the one-day session without refresh.
func TestRememberMeFalse(t *testing.T) {
	e := newEnv(t, nil)
	e.signUp(t, "alice@example.com", "password-1")
	w := e.do("POST", "/api/auth/sign-in/email", `{"email":"alice@example.com","password":"password-1","rememberMe":false}`,
		map[string]string{"Content-Type": "application/json"})
	if w.Code != 200 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	var cookies []string
	for _, c := range w.Result().Cookies() {
		if c.MaxAge != 0 {
			t.Errorf("cookie %s has Max-Age %d; rememberMe false wants browser-session cookies", c.Name, c.MaxAge)
		}
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if len(cookies) != 2 || !strings.HasPrefix(cookies[1], "better-auth.dont_remember=true.") {
		t.Fatalf("cookies %v, want session_token and dont_remember", cookies)
	}
	header := map[string]string{"Cookie": strings.Join(cookies, "; ")}
	get := func() (int, time.Time, []string) {
		w := e.do("GET", "/api/auth/get-session", "", header)
		var body struct{ Session struct{ ExpiresAt time.Time } }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("get-session: %d %q: %v", w.Code, w.Body, err)
		}
		return w.Code, body.Session.ExpiresAt, w.Header().Values("Set-Cookie")
	}
	code, exp, set := get()
	if want := e.clock.Now().Add(auth.ShortSessionExpiresIn); code != 200 || !exp.Equal(want) || len(set) != 0 {
		t.Fatalf("get-session: %d expiresAt %v (want %v), Set-Cookie %v", code, exp, want, set)
	}
	e.clock.Advance(12 * time.Hour)
	if _, exp2, set := get(); !exp2.Equal(exp) || len(set) != 0 {
		t.Fatalf("rememberMe false session was refreshed: %v → %v, %v", exp, exp2, set)
	}
	e.clock.Advance(12 * time.Hour)
	if _, err := authenticate(e, header); cairn.ErrorCode(err) != cairn.EUNAUTHORIZED {
		t.Fatalf("one-day session alive after a day: %v", err)
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, method, path, origin string
		status                     int
		allowOrigin, credentials   string
	}{
		{"TrustedPreflight", "OPTIONS", "/api/auth/sign-in/email", "http://localhost:3000", 204, "http://localhost:3000", "true"},
		{"BaseURLOrigin", "OPTIONS", "/users/u/journey", "http://127.0.0.1:42607", 204, "http://127.0.0.1:42607", "true"},
		{"UntrustedPreflight", "OPTIONS", "/api/auth/sign-in/email", "https://evil.example", 404, "", ""},
		{"UntrustedGet", "GET", "/session", "https://evil.example", 401, "", ""},
		{"EventsPreflightAnyOrigin", "OPTIONS", "/events", "https://shop.example", 204, "*", ""},
		{"TrustedGet", "GET", "/api/auth/get-session", "http://localhost:3000", 200, "http://localhost:3000", "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"Origin": tc.origin}
			if tc.method == "OPTIONS" {
				h["Access-Control-Request-Method"] = "POST"
				h["Access-Control-Request-Headers"] = "content-type"
			}
			w := e.do(tc.method, tc.path, "", h)
			if w.Code != tc.status || w.Header().Get("Access-Control-Allow-Origin") != tc.allowOrigin ||
				w.Header().Get("Access-Control-Allow-Credentials") != tc.credentials {
				t.Fatalf("%d, Allow-Origin %q, Allow-Credentials %q; want %d %q %q", w.Code,
					w.Header().Get("Access-Control-Allow-Origin"), w.Header().Get("Access-Control-Allow-Credentials"),
					tc.status, tc.allowOrigin, tc.credentials)
			}
			if tc.status == 204 && !strings.Contains(strings.ToLower(w.Header().Get("Access-Control-Allow-Headers")), "content-type") {
				t.Fatalf("preflight allows headers %q", w.Header().Get("Access-Control-Allow-Headers"))
			}
		})
	}
	// Everything outside the auth routes passes through the middleware.
	var reached bool
	h := e.api.CORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
	r := httptest.NewRequest("POST", "/events", strings.NewReader("{}"))
	r.Header.Set("Origin", "https://shop.example")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if !reached || w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("POST /events cross-origin: reached=%v headers %v", reached, w.Header())
	}
}

func FuzzSignerVerify(f *testing.F) {
	s := betterauth.NewSigner(goldenSecret)
	f.Add(s.Sign("pveJPWk9EFJZUjRWcybielqDHQQD5kSj"))
	f.Add("token.")
	f.Add(".sig=")
	f.Fuzz(func(t *testing.T, signed string) {
		tok, ok := s.Verify(signed)
		if ok && s.Sign(tok) != signed {
			t.Fatalf("Verify accepted %q, which is not Sign(%q)", signed, tok)
		}
	})
}

// BenchmarkAuthenticate measures authenticating a request by its session
// cookie on the embedded store (what every protected read pays).
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b, nil)
	w := e.do("POST", "/api/auth/sign-up/email", `{"name":"N","email":"b@example.com","password":"password-1"}`,
		map[string]string{"Content-Type": "application/json"})
	var cookie string
	for _, c := range w.Result().Cookies() {
		cookie = c.Name + "=" + c.Value
	}
	r := httptest.NewRequest("GET", "/users/u/journey", nil)
	r.Header.Set("Cookie", cookie)
	for b.Loop() {
		if _, err := e.svc.Authenticate(r.Context(), e.api.SessionToken(r)); err != nil {
			b.Fatal(err)
		}
	}
}
