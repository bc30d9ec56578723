// Package apitest checks HTTP exchanges with Cairn against its OpenAPI
// document, for tests. Its transport sends each request, then validates the
// request and the response with kin-openapi's openapi3filter, and fails the
// test on any mismatch: an undocumented status code, a body or header that
// does not match its schema, an error that is not Cairn's JSON error.
//
// Requests are held to a looser rule than responses, because tests send bad
// requests on purpose: a request the document calls invalid is fine as long
// as the server refuses it with a 4xx. So the document may not be stricter
// than the server (it would call a request invalid that the server accepts),
// and responses must be exactly as documented.
//
// Use NewClient, or wrap an existing transport with NewTransport:
//
//	c := &http.Client{Transport: apitest.NewTransport(t, nil)}
package apitest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	cairnhttp "github.com/cairn-dev/cairn/http"
)

// Load parses an OpenAPI document (JSON or YAML) and validates it, with the
// document's own version rules (OpenAPI 3.1 for Cairn's), examples included.
func Load(ctx context.Context, spec []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi document: %w", err)
	}
	if err := doc.Validate(ctx, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("validate openapi document: %w", err)
	}
	return doc, nil
}

// Validator checks exchanges against one OpenAPI document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	errSch *openapi3.Schema
}

// NewValidator returns a Validator for doc, whatever host the server under
// test listens on (the document's servers are ignored).
func NewValidator(doc *openapi3.T) (*Validator, error) {
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi document: %w", err)
	}
	v := &Validator{doc: doc, router: router}
	if ref := doc.Components.Schemas["Error"]; ref != nil {
		v.errSch = ref.Value
	}
	if v.errSch == nil {
		return nil, errors.New("openapi document has no Error schema")
	}
	return v, nil
}

// CairnValidator returns a Validator for the document Cairn serves.
func CairnValidator(ctx context.Context) (*Validator, error) {
	spec, err := cairnhttp.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	doc, err := Load(ctx, spec)
	if err != nil {
		return nil, err
	}
	return NewValidator(doc)
}

// methods are tried to tell "unknown path" (404) from "wrong method" (405).
var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Check validates one exchange. reqBody and respBody are the bodies as sent
// and received (respBody decompressed). It returns nil when the exchange
// matches the document.
func (v *Validator) Check(ctx context.Context, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	status := resp.StatusCode
	// CORS preflights and redirects are transport matters, not API calls.
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		return nil
	}
	if status >= 300 && status < 400 {
		return nil
	}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return v.checkUnrouted(ctx, req, resp, respBody)
	}

	// Validate a copy of the request as the server reads it: decompressed,
	// and JSON when it came without a Content-Type.
	vreq := req.Clone(ctx)
	body := reqBody
	if strings.EqualFold(strings.TrimSpace(req.Header.Get("Content-Encoding")), "gzip") ||
		strings.EqualFold(strings.TrimSpace(req.Header.Get("Content-Encoding")), "x-gzip") {
		if plain, err := gunzip(reqBody); err == nil {
			body = plain
		}
	}
	if len(body) > 0 && vreq.Header.Get("Content-Type") == "" {
		vreq.Header.Set("Content-Type", "application/json")
	}
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	// kin-openapi re-reads the body through GetBody when it checks several
	// security alternatives: it must yield the decoded body too.
	vreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	vreq.ContentLength = int64(len(body))
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
		SkipSettingDefaults:   true,
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)

	var problems []string
	if reqErr != nil && (status < 400 || status >= 500) {
		problems = append(problems, fmt.Sprintf("the request does not match the document, yet the server answered %d (want a 4xx):\n%v", status, reqErr))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 resp.Header,
		Options:                opts,
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		problems = append(problems, fmt.Sprintf("response does not match the document for %s %s:\n%v", route.Method, route.Path, err))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// checkUnrouted checks the answer to a request no operation documents: 405
// when another method of the path is documented, 404 otherwise, with
// Cairn's JSON error (or, under /api/auth/, Better Auth's empty 404).
func (v *Validator) checkUnrouted(ctx context.Context, req *http.Request, resp *http.Response, respBody []byte) error {
	want := http.StatusNotFound
	for _, m := range methods {
		if m == req.Method {
			continue
		}
		probe := req.Clone(ctx)
		probe.Method = m
		if _, _, err := v.router.FindRoute(probe); err == nil {
			want = http.StatusMethodNotAllowed
			break
		}
	}
	if strings.HasPrefix(req.URL.Path, "/api/auth/") {
		// Better Auth answers every other method and path under /api/auth
		// with an empty 404.
		if resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("undocumented route %s %s answered %d, want 404", req.Method, req.URL.Path, resp.StatusCode)
		}
		return nil
	}
	if resp.StatusCode != want {
		return fmt.Errorf("undocumented route %s %s answered %d, want %d", req.Method, req.URL.Path, resp.StatusCode, want)
	}
	if req.Method == http.MethodHead {
		return nil
	}
	return v.checkError(resp, respBody)
}

