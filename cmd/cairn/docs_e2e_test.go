package main

// Headless Chromium against a real Cairn: the API explorer at /api-docs
// renders every operation of the document from the embedded assets alone.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath returns the Chromium binary (CAIRN_CHROMIUM, set by
// scripts/ci.d/30-chromium.sh, or /usr/bin/chromium). Without one the test
// is skipped, except in CI where it must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("CAIRN_CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s (scripts/ci.d/30-chromium.sh installs it): %v", bin, err)
		}
		t.Skipf("chromium not found at %s; run scripts/ci.d/30-chromium.sh or set CAIRN_CHROMIUM", bin)
	}
	return bin
}

// chromiumArgs are the flags every headless run uses, with a fresh profile.
func chromiumArgs(t *testing.T) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
	}
}

// runChromium runs a headless Chromium to completion (bounded by two
// minutes) and returns its standard output. Its whole process group is
// killed if it overruns.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(chromiumArgs(t), args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String(), 30))
	}
	return out
}

func TestDocsSwaggerUIInChromium(t *testing.T) {
	bin := chromiumPath(t)
	p := startCairn(t, "")

	// The operations the document declares, as Swagger UI names them.
	resp, err := p.client.Get(p.URL + "/api-docs.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api-docs.json: %d %v", resp.StatusCode, err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Tags        []string `json:"tags"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.OperationID == "" || len(op.Tags) == 0 {
				t.Fatalf("%s %s: no operationId or tag", method, path)
			}
			want = append(want, "operations-"+op.Tags[0]+"-"+op.OperationID)
		}
	}
	if len(want) < 14 {
		t.Fatalf("only %d operations in the document", len(want))
	}

	// The rendered page: Swagger UI fetched /api-docs.json and drew every
	// operation. virtual-time-budget lets its scripts finish first.
	dom := string(runChromium(t, bin, "--virtual-time-budget=15000", "--dump-dom", p.URL+"/api-docs"))
	if strings.Contains(dom, "Failed to load API definition") {
		t.Fatalf("Swagger UI could not load the document:\n%s", clipDOM(dom))
	}
	rendered := map[string]bool{}
	for _, m := range regexp.MustCompile(`id="(operations-[^"]+)"`).FindAllStringSubmatch(dom, -1) {
		rendered[m[1]] = true
	}
	for _, id := range want {
		if !rendered[id] {
			t.Errorf("operation %s is not rendered", id)
		}
	}
	for _, text := range []string{"/users/{userId}/journey", "/api/auth/sign-in/email", "202 means durable", "OAS 3.1"} {
		if !strings.Contains(dom, text) && !strings.Contains(dom, strings.ReplaceAll(text, "/", "/\u200b")) {
			t.Errorf("the rendered page lacks %q", text)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", clipDOM(dom))
	}

	// A screenshot, as a CI artifact.
	shot := filepath.Join(t.TempDir(), "api-docs.png")
	runChromium(t, bin, "--virtual-time-budget=15000", "--window-size=1280,2400", "--screenshot="+shot, p.URL+"/api-docs")
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("no PNG screenshot at %s: %v", shot, err)
	}
	if len(png) < 50_000 {
		t.Errorf("screenshot is only %d bytes: the page looks blank", len(png))
	}
	t.Logf("screenshot of /api-docs: %s (%d bytes)", shot, len(png))
	if dir := os.Getenv("CAIRN_ARTIFACTS_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			kept := filepath.Join(dir, "api-docs.png")
			if err := os.WriteFile(kept, png, 0o644); err == nil {
				t.Logf("screenshot kept at %s", kept)
			}
		}
	}
}

// clipDOM shortens a DOM dump for a failure message.
func clipDOM(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "…"
	}
	return s
}
