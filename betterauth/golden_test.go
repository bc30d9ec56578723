package betterauth_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
	"github.com/cairn-dev/cairn/betterauth"
)

// The golden files under testdata/ were recorded from a real Better Auth
// 1.7.25 server (see testdata/README.md). These tests replay their requests against Cairn
// and compare status codes, header names and values that are not
// per-run, Set-Cookie names and attributes, JSON shapes and error codes.
// Tokens, ids and times differ per run: the session tokens in recorded
// requests are mapped to sessions that exist in Cairn, keeping each value's
// encoding (URL-encoded, raw, base64url, unsigned) and whether its
// signature was valid.
//
// Not replayed: cases-autoSignIn-false.json and cases-cookie-cache.json
// record Better Auth options Cairn does not offer (sign-up always signs
// in; there is no session_data cookie cache). The OPTIONS case is replayed
// without the CORS middleware, which answers trusted preflights on purpose.

type goldenExchange struct {
	Request struct {
		Method  string          `json:"method"`
		Path    string          `json:"path"`
		URL     string          `json:"url"`
		Headers map[string]any  `json:"headers"`
		Body    json.RawMessage `json:"body"`
	} `json:"request"`
	Response struct {
		Status   int            `json:"status"`
		Headers  map[string]any `json:"headers"`
		BodyText string         `json:"bodyText"`
	} `json:"response"`
}

type goldenFlow struct {
	Exchanges []goldenExchange `json:"exchanges"`
}

func loadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// loadCases returns a cases file's exchanges in file order.
func loadCases(t *testing.T, path string) ([]string, map[string]goldenExchange) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var names []string
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		t.Fatalf("%s: %v", path, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	cases := map[string]goldenExchange{}
	for _, n := range names {
		var ex goldenExchange
		if err := json.Unmarshal(raw[n], &ex); err == nil && ex.Request.Method != "" {
			cases[n] = ex
		}
	}
	return names, cases
}

// replayer sends golden requests to one service and checks the answers.
type replayer struct {
	t      *testing.T
	e      *env
	tokens map[string]string // golden session token → Cairn's
}

func newReplayer(t *testing.T, e *env) *replayer {
	return &replayer{t: t, e: e, tokens: map[string]string{}}
}

// verbatim tokens never existed on the recording server either.
var verbatimTokens = map[string]bool{
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA": true,
	"unknowntokenunknowntokenunknown1": true,
}

func hmacOf(token string) []byte {
	m := hmac.New(sha256.New, []byte(goldenSecret))
	m.Write([]byte(token))
	return m.Sum(nil)
}

// ourToken maps a golden token to a Cairn session, creating one for the
// golden user (alice) on first use.
func (rp *replayer) ourToken(golden string) string {
	if tok, ok := rp.tokens[golden]; ok {
		return tok
	}
	ctx := rp.t.Context()
	u, err := rp.e.store.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		rp.t.Fatalf("golden token %s needs alice's account: %v", golden, err)
	}
	now := rp.e.clock.Now().UTC().Truncate(time.Millisecond)
	s := &cairn.Session{Token: cairn.NewToken(), UserID: u.ID, ExpiresAt: now.Add(auth.SessionExpiresIn),
		CreatedAt: now, UpdatedAt: now, UserAgent: "GoldenRecorder/1.0 (browser-emulation)"}
	if err := rp.e.store.CreateSession(ctx, s); err != nil {
		rp.t.Fatal(err)
	}
	rp.tokens[golden] = s.Token
	return s.Token
}

// substitute rewrites a recorded cookie or bearer value for Cairn's session.
func (rp *replayer) substitute(value string) string {
	decoded, err := url.PathUnescape(value)
	if err != nil {
		decoded = value
	}
	tok, sig, signed := strings.Cut(decoded, ".")
	if verbatimTokens[tok] {
		return value
	}
	ours := rp.ourToken(tok)
	if !signed {
		return ours
	}
	valid := false
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(sig); err == nil && hmac.Equal(b, hmacOf(tok)) {
			valid = true
		}
	}
	newSig := sig
	if valid {
		switch {
		case strings.ContainsAny(sig, "-_") || !strings.HasSuffix(sig, "="):
			newSig = base64.RawURLEncoding.EncodeToString(hmacOf(ours))
		default:
			newSig = base64.StdEncoding.EncodeToString(hmacOf(ours))
		}
	}
	out := ours + "." + newSig
	if strings.Contains(value, "%") {
		out = strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(out)
	}
	return out
}

