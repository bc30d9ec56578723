// Package deploy_test checks the deployment files that cannot be exercised on
// the build machine (there is no container engine, and the tests do not run
// under systemd): the systemd unit passes `systemd-analyze verify`, and the
// Dockerfile has the structure the README promises and its build command
// produces a working static binary.
package deploy_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// requireTool returns the path of a command the test needs. Locally a missing
// tool skips the test with a message; under CI=true it fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI=true: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

func buildStatic(t *testing.T, cmdline string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cairn")
	// The Dockerfile's command, with its output path and the repository root.
	cmdline = strings.Replace(cmdline, "/out/cairn", out, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}
	return out
}

func TestSystemdUnitVerifies(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	unit, err := os.ReadFile("cairn.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/cairn serve", "User=cairn", "KillSignal=SIGTERM",
		"Environment=CAIRN_ENV=production", "StateDirectory=cairn", "EnvironmentFile=/etc/cairn/cairn.env"} {
		if !strings.Contains(string(unit), want+"\n") {
			t.Errorf("cairn.service lacks %q", want)
		}
	}
	// verify checks that ExecStart's binary exists: point it at a real one.
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyUnit := strings.ReplaceAll(string(unit), "/usr/local/bin/cairn", bin)
	path := filepath.Join(dir, "cairn.service")
	if err := os.WriteFile(path, []byte(copyUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// Any output is a warning about the unit (an unknown key, a bad value).
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	var stages []string
	var buildCmd, user, healthcheck, volume, entrypoint string
	sc := bufio.NewScanner(f)
	var line string
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			line += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		line += l
		instr, rest, _ := strings.Cut(line, " ")
		line = ""
		switch strings.ToUpper(instr) {
		case "FROM":
			stages = append(stages, rest)
		case "RUN":
			if strings.Contains(rest, "go build") {
				buildCmd = rest
			}
		case "USER":
			user = rest
		case "HEALTHCHECK":
			healthcheck = rest
		case "VOLUME":
			volume = rest
		case "ENTRYPOINT":
			entrypoint = rest
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stages) != 2 || !strings.HasPrefix(stages[0], "golang:1.26") {
		t.Errorf("want a two-stage build on golang:1.26, got stages %q", stages)
	}
	if !strings.Contains(buildCmd, "CGO_ENABLED=0") || !strings.Contains(buildCmd, "./cmd/cairn") {
		t.Errorf("build command %q is not a static build of ./cmd/cairn", buildCmd)
	}
	if user == "" || regexp.MustCompile(`^(0|root)\b`).MatchString(user) {
		t.Errorf("USER %q: the image must run as a non-root user", user)
	}
	if !strings.Contains(healthcheck, `"healthcheck"`) {
		t.Errorf("HEALTHCHECK %q does not run cairn healthcheck", healthcheck)
	}
	if !strings.Contains(volume, "/data") || !strings.Contains(entrypoint, "/usr/local/bin/cairn") {
		t.Errorf("VOLUME %q / ENTRYPOINT %q", volume, entrypoint)
	}

	// The build command works here and yields a static binary that runs.
	bin := buildStatic(t, buildCmd)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "cairn ") {
		t.Fatalf("cairn version: %v\n%s", err, out)
	}
	if file, err := exec.LookPath("file"); err == nil {
		out, err := exec.Command(file, bin).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "statically linked") {
			t.Errorf("file %s: %v: %s", bin, err, out)
		}
	}
}
