package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/apitest"
	"github.com/cairn-dev/cairn/auth"
	"github.com/cairn-dev/cairn/betterauth"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/insights"
	"github.com/cairn-dev/cairn/live"
)

var update = flag.Bool("update", false, "rewrite testdata/openapi.golden.json from http/openapi.yaml")

const goldenPath = "testdata/openapi.golden.json"

// TestOpenAPIGolden keeps a reviewed copy of the served document: any change
// to the API description shows up as a diff of the golden file. Run
// `go test ./http -run TestOpenAPIGolden -update` after editing openapi.yaml.
func TestOpenAPIGolden(t *testing.T) {
	got, err := cairnhttp.OpenAPIJSON()
	if err != nil {
		t.Fatalf("OpenAPIJSON: %v", err)
	}
	if *update {
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", goldenPath)
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("read golden file (create it with -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the OpenAPI document differs from %s (%s); review the change and rerun with -update",
			goldenPath, firstDiff(got, want))
	}

	// The server serves exactly this document.
	srv := httptest.NewServer((&cairnhttp.Server{}).Handler())
	t.Cleanup(srv.Close)
	resp, body := get(t, apitest.NewClient(t), srv.URL+"/api-docs.json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api-docs.json: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /api-docs.json: Content-Type %q, want application/json", ct)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("GET /api-docs.json differs from %s (%s)", goldenPath, firstDiff(body, want))
	}
}

// firstDiff describes where two documents start to differ.
func firstDiff(a, b []byte) string {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	line := bytes.Count(a[:i], []byte{'\n'}) + 1
	return "first difference at line " + strconv.Itoa(line)
}

