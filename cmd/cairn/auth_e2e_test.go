package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/mongo/mongotest"
)

// account is one signed-in identity against a running Cairn: its own
// validating client with its own cookie jar.
type account struct {
	p      *proc
	client *http.Client
}

func (p *proc) newAccount() *account {
	jar, _ := cookiejar.New(nil)
	c := newClient(p.t)
	c.Jar = jar
	return &account{p: p, client: c}
}

func (a *account) do(method, path, body string) (int, []byte) {
	a.p.t.Helper()
	saved := a.p.client
	a.p.client = a.client
	defer func() { a.p.client = saved }()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	status, _, resp := a.p.do(method, path, b)
	return status, resp
}

func (a *account) signUp(email string) int {
	a.p.t.Helper()
	status, _ := a.do("POST", "/api/auth/sign-up/email", `{"name":"E2E","email":"`+email+`","password":"correct-horse-9"}`)
	return status
}

// TestE2EAuthProtectsReads checks, on the real binary, which routes need a
// session, that the first account is the admin, and that GET /users is for
// admins only.
func TestE2EAuthProtectsReads(t *testing.T) {
	p := startMain(t, "")
	anon := p.newAccount()
	for _, path := range []string{"/users/u1/journey", "/stats", "/users", "/session"} {
		if status, b := anon.do("GET", path, ""); status != http.StatusUnauthorized || decode[errorBody](t, b).Code != "unauthorized" {
			t.Errorf("GET %s without a session: %d %s, want 401 unauthorized", path, status, b)
		}
	}
	if status, b := anon.do("GET", "/health", ""); status != http.StatusOK {
		t.Errorf("GET /health: %d %s", status, b)
	}
	if status, b := anon.do("POST", "/events", `{"userId":"u1","sessionId":"s1","type":"page_view"}`); status != http.StatusAccepted {
		t.Errorf("POST /events without a session: %d %s", status, b)
	}

	admin, member := p.newAccount(), p.newAccount()
	if s := admin.signUp("admin@example.com"); s != http.StatusOK {
		t.Fatalf("first sign-up: %d", s)
	}
	if s := member.signUp("member@example.com"); s != http.StatusOK {
		t.Fatalf("second sign-up: %d", s)
	}
	if status, b := admin.do("GET", "/users/u1/journey", ""); status != http.StatusOK {
		t.Errorf("journey with a session: %d %s", status, b)
	}
	if status, b := member.do("GET", "/stats", ""); status != http.StatusOK {
		t.Errorf("stats with a session: %d %s", status, b)
	}
	status, b := admin.do("GET", "/users", "")
	users := decode[struct {
		Users []struct{ Email, Role string }
	}](t, b)
	if status != http.StatusOK || len(users.Users) != 2 || users.Users[0].Role != "admin" || users.Users[1].Role != "member" {
		t.Errorf("GET /users as the first (admin) account: %d %s", status, b)
	}
	if status, b := member.do("GET", "/users", ""); status != http.StatusForbidden {
		t.Errorf("GET /users as a member: %d %s, want 403", status, b)
	}
	if status, b := member.do("GET", "/session", ""); status != http.StatusOK || !strings.Contains(string(b), `"member@example.com"`) {
		t.Errorf("GET /session: %d %s", status, b)
	}
}

// TestE2EDevSecretPersists checks that the generated development secret
// is kept in the data dir, so a session survives a restart.
func TestE2EDevSecretPersists(t *testing.T) {
	p := startMain(t, "")
	a := p.newAccount()
	if s := a.signUp("alice@example.com"); s != http.StatusOK {
		t.Fatalf("sign-up: %d", s)
	}
	secret, err := os.Stat(filepath.Join(p.DataDir, "auth-secret"))
	if err != nil || secret.Mode().Perm() != 0o600 {
		t.Fatalf("development secret file: %v, %v; want mode 0600", secret, err)
	}
	if !strings.Contains(p.Logs(), "BETTER_AUTH_SECRET is not set") {
		t.Error("no warning about the generated secret")
	}
	p.Stop()
	p.restart()
	if status, b := a.do("GET", "/session", ""); status != http.StatusOK {
		t.Fatalf("session after restart: %d %s", status, b)
	}
	if strings.Contains(p.Logs(), "correct-horse-9") {
		t.Fatal("a password reached the log")
	}
}

// runCairn runs a cairn subcommand to completion with env and stdin.
func runCairn(t *testing.T, stdin string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CAIRN_HOST=127.0.0.1", "PORT=0"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		t.Fatalf("run cairn %v: %v", args, err)
	}
	return 0, out.String()
}

// TestE2EProductionSecretRequired checks that production refuses to start
// without a secret, or with the seed's placeholder.
func TestE2EProductionSecretRequired(t *testing.T) {
	for name, secret := range map[string]string{"Empty": "", "SeedPlaceholder": "change-this-to-a-secure-random-string-in-production"} {
		t.Run(name, func(t *testing.T) {
			code, out := runCairn(t, "", []string{"NODE_ENV=production", "CAIRN_DATA_DIR=" + t.TempDir(), "BETTER_AUTH_SECRET=" + secret}, "serve")
			if code == 0 || !strings.Contains(out, "BETTER_AUTH_SECRET") {
				t.Fatalf("exit %d, output %q; want a non-zero exit naming BETTER_AUTH_SECRET", code, out)
			}
		})
	}
}