// request builds the Cairn request for a recorded one.
func (rp *replayer) request(ex goldenExchange) *http.Request {
	path := ex.Request.Path
	if path == "" {
		path = ex.Request.URL
	}
	var body []byte
	switch raw := bytes.TrimSpace(ex.Request.Body); {
	case len(raw) == 0 || string(raw) == "null":
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			rp.t.Fatalf("recorded body %s: %v", raw, err)
		}
		body = []byte(s)
	default:
		body = raw
	}
	r := httptest.NewRequest(ex.Request.Method, path, bytes.NewReader(body))
	for k, v := range ex.Request.Headers {
		s, ok := v.(string)
		if !ok || k == "content-length" {
			continue
		}
		switch k {
		case "cookie":
			var parts []string
			for _, p := range strings.Split(s, "; ") {
				name, val, _ := strings.Cut(p, "=")
				if strings.HasSuffix(name, "session_token") {
					val = rp.substitute(val)
				}
				parts = append(parts, name+"="+val)
			}
			s = strings.Join(parts, "; ")
		case "authorization":
			s = "Bearer " + rp.substitute(strings.TrimPrefix(s, "Bearer "))
		}
		r.Header.Set(k, s)
	}
	return r
}

// header names whose values are per-run or transport details.
var ignoredHeaders = map[string]bool{"date": true, "connection": true, "keep-alive": true, "transfer-encoding": true, "content-length": true, "set-cookie": true}

// replay sends one exchange and checks Cairn's answer against it.
func (rp *replayer) replay(name string, ex goldenExchange) *httptest.ResponseRecorder {
	t := rp.t
	t.Helper()
	w := httptest.NewRecorder()
	rp.e.plain.ServeHTTP(w, rp.request(ex))
	want := ex.Response
	if w.Code != want.Status {
		t.Fatalf("%s: status %d, want %d; body %s", name, w.Code, want.Status, w.Body)
	}
	for k, v := range want.Headers {
		if ignoredHeaders[k] {
			continue
		}
		got := w.Header().Get(k)
		if got == "" {
			t.Errorf("%s: header %s missing (golden %v)", name, k, v)
			continue
		}
		switch k {
		case "set-auth-token":
			tok, sig, _ := strings.Cut(got, ".")
			if base64.StdEncoding.EncodeToString(hmacOf(tok)) != sig {
				t.Errorf("%s: set-auth-token %q is not token.signature", name, got)
			}
		default:
			if got != v {
				t.Errorf("%s: header %s = %q, want %q", name, k, got, v)
			}
		}
	}
	rp.checkCookies(name, want.Headers["set-cookie"], w.Header().Values("Set-Cookie"))
	if want.BodyText == "" {
		if w.Body.Len() != 0 {
			t.Errorf("%s: body %q, want empty", name, w.Body)
		}
		return w
	}
	var gotBody, wantBody any
	if err := json.Unmarshal(w.Body.Bytes(), &gotBody); err != nil {
		t.Fatalf("%s: body is not JSON: %q", name, w.Body)
	}
	if err := json.Unmarshal([]byte(want.BodyText), &wantBody); err != nil {
		t.Fatalf("%s: recorded body is not JSON: %v", name, err)
	}
	compareShape(t, name, "body", wantBody, gotBody)
	if m, ok := gotBody.(map[string]any); ok {
		if tok, ok := m["token"].(string); ok {
			if ck := cookieToken(w); ck != "" && ck != tok {
				t.Errorf("%s: body token %q differs from cookie token %q", name, tok, ck)
			}
		}
	}
	return w
}