// TestOpenAPIValid validates the document as OpenAPI 3.1 twice: with
// kin-openapi (which knows 3.1: type arrays, const, examples, $ref siblings,
// and checks every example against its schema), and against the official OAS
// 3.1 JSON Schema with the base dialect, so every Schema Object is also a
// valid JSON Schema 2020-12 schema.
func TestOpenAPIValid(t *testing.T) {
	spec, err := cairnhttp.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := apitest.Load(t.Context(), spec)
	if err != nil {
		t.Fatalf("kin-openapi: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPIMajorMinor() != "3.1" {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	for url, file := range map[string]string{
		"https://spec.openapis.org/oas/3.1/schema/2021-04-15": "schema.json",
		"https://spec.openapis.org/oas/3.1/dialect/base":      "dialect-base.schema.json",
		"https://spec.openapis.org/oas/3.1/meta/base":         "meta-base.schema.json",
	} {
		addJSONResource(t, c, url, filepath.Join("testdata", "oas-3.1", file))
	}
	// The OAS "schema-base" variant: Schema Objects must follow the OAS base
	// dialect (JSON Schema 2020-12 plus discriminator, xml, example, ...).
	if err := c.AddResource("https://cairn.invalid/oas-3.1-schema-base", map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$ref":    "https://spec.openapis.org/oas/3.1/schema/2021-04-15",
		"$defs": map[string]any{
			"schema": map[string]any{
				"$dynamicAnchor": "meta",
				"$ref":           "https://spec.openapis.org/oas/3.1/dialect/base",
			},
		},
	}); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("https://cairn.invalid/oas-3.1-schema-base")
	if err != nil {
		t.Fatalf("compile the OAS 3.1 schema: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("the document does not validate against the OAS 3.1 JSON Schema:\n%v", err)
	}

	// The check can fail: a document with a misspelt field does not pass.
	var bad map[string]any
	if err := json.Unmarshal(spec, &bad); err != nil {
		t.Fatal(err)
	}
	bad["paths"].(map[string]any)["/health"].(map[string]any)["get"].(map[string]any)["respones"] = map[string]any{}
	if err := sch.Validate(bad); err == nil {
		t.Error("a document with an unknown operation field validated; the meta-schema check is not working")
	}
}

func addJSONResource(t *testing.T, c *jsonschema.Compiler, url, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() //nolint:errcheck // read-only file
	v, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := c.AddResource(url, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestOpenAPIConventions checks what the OpenAPI schema cannot: the rules
// Cairn's document follows so that it describes every outcome of every
// route.
func TestOpenAPIConventions(t *testing.T) {
	spec, err := cairnhttp.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := apitest.Load(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]bool{}
	for _, tag := range doc.Tags {
		tags[tag.Name] = true
	}
	ids := map[string]string{}
	for _, op := range operations(doc) {
		name := op.method + " " + op.path
		o := op.op
		if o.OperationID == "" {
			t.Errorf("%s: no operationId", name)
		} else if prev, dup := ids[o.OperationID]; dup {
			t.Errorf("%s: operationId %q already used by %s", name, o.OperationID, prev)
		}
		ids[o.OperationID] = name
		if o.Summary == "" {
			t.Errorf("%s: no summary", name)
		}
		if len(o.Tags) == 0 || !tags[o.Tags[0]] {
			t.Errorf("%s: tags %v, want a tag declared at the top level", name, o.Tags)
		}
		if o.Security == nil {
			t.Errorf("%s: security not stated (use [] for public operations)", name)
		}
		betterAuth := strings.HasPrefix(op.path, "/api/auth/")
		if needsSession(o) {
			if o.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s: needs a session but documents no 401", name)
			}
		}
		for code, ref := range o.Responses.Map() {
			r := ref.Value
			if r.Description == nil || *r.Description == "" {
				t.Errorf("%s %s: no description", name, code)
			}
			if h := r.Headers["X-Request-Id"]; h == nil || !h.Value.Required {
				t.Errorf("%s %s: X-Request-Id header not documented as required", name, code)
			}
			if code[0] != '4' && code[0] != '5' {
				continue
			}
			mt := r.Content.Get("application/json")
			if mt == nil || mt.Schema == nil {
				t.Errorf("%s %s: error response without a JSON schema", name, code)
				continue
			}
			want := "#/components/schemas/Error"
			if op.path == "/health" && code == "503" {
				want = "#/components/schemas/Health" // degraded is still a health report
			} else if betterAuth {
				want = "#/components/schemas/AuthError"
			}
			if mt.Schema.Ref != want {
				t.Errorf("%s %s: error schema %q, want %q", name, code, mt.Schema.Ref, want)
			}
			if code == "503" && !betterAuth && op.path != "/health" {
				if h := r.Headers["Retry-After"]; h == nil {
					t.Errorf("%s 503: Retry-After not documented", name)
				}
			}
		}
	}
	// The statuses the ingest contract promises.
	events := doc.Paths.Value("/events").Post
	for _, code := range []int{202, 400, 413, 415, 500, 503} {
		if events.Responses.Status(code) == nil {
			t.Errorf("POST /events: %d not documented", code)
		}
	}
	for _, scheme := range []string{"cookieAuth", "bearerAuth"} {
		if doc.Components.SecuritySchemes[scheme] == nil {
			t.Errorf("security scheme %s missing", scheme)
		}
	}
	if s := doc.Components.SecuritySchemes["cookieAuth"]; s != nil && (s.Value.In != "cookie" || s.Value.Name != "better-auth.session_token") {
		t.Errorf("cookieAuth = %s %q, want the better-auth.session_token cookie", s.Value.In, s.Value.Name)
	}
	// The guarantees are stated where clients read them.
	for _, phrase := range []string{"202 means durable", "fsync", "Idempotent `eventId`", "one flush\n  interval"} {
		text := doc.Info.Description + events.Description
		if !strings.Contains(text, phrase) && !strings.Contains(strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(phrase), " ")) {
			t.Errorf("the document does not state %q", phrase)
		}
	}
}

// needsSession reports whether an operation requires credentials (no
// anonymous alternative among its security requirements).
func needsSession(o *openapi3.Operation) bool {
	if o.Security == nil || len(*o.Security) == 0 {
		return false
	}
	for _, req := range *o.Security {
		if len(req) == 0 {
			return false
		}
	}
	return true
}

type operation struct {
	method, path string
	op           *openapi3.Operation
}

func operations(doc *openapi3.T) []operation {
	var ops []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, operation{method, path, op})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.path+a.method, b.path+b.method) })
	return ops
}

// fallbackRoutes are registered patterns that are not API operations, with
// why they are not documented as such.
var fallbackRoutes = map[string]string{
	"GET /console/page": "an HTML page of the web console (package console), not a JSON API operation; the console's own tests cover its pages",
	"/api/auth/":        "Better Auth's empty 404 for every other method and path under /api/auth (described in info.description)",
}

// trackedUsers stands in for a store with the tracked-users index.
type trackedUsers struct{}

func (trackedUsers) TrackedUser(context.Context, string) (*cairn.TrackedUser, error) {
	return nil, cairn.Errorf(cairn.ENOTFOUND, "not found")
}

func (trackedUsers) LinkedUser(context.Context, string) (string, error) { return "", nil }

func (trackedUsers) TrackedUsers(context.Context, cairn.TrackedUserQuery) (*cairn.TrackedUserPage, error) {
	return &cairn.TrackedUserPage{}, nil
}

