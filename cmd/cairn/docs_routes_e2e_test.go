package main

// Every documented route exercised against a real Cairn through the
// validating client (newClient → apitest), so each outcome below is checked
// against the OpenAPI document, not only the status asserted here.

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func TestDocsEveryRouteMatchesDocument(t *testing.T) {
	p := startCairnAtBaseURL(t)
	want := func(status int, method, path string, body []byte, header ...string) []byte {
		t.Helper()
		// As a browser on Cairn's own origin would send (the account
		// routes refuse cookie-carrying POSTs from untrusted origins).
		header = append([]string{"Origin", p.URL}, header...)
		got, _, respBody := p.do(method, path, body, header...)
		if got != status {
			t.Errorf("%s %s: %d, want %d\n%s", method, path, got, status, respBody)
		}
		return respBody
	}
	const jsonCT = "Content-Type"
	event := []byte(`{"userId":"docs-user","sessionId":"s1","type":"search","payload":{"query":"laptop"}}`)

	// Public routes.
	want(200, "GET", "/health", nil)
	want(200, "GET", "/api-docs.json", nil)
	want(200, "GET", "/api-docs", nil)
	want(200, "GET", "/api-docs/swagger-ui.css", nil)
	want(404, "GET", "/api-docs/nope.js", nil)
	if metrics := want(200, "GET", "/metrics", nil); !bytes.Contains(metrics, []byte("# TYPE")) {
		t.Errorf("/metrics is not Prometheus text: %.200s", metrics)
	}
	want(404, "GET", "/no-such-route", nil)
	want(405, "DELETE", "/events", nil)

	// Ingest: every documented outcome.
	want(202, "POST", "/events", event, jsonCT, "application/json")
	want(202, "POST", "/events", event, jsonCT, "text/plain;charset=UTF-8")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(event); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	want(202, "POST", "/events", gz.Bytes(), jsonCT, "application/json", "Content-Encoding", "gzip")
	want(400, "POST", "/events", []byte(`[{"userId":"u"},{"type":"nope"}]`), jsonCT, "application/json")
	want(400, "POST", "/events", []byte(`{"userId":`), jsonCT, "application/json")
	want(415, "POST", "/events", event, jsonCT, "application/xml")
	want(415, "POST", "/events", event, jsonCT, "application/json", "Content-Encoding", "br")
	want(413, "POST", "/events", bytes.Repeat([]byte(" "), 1<<20+1), jsonCT, "application/json")

	// Protected routes refuse without a session.
	want(401, "GET", "/users/docs-user/journey", nil)
	want(401, "GET", "/stats", nil)
	want(401, "GET", "/session", nil)
	want(401, "GET", "/users", nil)
	want(401, "GET", "/api/live", nil)
	want(401, "GET", "/api/sources", nil)
	if body := want(200, "GET", "/api/auth/get-session", nil); strings.TrimSpace(string(body)) != "null" {
		t.Errorf("get-session without a session: %s, want null", body)
	}
	want(405, "POST", "/api/auth/get-session", []byte(`{}`), jsonCT, "application/json")
	want(404, "GET", "/api/auth/no-such-endpoint", nil)

	// Accounts: the first account is the admin.
	signUp := []byte(`{"email":"docs@example.com","password":"correct-horse-9","name":"Docs Admin"}`)
	want(200, "POST", "/api/auth/sign-up/email", signUp, jsonCT, "application/json")
	want(422, "POST", "/api/auth/sign-up/email", signUp, jsonCT, "application/json")
	want(400, "POST", "/api/auth/sign-up/email", []byte(`{"email":"x@example.com","password":"short","name":"X"}`), jsonCT, "application/json")
	want(415, "POST", "/api/auth/sign-up/email", signUp, jsonCT, "text/xml")
	want(401, "POST", "/api/auth/sign-in/email", []byte(`{"email":"docs@example.com","password":"wrong-password"}`), jsonCT, "application/json")
	want(200, "POST", "/api/auth/sign-in/email", []byte(`{"email":"docs@example.com","password":"correct-horse-9"}`), jsonCT, "application/json")
	want(200, "GET", "/api/auth/get-session", nil)
	want(200, "GET", "/session", nil)
	want(200, "GET", "/users", nil)
	want(400, "GET", "/users?limit=0", nil)
	want(200, "GET", "/stats", nil)
	want(200, "GET", "/users/docs-user/journey?limit=10", nil)
	want(400, "GET", "/users/docs-user/journey?limit=0", nil)
	want(400, "GET", "/users/docs-user/journey?from=yesterday", nil)
	want(400, "GET", "/users/docs-user/journey?cursor=%21%21", nil)
	// Sources (admin).
	created := decode[struct{ ID string }](t, want(201, "POST", "/api/sources", []byte(`{"name":"web","rateLimit":{"eventsPerSecond":100,"burst":200}}`), jsonCT, "application/json"))
	want(400, "POST", "/api/sources", []byte(`{"name":""}`), jsonCT, "application/json")
	want(200, "GET", "/api/sources", nil)
	want(200, "PATCH", "/api/sources/"+created.ID, []byte(`{"enabled":false,"rotateWriteKey":true}`), jsonCT, "application/json")
	want(404, "PATCH", "/api/sources/src_nope", []byte(`{"enabled":false}`), jsonCT, "application/json")
	want(204, "DELETE", "/api/sources/"+created.ID, nil)
	want(404, "DELETE", "/api/sources/"+created.ID, nil)
	want(403, "POST", "/api/auth/sign-out", []byte(`{}`), jsonCT, "application/json", "Origin", "http://evil.example")
	want(200, "POST", "/api/auth/sign-out", []byte(`{}`), jsonCT, "application/json")
	want(401, "GET", "/session", nil)
}
