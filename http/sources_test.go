package http_test

import (
	"encoding/json"
	"strings"
	"testing"
)

type sourceBody struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	WriteKey  string `json:"writeKey"`
	Enabled   bool   `json:"enabled"`
	RateLimit struct {
		EventsPerSecond int `json:"eventsPerSecond"`
		Burst           int `json:"burst"`
	} `json:"rateLimit"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

// createSource creates a source through the admin API and returns it.
func (a *accountServer) createSource(t *testing.T, admin, body string) sourceBody {
	t.Helper()
	w := a.do("POST", "/api/sources", body, map[string]string{"Cookie": admin, "Content-Type": "application/json"})
	if w.Code != 201 {
		t.Fatalf("POST /api/sources %s: %d %s", body, w.Code, w.Body)
	}
	var src sourceBody
	if err := json.Unmarshal(w.Body.Bytes(), &src); err != nil {
		t.Fatal(err)
	}
	if w.Header().Get("Location") != "/api/sources/"+src.ID {
		t.Errorf("Location %q", w.Header().Get("Location"))
	}
	return src
}

// TestSourcesAdminAPI covers every rule of /api/sources: who may call it,
// the JSON shape, create, list, read, rename, disable, rate limit, key
// rotation, delete and the errors.
func TestSourcesAdminAPI(t *testing.T) {
	a := newAccountServer(t)
	admin := a.signUp(t, "admin@example.com") // the first account is the admin
	member := a.signUp(t, "member@example.com")

	src := a.createSource(t, admin, `{"name":" web ","rateLimit":{"eventsPerSecond":1000,"burst":5000}}`)
	if !strings.HasPrefix(src.ID, "src_") || src.Name != "web" || len(src.WriteKey) < 22 || !src.Enabled ||
		src.RateLimit.EventsPerSecond != 1000 || src.RateLimit.Burst != 5000 || src.CreatedAt == "" || src.UpdatedAt != src.CreatedAt {
		t.Fatalf("created %+v", src)
	}
	other := a.createSource(t, admin, `{"name":"backend"}`)
	if other.WriteKey == src.WriteKey || other.RateLimit.EventsPerSecond != 0 {
		t.Fatalf("second source %+v", other)
	}

	for _, tc := range []struct {
		name, method, path, body, cookie string
		status                           int
		code                             string
	}{
		{"NoSessionCreate", "POST", "/api/sources", `{"name":"x"}`, "", 401, "unauthorized"},
		{"NoSessionList", "GET", "/api/sources", "", "", 401, "unauthorized"},
		{"MemberCreate", "POST", "/api/sources", `{"name":"x"}`, member, 403, "forbidden"},
		{"MemberList", "GET", "/api/sources", "", member, 403, "forbidden"},
		{"MemberPatch", "PATCH", "/api/sources/" + src.ID, `{"enabled":false}`, member, 403, "forbidden"},
		{"MemberDelete", "DELETE", "/api/sources/" + src.ID, "", member, 403, "forbidden"},
		{"NoName", "POST", "/api/sources", `{}`, admin, 400, "invalid"},
		{"LongName", "POST", "/api/sources", `{"name":"` + strings.Repeat("x", 101) + `"}`, admin, 400, "invalid"},
		{"NegativeRate", "POST", "/api/sources", `{"name":"x","rateLimit":{"eventsPerSecond":-1}}`, admin, 400, "invalid"},
		{"UnknownField", "POST", "/api/sources", `{"name":"x","writeKey":"mine"}`, admin, 400, "invalid"},
		{"Malformed", "POST", "/api/sources", `{"name":`, admin, 400, "invalid"},
		{"Trailing", "POST", "/api/sources", `{"name":"x"} {}`, admin, 400, "invalid"},
		{"TooLarge", "POST", "/api/sources", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, admin, 413, "too_large"},
		{"PatchUnknown", "PATCH", "/api/sources/src_nope", `{"enabled":false}`, admin, 404, "not_found"},
		{"PatchEmptyName", "PATCH", "/api/sources/" + src.ID, `{"name":"  "}`, admin, 400, "invalid"},
		{"GetUnknown", "GET", "/api/sources/src_nope", "", admin, 404, "not_found"},
		{"DeleteUnknown", "DELETE", "/api/sources/src_nope", "", admin, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"Content-Type": "application/json"}
			if tc.cookie != "" {
				h["Cookie"] = tc.cookie
			}
			w := a.do(tc.method, tc.path, tc.body, h)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), `"code":"`+tc.code+`"`) {
				t.Fatalf("%s %s: %d %s, want %d %s", tc.method, tc.path, w.Code, w.Body, tc.status, tc.code)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
		})
	}

	// List: every source with its write key (oldest first; both were
	// created in the same millisecond here, so the order is the ids').
	w := a.do("GET", "/api/sources", "", map[string]string{"Cookie": admin})
	var list struct {
		Sources []sourceBody
		Count   int
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != 200 || list.Count != 2 || len(list.Sources) != 2 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	keys := map[string]string{}
	for _, s := range list.Sources {
		keys[s.ID] = s.WriteKey
	}
	if keys[src.ID] != src.WriteKey || keys[other.ID] != other.WriteKey {
		t.Fatalf("list: %s", w.Body)
	}

	// Patch: each field alone keeps the others.
	patch := func(body string) sourceBody {
		t.Helper()
		w := a.do("PATCH", "/api/sources/"+src.ID, body, map[string]string{"Cookie": admin})
		var got sourceBody
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
			t.Fatalf("PATCH %s: %d %s", body, w.Code, w.Body)
		}
		return got
	}
	if got := patch(`{"name":"site"}`); got.Name != "site" || got.WriteKey != src.WriteKey || !got.Enabled || got.RateLimit.Burst != 5000 {
		t.Fatalf("rename: %+v", got)
	}
	if got := patch(`{"enabled":false}`); got.Enabled || got.Name != "site" {
		t.Fatalf("disable: %+v", got)
	}
	if got := patch(`{"rateLimit":{"eventsPerSecond":10,"burst":20}}`); got.RateLimit.EventsPerSecond != 10 || got.RateLimit.Burst != 20 || got.Enabled {
		t.Fatalf("rate limit: %+v", got)
	}
	rotated := patch(`{"rotateWriteKey":true,"enabled":true}`)
	if rotated.WriteKey == src.WriteKey || len(rotated.WriteKey) < 22 || !rotated.Enabled || rotated.CreatedAt != src.CreatedAt {
		t.Fatalf("rotate: %+v", rotated)
	}
	w = a.do("GET", "/api/sources/"+src.ID, "", map[string]string{"Cookie": admin})
	if w.Code != 200 || !strings.Contains(w.Body.String(), rotated.WriteKey) {
		t.Fatalf("get after rotate: %d %s", w.Code, w.Body)
	}

	// Delete.
	if w := a.do("DELETE", "/api/sources/"+src.ID, "", map[string]string{"Cookie": admin}); w.Code != 204 || w.Body.Len() != 0 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if w := a.do("GET", "/api/sources/"+src.ID, "", map[string]string{"Cookie": admin}); w.Code != 404 {
		t.Fatalf("get after delete: %d %s", w.Code, w.Body)
	}
}
