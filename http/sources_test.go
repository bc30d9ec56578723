package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/pebble"
)

// tokenRoles authenticates the bearer tokens "admin" and "member" (a
// unit-test double for the account stack).
type tokenRoles struct{}

func (tokenRoles) Routes() map[string]http.Handler { return nil }
func (tokenRoles) SessionToken(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}
func (tokenRoles) Authenticate(_ context.Context, token string) (*cairn.Principal, error) {
	switch token {
	case "admin", "member":
		return &cairn.Principal{UserID: token, Role: token}, nil
	}
	return nil, cairn.Errorf(cairn.EUNAUTHORIZED, "Sign in.")
}

func TestSourcesAPI(t *testing.T) {
	st, err := pebble.Open(t.TempDir(), pebble.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	s := &cairnhttp.Server{Ingester: &fakeIngester{}, Store: nopStore{}, Auth: tokenRoles{}, Accounts: tokenRoles{}, Sources: st}
	do := func(token, method, path, body string) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		var out map[string]any
		if w.Code != http.StatusNoContent {
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("%s %s: %d, body not JSON: %s", method, path, w.Code, w.Body)
			}
		}
		return w.Code, out
	}
	code, src := do("admin", "POST", "/api/sources", `{"name":" web ","rateLimit":{"eventsPerSecond":1000,"burst":5000}}`)
	if code != 201 || src["name"] != "web" || src["enabled"] != true || len(src["writeKey"].(string)) != 32 {
		t.Fatalf("create: %d %v", code, src)
	}
	id, key := src["id"].(string), src["writeKey"].(string)
	for _, tc := range []struct {
		name, token, method, path, body string
		status                          int
	}{
		{"MemberCreate", "member", "POST", "/api/sources", `{"name":"x"}`, 403},
		{"MemberList", "member", "GET", "/api/sources", "", 403},
		{"MemberPatch", "member", "PATCH", "/api/sources/" + id, `{"enabled":false}`, 403},
		{"MemberDelete", "member", "DELETE", "/api/sources/" + id, "", 403},
		{"Anonymous", "", "GET", "/api/sources", "", 401},
		{"ErrName", "admin", "POST", "/api/sources", `{"name":""}`, 400},
		{"ErrUnknownField", "admin", "POST", "/api/sources", `{"name":"x","nmae":"y"}`, 400},
		{"ErrRate", "admin", "PATCH", "/api/sources/" + id, `{"rateLimit":{"eventsPerSecond":-1,"burst":0}}`, 400},
		{"PatchUnknown", "admin", "PATCH", "/api/sources/src_nope", `{"enabled":false}`, 404},
		{"DeleteUnknown", "admin", "DELETE", "/api/sources/src_nope", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := do(tc.token, tc.method, tc.path, tc.body); code != tc.status {
				t.Errorf("%d %v, want %d", code, body, tc.status)
			}
		})
	}
	code, src = do("admin", "PATCH", "/api/sources/"+id, `{"name":"website","enabled":false,"rotateWriteKey":true}`)
	if code != 200 || src["name"] != "website" || src["enabled"] != false || src["writeKey"] == key {
		t.Errorf("patch: %d %v (old key %s)", code, src, key)
	}
	if _, err := st.SourceByWriteKey(t.Context(), key); cairn.ErrorCode(err) != cairn.ENOTFOUND {
		t.Errorf("old write key still resolves: %v", err)
	}
	if code, list := do("admin", "GET", "/api/sources", ""); code != 200 || list["count"] != 1.0 {
		t.Errorf("list: %d %v", code, list)
	}
	if code, _ := do("admin", "DELETE", "/api/sources/"+id, ""); code != 204 {
		t.Errorf("delete: %d", code)
	}
}