// TestE2EUsersCreateAndClosedSignup creates the first admin from the
// command line (password on stdin), then runs in production, where sign-up
// is closed, and signs in as that admin.
func TestE2EUsersCreateAndClosedSignup(t *testing.T) {
	dir := t.TempDir()
	env := []string{"CAIRN_DATA_DIR=" + dir}
	code, out := runCairn(t, "s3cret-admin-pass\n", env, "users", "create", "--email", "Root@Example.com", "--name", "Root", "--admin")
	if code != 0 || !strings.Contains(out, "created admin root@example.com") {
		t.Fatalf("users create: exit %d: %s", code, out)
	}
	if strings.Contains(out, "s3cret-admin-pass") {
		t.Fatal("users create echoed the password")
	}
	if code, out := runCairn(t, "short\n", env, "users", "create", "--email", "x@example.com", "--name", "X"); code == 0 {
		t.Fatalf("users create with a short password succeeded: %s", out)
	}
	if code, out := runCairn(t, "another-pass-1\n", env, "users", "create", "--email", "root@example.com", "--name", "Again"); code == 0 || !strings.Contains(out, "exists") {
		t.Fatalf("users create with a taken email: exit %d: %s", code, out)
	}

	if code, out := runCairn(t, "member-pass-1\n", env, "users", "create", "--email", "mia@example.com", "--name", "Mia"); code != 0 || !strings.Contains(out, "created member") {
		t.Fatalf("users create (member): exit %d: %s", code, out)
	}
	if code, out := runCairn(t, "", env, "users", "set-role", "--email", "MIA@example.com", "--role", "admin"); code != 0 || !strings.Contains(out, "mia@example.com is now admin") {
		t.Fatalf("users set-role: exit %d: %s", code, out)
	}
	if code, out := runCairn(t, "", env, "users", "list"); code != 0 || strings.Count(out, "\tadmin\t") != 2 {
		t.Fatalf("users list: exit %d: %s", code, out)
	}

	p := startMain(t, dir, "NODE_ENV=production", "BETTER_AUTH_SECRET=e2e-secret-0123456789abcdefghijklmnopqrstuvwxyz",
		"BETTER_AUTH_URL=http://127.0.0.1")
	a := p.newAccount()
	if status, b := a.do("POST", "/api/auth/sign-up/email", `{"name":"Eve","email":"eve@example.com","password":"correct-horse-9"}`); status != http.StatusBadRequest ||
		!strings.Contains(string(b), "EMAIL_PASSWORD_SIGN_UP_DISABLED") {
		t.Fatalf("sign-up in production: %d %s, want 400 EMAIL_PASSWORD_SIGN_UP_DISABLED", status, b)
	}
	if status, b := a.do("POST", "/api/auth/sign-in/email", `{"email":"root@example.com","password":"s3cret-admin-pass"}`); status != http.StatusOK {
		t.Fatalf("admin sign-in: %d %s", status, b)
	}
	if status, b := a.do("GET", "/users", ""); status != http.StatusOK || !strings.Contains(string(b), `"role":"admin"`) {
		t.Fatalf("GET /users as the CLI-made admin: %d %s", status, b)
	}
}

// TestE2EBetterAuthClient runs the official better-auth client (Node, the
// project in test/betterauth-client) against the real binary, on the
// embedded store and on MongoDB (FerretDB).
func TestE2EBetterAuthClient(t *testing.T) {
	dir := os.Getenv("CAIRN_BETTERAUTH_CLIENT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "test", "betterauth-client")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "better-auth")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("better-auth client not installed in %s (scripts/ci.d/20-node.sh runs npm ci): %v", dir, err)
		}
		t.Skipf("better-auth client not installed in %s: run `source scripts/ci.d/20-node.sh`", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v", err)
	}
	t.Run("Embedded", func(t *testing.T) {
		runBetterAuthClient(t, node, dir, startMain(t, "", "BETTER_AUTH_TRUSTED_ORIGINS=http://localhost:3000"))
	})
	t.Run("MongoDB", func(t *testing.T) {
		srv := mongotest.Start(t)
		p := startMain(t, "", "BETTER_AUTH_TRUSTED_ORIGINS=http://localhost:3000",
			"MONGODB_URI="+srv.DatabaseURI(mongotest.DatabaseName(t)))
		runBetterAuthClient(t, node, dir, p)
	})
}

func runBetterAuthClient(t *testing.T, node, dir string, p *proc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CAIRN_URL="+p.URL, "CAIRN_ORIGIN=http://localhost:3000")
	out, err := cmd.CombinedOutput()
	t.Logf("better-auth client:\n%s", out)
	if err != nil {
		t.Fatalf("better-auth client failed: %v", err)
	}
	if !strings.Contains(string(out), "checks passed") {
		t.Fatal("the client did not report success")
	}
}