// consoleRoutes stands in for the web console: its routes are HTML pages.
type consoleRoutes struct{}

func (consoleRoutes) Routes() map[string]http.Handler {
	return map[string]http.Handler{"GET /console/page": http.NotFoundHandler()}
}

var wildcard = regexp.MustCompile(`\{([A-Za-z0-9_]+)(\.\.\.)?\}`)

// TestRoutesDocumented checks that every route the server registers (with
// accounts and metrics mounted, as `cairn serve` does) is documented, and
// that every documented operation is a registered route.
func TestRoutesDocumented(t *testing.T) {
	accounts := auth.New(nil, auth.Config{})
	api, err := betterauth.New(accounts, betterauth.Config{Secret: "route-listing-test-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	srv := &cairnhttp.Server{Auth: accounts, Users: accounts, Accounts: api, Metrics: http.NotFoundHandler(),
		Live: live.NewHub(1), Console: consoleRoutes{}, TrackedUsers: trackedUsers{}, Sources: newPebble(t),
		Insights: insights.New(newPebble(t))}
	routes := map[string]bool{}
	for _, pattern := range srv.Routes() {
		if _, ok := fallbackRoutes[pattern]; ok {
			continue
		}
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			t.Errorf("route %q has no method: document it or list it in fallbackRoutes with a reason", pattern)
			continue
		}
		if strings.HasSuffix(path, "/") {
			t.Errorf("route %q is a subtree pattern: name its wildcard ({name...}) so it can be documented", pattern)
			continue
		}
		routes[method+" "+wildcard.ReplaceAllString(path, "{$1}")] = true
	}
	v, err := apitest.CairnValidator(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, op := range v.Operations() {
		documented[op] = true
	}
	for r := range routes {
		if !documented[r] {
			t.Errorf("route %q is registered but not documented in http/openapi.yaml", r)
		}
	}
	for op := range documented {
		if !routes[op] {
			t.Errorf("operation %q is documented but no such route is registered", op)
		}
	}
	if len(routes) < 14 {
		t.Errorf("only %d routes registered: %v", len(routes), srv.Routes())
	}
}

// TestDocsUI serves the explorer and its assets from the binary, with no
// reference to anything off the server, and every exchange validated.
func TestDocsUI(t *testing.T) {
	srv := httptest.NewServer((&cairnhttp.Server{}).Handler())
	t.Cleanup(srv.Close)
	c := apitest.NewClient(t)

	resp, page := get(t, c, srv.URL+"/api-docs")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /api-docs: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(page), -1)
	if len(refs) < 3 {
		t.Fatalf("the page references %d assets: %s", len(refs), page)
	}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/api-docs/") {
			t.Errorf("the page references %q, outside the embedded assets", ref)
			continue
		}
		resp, body := get(t, c, srv.URL+ref)
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", ref, resp.StatusCode, len(body))
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", ref)
		}
	}

	_, init := get(t, c, srv.URL+"/api-docs/swagger-initializer.js")
	for _, want := range []string{`url: "/api-docs.json"`, "withCredentials: true"} {
		if !strings.Contains(string(init), want) {
			t.Errorf("swagger-initializer.js lacks %q", want)
		}
	}
	_, bundle := get(t, c, srv.URL+"/api-docs/swagger-ui-bundle.js")
	if len(bundle) < 1<<20 || !strings.Contains(string(bundle[:4096]), "swagger") && !bytes.Contains(bundle, []byte("SwaggerUIBundle")) {
		t.Errorf("swagger-ui-bundle.js looks wrong (%d bytes)", len(bundle))
	}

	// Conditional requests are answered from the ETag.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api-docs/swagger-ui.css", nil)
	resp, _ = do(t, c, req)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on an asset")
	}
	req.Header.Set("If-None-Match", etag)
	if resp, _ = do(t, c, req); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
	}

	for _, tc := range []struct{ path, want string }{
		{"/api-docs/", "/api-docs"},
		{"/api-docs/index.html", "/api-docs"},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		resp, err := c.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() //nolint:errcheck // nothing was read; only the status and headers matter
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != tc.want {
			t.Errorf("GET %s: %d Location %q, want 301 to %s", tc.path, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}

	for _, path := range []string{"/api-docs/missing.js", "/api-docs/LICENSE", "/api-docs/..%2fdocs.go"} {
		resp, body := get(t, c, srv.URL+path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404 (%s)", path, resp.StatusCode, body)
		}
	}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close() //nolint:errcheck // ReadAll's error is what counts
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