// cookieToken returns the session token set by a response, if any.
func cookieToken(w *httptest.ResponseRecorder) string {
	for _, c := range w.Result().Cookies() {
		if strings.HasSuffix(c.Name, "session_token") && c.Value != "" {
			v, _ := url.PathUnescape(c.Value)
			tok, _, _ := strings.Cut(v, ".")
			return tok
		}
	}
	return ""
}

// checkCookies compares Set-Cookie headers: same cookies in the same order,
// same attributes, empty values where Better Auth clears, valid signatures
// where it sets. Session tokens seen here are mapped for later requests.
func (rp *replayer) checkCookies(name string, golden any, got []string) {
	t := rp.t
	t.Helper()
	var want []string
	if list, ok := golden.([]any); ok {
		for _, v := range list {
			want = append(want, v.(string))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: Set-Cookie %q, want %d cookies like %q", name, got, len(want), want)
		return
	}
	for i := range want {
		wn, wv, wattrs := splitCookie(want[i])
		gn, gv, gattrs := splitCookie(got[i])
		if wn != gn || !slices.Equal(wattrs, gattrs) {
			t.Errorf("%s: Set-Cookie %q, want the form of %q", name, got[i], want[i])
			continue
		}
		if (wv == "") != (gv == "") {
			t.Errorf("%s: cookie %s value %q, golden %q", name, gn, gv, wv)
			continue
		}
		if gv == "" {
			continue
		}
		decoded, err := url.PathUnescape(gv)
		if err != nil || url.PathEscape(decoded) == "" {
			t.Errorf("%s: cookie %s not URL-encoded: %q", name, gn, gv)
		}
		tok, sig, _ := strings.Cut(decoded, ".")
		if base64.StdEncoding.EncodeToString(hmacOf(tok)) != sig {
			t.Errorf("%s: cookie %s = %q is not value.HMAC-SHA256 (std base64)", name, gn, gv)
		}
		if strings.HasSuffix(gn, "dont_remember") && gv != wv {
			t.Errorf("%s: dont_remember = %q, want %q (deterministic under the same secret)", name, gv, wv)
		}
		if strings.HasSuffix(gn, "session_token") {
			wdec, _ := url.PathUnescape(wv)
			wtok, _, _ := strings.Cut(wdec, ".")
			rp.tokens[wtok] = tok
		}
	}
}

func splitCookie(s string) (name, value string, attrs []string) {
	parts := strings.Split(s, "; ")
	name, value, _ = strings.Cut(parts[0], "=")
	return name, value, parts[1:]
}

var (
	isoMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	alnum32   = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	// exactKeys are compared by value, the rest by JSON type.
	exactKeys = map[string]bool{"message": true, "code": true, "email": true, "name": true, "emailVerified": true,
		"image": true, "redirect": true, "url": true, "success": true, "userAgent": true}
	timeKeys = map[string]bool{"createdAt": true, "updatedAt": true, "expiresAt": true}
	// extraKeys may appear in Cairn's user objects only: the admin
	// plugin's role, and image as null when the user has none.
	extraKeys = map[string]bool{"role": true, "image": true}
)

// compareShape checks that got has golden's JSON shape.
func compareShape(t *testing.T, name, path string, golden, got any) {
	t.Helper()
	key := path[strings.LastIndexByte(path, '.')+1:]
	switch g := golden.(type) {
	case map[string]any:
		m, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: %s = %v, want an object", name, path, got)
			return
		}
		for k, v := range g {
			gv, ok := m[k]
			if !ok {
				t.Errorf("%s: %s.%s missing", name, path, k)
				continue
			}
			compareShape(t, name, path+"."+k, v, gv)
		}
		for k := range m {
			if _, ok := g[k]; !ok && (!extraKeys[k] || !strings.HasSuffix(path, "user")) {
				t.Errorf("%s: unexpected %s.%s = %v", name, path, k, m[k])
			}
		}
	case string:
		s, ok := got.(string)
		switch {
		case !ok:
			t.Errorf("%s: %s = %v, want a string", name, path, got)
		case exactKeys[key] && s != g:
			t.Errorf("%s: %s = %q, want %q", name, path, s, g)
		case timeKeys[key] && !isoMillis.MatchString(s):
			t.Errorf("%s: %s = %q, want an ISO time with milliseconds", name, path, s)
		case key == "token" && !alnum32.MatchString(s):
			t.Errorf("%s: %s = %q, want 32 alphanumerics", name, path, s)
		}
	case nil:
		if got != nil {
			t.Errorf("%s: %s = %v, want null", name, path, got)
		}
	default:
		if gotKind, wantKind := kindOf(got), kindOf(golden); gotKind != wantKind {
			t.Errorf("%s: %s = %v (%s), want %s", name, path, got, gotKind, wantKind)
		} else if exactKeys[key] && got != golden {
			t.Errorf("%s: %s = %v, want %v", name, path, got, golden)
		}
	}
}

