package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSourcesCLI runs `cairn sources` create, list, disable and enable in
// process against an embedded store, and its usage errors.
func TestSourcesCLI(t *testing.T) {
	t.Chdir(t.TempDir()) // no stray .env
	dir := t.TempDir()
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", dir), strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, key, errOut := cli("sources", "create", "--name", "web", "--events-per-second", "100", "--burst", "500")
	key = strings.TrimSpace(key)
	if code != 0 || len(key) != 32 || strings.ContainsAny(key, " \n") || !strings.Contains(errOut, "created source web") {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", code, key, errOut)
	}
	code, out, errOut := cli("sources", "list")
	fields := strings.Split(strings.TrimSpace(out), "\t")
	if code != 0 || len(fields) != 5 || !strings.HasPrefix(fields[0], "src_") || fields[1] != "enabled" || fields[2] != key ||
		fields[3] != "100/s burst 500" || fields[4] != "web" {
		t.Fatalf("list: exit %d, %q %q", code, out, errOut)
	}
	id := fields[0]
	if code, out, errOut := cli("sources", "disable", id); code != 0 || !strings.Contains(out, "is now disabled") {
		t.Fatalf("disable: exit %d, %q %q", code, out, errOut)
	}
	if _, out, _ := cli("sources", "list"); !strings.Contains(out, "\tdisabled\t") {
		t.Fatalf("list after disable: %q", out)
	}
	if code, out, _ := cli("sources", "enable", id); code != 0 || !strings.Contains(out, "is now enabled") {
		t.Fatalf("enable: exit %d, %q", code, out)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"CreateNoName", []string{"sources", "create"}, 2, "--name is required"},
		{"DisableNoID", []string{"sources", "disable"}, 2, "usage: cairn sources disable ID"},
		{"DisableUnknown", []string{"sources", "disable", "src_nope"}, 1, "no source with id src_nope"},
		{"Unknown", []string{"sources", "rotate"}, 2, `unknown sources command "rotate"`},
		{"Help", []string{"sources", "-h"}, 0, "cairn sources create"},
		{"CreateHelp", []string{"sources", "create", "-h"}, 0, "-events-per-second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := cli(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, errOut, tc.code, tc.stderr)
			}
		})
	}
}
