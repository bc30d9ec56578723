package auth_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
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

// env is an auth service on a real embedded store.
type env struct {
	svc   *auth.Service
	store *pebble.Store
	clock *clock
}

func newEnv(t testing.TB, mod func(*auth.Config)) *env {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{now: time.Date(2026, 11, 25, 18, 59, 35, 0, time.UTC)}
	cfg := auth.Config{
		Secret:         goldenSecret,
		BaseURL:        "http://127.0.0.1:42607",
		TrustedOrigins: []string{"http://localhost:3000"},
		SignupOpen:     true,
		Now:            c.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := auth.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, clock: c}
}

// do sends a request to the service (through its CORS middleware) and
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
	e.svc.CORS(e.svc.Handler()).ServeHTTP(w, r)
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
func (e *env) signUp(t *testing.T, email, password string, extra map[string]string) string {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range extra {
		h[k] = v
	}
	w := e.do("POST", "/api/auth/sign-up/email", `{"name":"N","email":"`+email+`","password":"`+password+`"}`, h)
	if w.Code != 200 {
		t.Fatalf("sign-up %s: %d %s", email, w.Code, w.Body)
	}
	return sessionCookie(t, w)
}

// sharedDir returns ../shared/betterauth relative to the repository root.
// Outside CI a missing directory skips the test; in CI it fails.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	golden := filepath.Join(dir, "..", "shared", "betterauth")
	if _, err := os.Stat(filepath.Join(golden, "FACTS.md")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("golden Better Auth exchanges missing at %s: %v", golden, err)
		}
		t.Skipf("golden Better Auth exchanges not found at %s (CI must have them)", golden)
	}
	return golden
}

var _ cairn.AuthStore = (*pebble.Store)(nil)
