package http_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
	"github.com/cairn-dev/cairn/betterauth"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/pebble"
)

// accountServer is Cairn's HTTP server with accounts on an embedded store,
// wired as `cairn serve` wires it.
type accountServer struct {
	handler http.Handler
	store   *pebble.Store
}

// newPebble opens an embedded store in a temporary directory, closed when
// the test ends.
func newPebble(t *testing.T) *pebble.Store {
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
	return st
}

func newAccountServer(t *testing.T) *accountServer {
	t.Helper()
	st := newPebble(t)
	svc := auth.New(st, auth.Config{SignupOpen: true})
	api, err := betterauth.New(svc, betterauth.Config{Secret: "session-test-secret-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	srv := &cairnhttp.Server{Store: st, Auth: svc, Users: svc, Accounts: api, Sources: st,
		Middleware: []func(http.Handler) http.Handler{api.CORS}}
	return &accountServer{handler: srv.Handler(), store: st}
}

func (a *accountServer) do(method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	return w
}

// signUp creates an account through the Better Auth route and returns its
// session cookie.
func (a *accountServer) signUp(t *testing.T, email string) string {
	t.Helper()
	w := a.do("POST", "/api/auth/sign-up/email", `{"name":"N","email":"`+email+`","password":"password-1"}`,
		map[string]string{"Content-Type": "application/json"})
	if w.Code != 200 {
		t.Fatalf("sign-up %s: %d %s", email, w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if strings.HasSuffix(c.Name, "better-auth.session_token") && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no session cookie in %v", w.Header()["Set-Cookie"])
	return ""
}

func TestSessionEndpoint(t *testing.T) {
	a := newAccountServer(t)
	w := a.do("GET", "/session", "", nil)
	if w.Code != 401 || !strings.Contains(w.Body.String(), `"code":"unauthorized"`) || w.Header().Get("X-Request-Id") == "" {
		t.Fatalf("GET /session without a session: %d %s %v", w.Code, w.Body, w.Header())
	}
	cookie := a.signUp(t, "alice@example.com")
	for name, h := range map[string]map[string]string{
		"Cookie": {"Cookie": cookie},
		"Bearer": {"Authorization": "Bearer " + strings.NewReplacer("%2F", "/", "%2B", "+", "%3D", "=").Replace(strings.SplitN(cookie, "=", 2)[1])},
	} {
		t.Run(name, func(t *testing.T) {
			w := a.do("GET", "/session", "", h)
			var body struct {
				Session struct{ Token, UserID, ExpiresAt string }
				User    struct{ ID, Email, Role, CreatedAt string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 ||
				body.User.Email != "alice@example.com" || body.User.Role != "admin" || body.Session.UserID != body.User.ID ||
				body.Session.Token == "" || !strings.HasSuffix(body.Session.ExpiresAt, "Z") || len(body.User.CreatedAt) != len("2026-01-01T00:00:00.000Z") {
				t.Fatalf("GET /session: %d %s", w.Code, w.Body)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("GET /session Cache-Control %q", w.Header().Get("Cache-Control"))
			}
		})
	}
}

// TestUsersAdminOnly checks GET /users: 401 without a session, 403 for a
// member, pages of accounts for an admin.
func TestUsersAdminOnly(t *testing.T) {
	a := newAccountServer(t)
	admin := a.signUp(t, "admin@example.com")
	member := a.signUp(t, "member@example.com")
	for i := range 3 {
		a.signUp(t, "user"+string(rune('a'+i))+"@example.com")
	}
	if w := a.do("GET", "/users", "", nil); w.Code != 401 || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("no session: %d %s %v", w.Code, w.Body, w.Header())
	}
	if w := a.do("GET", "/users", "", map[string]string{"Cookie": member}); w.Code != 403 || !strings.Contains(w.Body.String(), `"code":"forbidden"`) {
		t.Fatalf("member: %d %s", w.Code, w.Body)
	}
	if w := a.do("GET", "/users?limit=0", "", map[string]string{"Cookie": member}); w.Code != 403 {
		t.Fatalf("member with a bad limit: %d %s", w.Code, w.Body)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=%21%21"} {
		if w := a.do("GET", "/users?"+q, "", map[string]string{"Cookie": admin}); w.Code != 400 || !strings.Contains(w.Body.String(), `"code":"invalid"`) {
			t.Fatalf("%s: %d %s", q, w.Code, w.Body)
		}
	}
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page > 3 {
			t.Fatal("pagination does not end")
		}
		w := a.do("GET", "/users?limit=2&cursor="+cursor, "", map[string]string{"Cookie": admin})
		var body struct {
			Users []struct {
				ID, Name, Email, Role, CreatedAt string
				EmailVerified                    *bool
				Password                         any
			}
			Count      int
			NextCursor *string
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 || len(body.Users) > 2 || body.Count != len(body.Users) {
			t.Fatalf("admin page %d: %d %s", page, w.Code, w.Body)
		}
		for _, u := range body.Users {
			if u.ID == "" || u.Email == "" || u.Role == "" || u.CreatedAt == "" || u.EmailVerified == nil || u.Password != nil {
				t.Fatalf("listed user %+v", u)
			}
			seen[u.Email] = true
		}
		if strings.Contains(w.Body.String(), "password") {
			t.Fatal("GET /users leaks password data")
		}
		if body.NextCursor == nil {
			break
		}
		cursor = *body.NextCursor
	}
	if len(seen) != 5 {
		t.Fatalf("listed %d distinct users, want 5: %v", len(seen), seen)
	}
}

// TestRequestIDInAccountLogs checks that what the account packages log on
// behalf of a request names the request, as the server's own logs do.
func TestRequestIDInAccountLogs(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(cairnhttp.WithRequestID(slog.NewTextHandler(&buf, nil))).With("component", "auth")
	api := fakeAccounts{"GET /api/auth/ping": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "pong")
		logger.Info("no request")
	})}
	h := (&cairnhttp.Server{Accounts: api}).Handler()
	r := httptest.NewRequest("GET", "/api/auth/ping", nil)
	r.Header.Set("X-Request-Id", "req-42")
	h.ServeHTTP(httptest.NewRecorder(), r)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "component=auth") || !strings.Contains(lines[0], "request_id=req-42") ||
		strings.Contains(lines[1], "request_id") {
		t.Fatalf("logs:\n%s", buf.String())
	}
}

// fakeAccounts is an account sub-API with fixed routes and no tokens.
type fakeAccounts map[string]http.Handler

func (f fakeAccounts) Routes() map[string]http.Handler           { return f }
func (fakeAccounts) SessionToken(*http.Request) string           { return "" }
func (fakeAccounts) SessionBody(*cairn.Session, *cairn.User) any { return nil }
