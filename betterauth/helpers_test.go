package betterauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
	"github.com/cairn-dev/cairn/betterauth"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/pebble"
)

// goldenSecret is the secret the golden exchanges were recorded with.
const goldenSecret = "golden-test-secret-0123456789abcdefghijklmnopqrstuvwxyz"

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

// env is the Better Auth handler over an account service on a real
// embedded store, mounted on Cairn's HTTP server as `cairn serve` does.
type env struct {
	svc   *auth.Service
	api   *betterauth.Handler
	store *pebble.Store
	clock *clock
	// handler is the whole server, CORS included; plain has no CORS
	// middleware (the golden replays compare Better Auth's own answers).
	handler, plain http.Handler
}

// envConfig is the protocol configuration plus the sign-up policy.
type envConfig struct {
	betterauth.Config
	SignupOpen bool
}

func newEnv(t testing.TB, mod func(*envConfig)) *env {
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
	cfg := envConfig{Config: betterauth.Config{
		Secret:         goldenSecret,
		BaseURL:        "http://127.0.0.1:42607",
		TrustedOrigins: []string{"http://localhost:3000"},
		Now:            c.Now,
	}, SignupOpen: true}
	if mod != nil {
		mod(&cfg)
	}
	svc := auth.New(st, auth.Config{SignupOpen: cfg.SignupOpen, Now: c.Now})
	api, err := betterauth.New(svc, cfg.Config)
	if err != nil {
		t.Fatal(err)
	}
	server := func(mw ...func(http.Handler) http.Handler) http.Handler {
		return (&cairnhttp.Server{Auth: svc, Users: svc, Accounts: api, Middleware: mw}).Handler()
	}
	return &env{svc: svc, api: api, store: st, clock: c, handler: server(api.CORS), plain: server()}
}

// do sends a request to the server (through the CORS middleware) and
// returns the recorded response.
func (e *env) do(method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// sessionCookie returns "name=value" of the session cookie set by w.
func sessionCookie(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if strings.HasSuffix(c.Name, "better-auth.session_token") && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no session cookie in %v", w.Header()["Set-Cookie"])
	return ""
}

// signUp creates an account through the API and returns its cookie.
func (e *env) signUp(t *testing.T, email, password string) string {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	w := e.do("POST", "/api/auth/sign-up/email", `{"name":"N","email":"`+email+`","password":"`+password+`"}`, h)
	if w.Code != 200 {
		t.Fatalf("sign-up %s: %d %s", email, w.Code, w.Body)
	}
	return sessionCookie(t, w)
}

// goldenDir holds the exchanges recorded from a real Better Auth server
// (see testdata/README.md).
const goldenDir = "testdata"

var _ cairn.AuthStore = (*pebble.Store)(nil)
