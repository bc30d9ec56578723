package apitest_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-dev/cairn/apitest"
)

// recorder is a testing.TB that keeps the errors reported to it, so the
// tests can check that the transport fails a test when it should.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

const healthOK = `{"status":"ok","timestamp":"2025-12-15T10:30:00.000Z","uptime":3600,"memory":{"rss":1,"heapTotal":2,"heapUsed":3},"database":"connected","bufferSize":0,"spool":{"backlog":0,"bytes":0,"segments":1}}`

// fake answers with whatever the case says, as a misbehaving Cairn would.
func fake(status int, ctype, body string, requestID bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // fake server: only drains the request
		if requestID {
			w.Header().Set("X-Request-Id", "abc123")
		}
		if ctype != "" {
			w.Header().Set("Content-Type", ctype)
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		w.WriteHeader(status)
		io.WriteString(w, body) //nolint:errcheck // fake server: a failed write shows up at the client under test
	})
}

func gz(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func TestTransport(t *testing.T) {
	v, err := apitest.CairnValidator(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const event = `{"userId":"u1","sessionId":"s1","type":"page_view","payload":{"url":"/"}}`
	const accepted = `{"message":"Events accepted for processing","count":1,"eventIds":["e-1"]}`
	const invalid = `{"error":"Invalid event.","code":"invalid","details":[{"index":0,"field":"userId","message":"is required"}]}`
	cases := []struct {
		name    string
		method  string
		path    string
		header  map[string]string
		body    []byte
		handler http.Handler
		wantErr string // "" when the exchange matches the document
	}{
		{"OK", "GET", "/health", nil, nil, fake(200, "application/json", healthOK, true), ""},
		{"OKEvent", "POST", "/events", map[string]string{"Content-Type": "application/json"}, []byte(event),
			fake(202, "application/json; charset=utf-8", accepted, true), ""},
		{"OKGzipEvent", "POST", "/events", map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Content-Encoding": "gzip"}, gz(event),
			fake(202, "application/json", accepted, true), ""},
		{"OKNoContentType", "POST", "/events", nil, []byte(event), fake(202, "application/json", accepted, true), ""},
		{"OKInvalidRequestRefused", "POST", "/events", map[string]string{"Content-Type": "application/json"}, []byte(`{"sessionId":"s1","type":"page_view"}`),
			fake(400, "application/json", invalid, true), ""},
		{"OKUnknownRoute", "GET", "/nope", nil, nil, fake(404, "application/json", `{"error":"Not found.","code":"not_found"}`, true), ""},
		{"OKWrongMethod", "DELETE", "/events", nil, nil, fake(405, "application/json", `{"error":"Method not allowed.","code":"method_not_allowed"}`, true), ""},
		{"OKBetterAuth404", "GET", "/api/auth/sign-up/email", nil, nil, fake(404, "", "", true), ""},
		{"ErrMissingField", "GET", "/health", nil, nil, fake(200, "application/json", `{"status":"ok"}`, true), "response does not match"},
		{"ErrExtraField", "GET", "/health", nil, nil, fake(200, "application/json", strings.Replace(healthOK, `"status":"ok"`, `"status":"ok","extra":1`, 1), true), "response does not match"},
		{"ErrUndocumentedStatus", "GET", "/health", nil, nil, fake(418, "application/json", `{"error":"teapot","code":"internal"}`, true), "status is not supported"},
		{"ErrNoRequestID", "GET", "/health", nil, nil, fake(200, "application/json", healthOK, false), "X-Request-Id"},
		{"ErrWrongType", "GET", "/health", nil, nil, fake(200, "text/plain", "ok", true), "response does not match"},
		{"ErrInvalidRequestAccepted", "POST", "/events", map[string]string{"Content-Type": "application/json"}, []byte(`{"sessionId":"s1","type":"page_view"}`),
			fake(202, "application/json", accepted, true), "want a 4xx"},
		{"ErrErrorShape", "POST", "/events", map[string]string{"Content-Type": "application/json"}, []byte(`[]`),
			fake(400, "application/json", `{"message":"bad"}`, true), "response does not match"},
		{"ErrPlainNotFound", "GET", "/nope", nil, nil, fake(404, "text/plain; charset=utf-8", "404 page not found", true), "Content-Type"},
		{"ErrWrongMethodAs404", "DELETE", "/events", nil, nil, fake(404, "application/json", `{"error":"Not found.","code":"not_found"}`, true), "want 405"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			rec := &recorder{TB: t}
			c := &http.Client{Transport: &apitest.Transport{Validator: v, T: rec}}
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close() //nolint:errcheck // the body was read to the end (or is abandoned); closing it only releases the connection
			if tc.handler != nil && resp.StatusCode == 202 && !bytes.Contains(got, []byte("accepted")) {
				t.Errorf("the caller did not get the response body: %q", got)
			}
			switch {
			case tc.wantErr == "" && len(rec.errs) > 0:
				t.Errorf("unexpected validation failure:\n%s", strings.Join(rec.errs, "\n"))
			case tc.wantErr != "" && len(rec.errs) == 0:
				t.Errorf("no validation failure, want one mentioning %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(strings.Join(rec.errs, "\n"), tc.wantErr):
				t.Errorf("validation failure does not mention %q:\n%s", tc.wantErr, strings.Join(rec.errs, "\n"))
			}
		})
	}
}

// TestTransportForwardsBody checks the server receives the exact body sent.
func TestTransportForwardsBody(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		fake(202, "application/json", `{"message":"Events accepted for processing","count":1,"eventIds":["x"]}`, true).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := apitest.NewClient(t)
	body := `{"userId":"u","sessionId":"s","type":"search","payload":{"query":"laptop"}}`
	resp, err := c.Post(srv.URL+"/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() //nolint:errcheck // the body was read to the end (or is abandoned); closing it only releases the connection
	if string(got) != body {
		t.Errorf("server got %q, want %q", got, body)
	}
}