func kindOf(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case float64:
		return "number"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return "other"
}

// TestGoldenFlows replays the recorded client flows in order: sign-up,
// get-session, sign-out, get-session, sign-in, get-session, sign-out.
func TestGoldenFlows(t *testing.T) {
	dir := goldenDir
	e := newEnv(t, nil)
	rp := newReplayer(t, e)
	files, _ := filepath.Glob(filepath.Join(dir, "flow-*.json"))
	if len(files) != 7 {
		t.Fatalf("found %d flow files, want 7", len(files))
	}
	for _, f := range files {
		var flow goldenFlow
		loadJSON(t, f, &flow)
		for _, ex := range flow.Exchanges {
			rp.replay(filepath.Base(f), ex)
		}
	}
	// The first sign-up of an install is the admin.
	u, err := e.store.UserByEmail(t.Context(), "alice@example.com")
	if err != nil || u.Role != cairn.RoleAdmin {
		t.Fatalf("first user: %+v, %v; want role admin", u, err)
	}
}

// TestGoldenDefaultConfig replays the 44 error, CSRF, refresh and expiry
// cases recorded under Better Auth's default configuration.
func TestGoldenDefaultConfig(t *testing.T) {
	dir := goldenDir
	e := newEnv(t, nil)
	rp := newReplayer(t, e)
	var flow goldenFlow
	loadJSON(t, filepath.Join(dir, "flow-01-sign-up-email.json"), &flow)
	rp.replay("setup sign-up", flow.Exchanges[0])

	names, cases := loadCases(t, filepath.Join(dir, "cases-default-config.json"))
	if len(cases) != 44 {
		t.Fatalf("found %d cases, want 44", len(cases))
	}
	for _, name := range names {
		ex := cases[name]
		switch {
		case strings.HasPrefix(name, "get-session-refresh-after-updateAge"):
			rp.substitute("Rhi3iC5VYOsBwLEHq92LCOxy4Xg6GvwV") // create the session now…
			e.clock.Advance(2 * 24 * time.Hour)               // …and age it two days
		case name == "get-session-expired-session":
			e.clock.Advance(8 * 24 * time.Hour)
		}
		w := rp.replay(name, ex)
		switch {
		case strings.HasPrefix(name, "get-session-refresh-after-updateAge"):
			var body struct{ Session struct{ ExpiresAt time.Time } }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if want := e.clock.Now().Add(auth.SessionExpiresIn); !body.Session.ExpiresAt.Equal(want) {
				t.Errorf("refreshed expiresAt %v, want %v", body.Session.ExpiresAt, want)
			}
		case name == "get-session-expired-session":
			if _, err := e.store.SessionByToken(t.Context(), rp.tokens["Rhi3iC5VYOsBwLEHq92LCOxy4Xg6GvwV"]); cairn.ErrorCode(err) != cairn.ENOTFOUND {
				t.Errorf("expired session row still there: %v", err)
			}
		case name == "sign-out-with-cookie-referer-only-trusted":
			if _, err := e.store.SessionByToken(t.Context(), rp.tokens["1bGIGILbFezORZFuzqgrrACwTPH2XQkx"]); cairn.ErrorCode(err) != cairn.ENOTFOUND {
				t.Errorf("signed-out session still there: %v", err)
			}
		case name == "sign-up-unknown-extra-field":
			if u, err := e.store.UserByEmail(t.Context(), "eve@example.com"); err != nil || u.Role != cairn.RoleMember {
				t.Errorf("role from the sign-up body was honoured: %+v, %v", u, err)
			}
		}
	}
}