// checkError checks that a response is Cairn's JSON error.
func (v *Validator) checkError(resp *http.Response, respBody []byte) error {
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("error response has Content-Type %q, want application/json", ct)
	}
	var body any
	if err := json.Unmarshal(respBody, &body); err != nil {
		return fmt.Errorf("error response is not JSON: %w", err)
	}
	if err := v.errSch.VisitJSON(body, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("error response does not match the Error schema: %w", err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		return errors.New("error response has no X-Request-Id header")
	}
	return nil
}

// Transport is an http.RoundTripper that validates every exchange.
type Transport struct {
	// Base sends the requests (http.DefaultTransport if nil).
	Base http.RoundTripper
	// Validator checks the exchanges.
	Validator *Validator
	// T receives a test error for every exchange that does not match.
	T testing.TB
}

// NewTransport returns a Transport validating against Cairn's document,
// sending with base (http.DefaultTransport if nil). It fails t at once if the
// document cannot be loaded.
func NewTransport(t testing.TB, base http.RoundTripper) *Transport {
	t.Helper()
	v, err := CairnValidator(context.Background())
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return &Transport{Base: base, Validator: v, T: t}
}

// NewClient returns an HTTP client whose every exchange is validated
// against Cairn's document.
func NewClient(t testing.TB) *http.Client {
	t.Helper()
	return &http.Client{Transport: NewTransport(t, nil), Timeout: 60 * time.Second}
}

// RoundTrip sends req and validates the exchange. A mismatch is reported to
// the test; the response is returned unchanged either way.
func (tr *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := tr.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close() //nolint:errcheck // the body was read to the end; the copy below is sent instead
		if err != nil {
			return nil, fmt.Errorf("apitest: read request body: %w", err)
		}
		reqBody = b
		// RoundTrippers must not modify the caller's request: send a copy.
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close() //nolint:errcheck // the body was read to the end; closing it only releases the connection
	if err != nil {
		return nil, fmt.Errorf("apitest: read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	body := raw
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		if body, err = gunzip(raw); err != nil {
			tr.T.Errorf("apitest: %s %s: response claims gzip but is not: %v", req.Method, req.URL.Path, err)
			return resp, nil
		}
	}
	if err := tr.Validator.Check(req.Context(), req, reqBody, resp, body); err != nil {
		tr.T.Errorf("apitest: %s %s → %d does not match the OpenAPI document (http/openapi.yaml):\n%v\nrequest body: %s\nresponse body: %s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, err, clip(reqBody), clip(body))
	}
	return resp, nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(zr, 64<<20))
}

// clip shortens a body for a failure message.
func clip(b []byte) string {
	const n = 600
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + fmt.Sprintf("… (%d bytes)", len(b))
}

// Documented reports whether the document has an operation for method and
// path (a path template such as "/users/{userId}/journey").
func (v *Validator) Documented(method, path string) bool {
	item := v.doc.Paths.Value(path)
	return item != nil && item.GetOperation(strings.ToUpper(method)) != nil
}

// Operations lists the document's operations as "METHOD /path" strings,
// sorted.
func (v *Validator) Operations() []string {
	var ops []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}
