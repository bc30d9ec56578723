package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/loadgen"
)

// TestLoadgenVerifyE2E drives a real Cairn with `cairn loadgen --verify`:
// every acknowledged event must be found exactly once through the journey
// API, read with a session obtained by signing in.
func TestLoadgenVerifyE2E(t *testing.T) {
	base := metricsE2EServer(t)
	body := `{"email":"loadgen@example.com","password":"loadgen-password-1","name":"Loadgen"}`
	resp, err := http.Post(base+"/api/auth/sign-up/email", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Error(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("sign-up: status %d", resp.StatusCode)
	}

	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"loadgen", "--url", base, "--events-per-request", "25", "--concurrency", "4",
		"--total", "2000", "--users", "30", "--gzip", "--verify", "--verify-timeout", "30s", "--json",
		"--email", "loadgen@example.com", "--password", "loadgen-password-1"}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("cairn loadgen exited %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	var res loadgen.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("decode --json output: %v\n%s", err, stdout.String())
	}
	if res.Events != 2000 || res.Requests != 80 || res.Status["202"] != 80 {
		t.Errorf("events %d requests %d status %v, want 2000 events in 80 x 202", res.Events, res.Requests, res.Status)
	}
	v := res.Verify
	if v == nil || !v.OK || v.Found != 2000 || v.Duplicated != 0 || v.Users != 30 {
		t.Errorf("verify = %+v, want all 2000 found once over 30 users", v)
	}

	// Journey mode reads those users' pages with the same credentials.
	stdout.Reset()
	code = run(t.Context(), []string{"loadgen", "--url", base, "--mode", "journey", "--total", "50", "--users", "30",
		"--journey-limit", "10", "--json", "--email", "loadgen@example.com", "--password", "loadgen-password-1"}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("cairn loadgen --mode journey exited %d: %s", code, stderr.String())
	}
	res = loadgen.Result{}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Status["200"] != 50 || res.Events != 500 {
		t.Errorf("journey reads: status %v events %d, want 50 x 200 returning 10 events each", res.Status, res.Events)
	}
}