// TestGoldenBearer replays the bearer plugin's cases: set-auth-token on
// sign-up/sign-in, signed and raw bearer tokens, bad signatures, sign-out.
func TestGoldenBearer(t *testing.T) {
	dir := goldenDir
	rp := newReplayer(t, newEnv(t, nil))
	names, cases := loadCases(t, filepath.Join(dir, "cases-bearer-plugin.json"))
	for _, name := range names {
		rp.replay(name, cases[name])
	}
}

// TestGoldenRateLimit replays the production rate-limit cases: the fourth
// sign-in or sign-up within 10 s and the 101st get-session get 429.
func TestGoldenRateLimit(t *testing.T) {
	dir := goldenDir
	e := newEnv(t, func(c *envConfig) { c.Production = true })
	rp := newReplayer(t, e)
	names, cases := loadCases(t, filepath.Join(dir, "cases-rate-limit.json"))
	for _, name := range names {
		ex := cases[name]
		if name == "get-session-attempt-101" {
			for i := 0; i < 100; i++ {
				w := httptest.NewRecorder()
				e.plain.ServeHTTP(w, rp.request(ex))
				if w.Code != 200 {
					t.Fatalf("get-session %d: %d", i+1, w.Code)
				}
			}
		}
		rp.replay(name, ex)
	}
	// A new window lets the client in again.
	e.clock.Advance(10 * time.Second)
	rp.replay("after the window", cases["sign-in-attempt-1"])
}

// TestGoldenSecureCookies replays the secure-cookie cases under an https
// base URL: __Secure- names and Secure, unprefixed names ignored.
func TestGoldenSecureCookies(t *testing.T) {
	dir := goldenDir
	rp := newReplayer(t, newEnv(t, func(c *envConfig) { c.BaseURL = "https://cairn.example" }))
	names, cases := loadCases(t, filepath.Join(dir, "cases-secure-cookies.json"))
	for _, name := range names {
		rp.replay(name, cases[name])
	}
}

// TestGoldenHashAndSignature recomputes the recorded cookie signature and
// verifies the password hash Better Auth stored.
func TestGoldenHashAndSignature(t *testing.T) {
	dir := goldenDir
	var v struct {
		CookieValueOnWire  string `json:"cookieValueOnWire"`
		TokenFromCookie    string `json:"tokenFromCookie"`
		SignatureFromCooki string `json:"signatureFromCookie"`
		StoredPasswordHash string `json:"storedPasswordHash"`
	}
	loadJSON(t, filepath.Join(dir, "verification-checks.json"), &v)
	s := betterauth.NewSigner(goldenSecret)
	if got := s.Sign(v.TokenFromCookie); got != v.TokenFromCookie+"."+v.SignatureFromCooki {
		t.Errorf("Sign = %q, want signature %q", got, v.SignatureFromCooki)
	}
	decoded, _ := url.PathUnescape(v.CookieValueOnWire)
	if tok, ok := s.Verify(decoded); !ok || tok != v.TokenFromCookie {
		t.Errorf("Verify(golden cookie) = %q, %v", tok, ok)
	}
	if _, ok := betterauth.NewSigner("another-secret").Verify(decoded); ok {
		t.Error("a cookie verified under another secret")
	}

	var db struct {
		Account []struct{ Password string } `json:"account"`
	}
	loadJSON(t, filepath.Join(dir, "db-after-sign-up.json"), &db)
	if db.Account[0].Password != v.StoredPasswordHash {
		t.Fatal("golden files disagree on the stored hash")
	}
	h := auth.NewHasher(1)
	for pw, want := range map[string]bool{"correct-horse-9": true, "correct-horse-8": false, "": false} {
		ok, err := h.Verify(t.Context(), v.StoredPasswordHash, pw)
		if err != nil || ok != want {
			t.Errorf("Verify(Better Auth hash, %q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}
