package main

import (
	"bytes"
	"errors"
	"net"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestCLI: help, version, unknown flags and stray arguments, run in process.
func TestCLI(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		stdout   string // substring of stdout
		stderr   string // substring of stderr
		oneLine  bool   // stderr is exactly one line
		notInErr string // must not appear in stderr
	}{
		{name: "Version", args: []string{"version"}, code: 0, stdout: "go:          go1."},
		{name: "VersionFlag", args: []string{"--version"}, code: 0, stdout: "commit:"},
		{name: "VersionStrayArg", args: []string{"version", "x"}, code: 2, stderr: `unexpected argument "x"`, oneLine: true},
		{name: "ServeUnknownFlag", args: []string{"serve", "--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus", oneLine: true},
		{name: "ServeStrayArg", args: []string{"serve", "now"}, code: 2, stderr: `unexpected argument "now"`, oneLine: true},
		{name: "ExportStrayArg", args: []string{"export", "stray"}, code: 2, stderr: `unexpected argument "stray"`, oneLine: true},
		{name: "ExportHelpOnlyItsFlags", args: []string{"export", "-h"}, code: 0, stderr: "-user", notInErr: "-flush-size"},
		{name: "ServeHelpAllSettings", args: []string{"serve", "-h"}, code: 0, stderr: "-flush-size"},
		{name: "UsersCreateHelp", args: []string{"users", "create", "-h"}, code: 0, stderr: "-email", notInErr: "-pprof-addr"},
		{name: "UsersHelp", args: []string{"users", "-h"}, code: 0, stderr: "cairn users create"},
		{name: "UsersUnknown", args: []string{"users", "delete"}, code: 2, stderr: `unknown users command "delete"`, oneLine: true},
		{name: "LoadgenUnknownFlag", args: []string{"loadgen", "--nope"}, code: 2, stderr: "flag provided but not defined: -nope", oneLine: true},
		{name: "LoadgenStrayArg", args: []string{"loadgen", "x"}, code: 2, stderr: `unexpected argument "x"`, oneLine: true},
		{name: "LoadgenHelp", args: []string{"loadgen", "-h"}, code: 0, stderr: "-events-per-request"},
		{name: "BenchUnknownFlag", args: []string{"bench", "--nope"}, code: 2, stderr: "flag provided but not defined: -nope", oneLine: true},
		{name: "ServeNatsWithoutMongo", args: []string{"serve"}, env: map[string]string{"CAIRN_NATS_URL": "nats://127.0.0.1:1"}, code: 2,
			stderr: "but MONGODB_URI is not", oneLine: true},
		{name: "ServeNatsWithoutSecret", args: []string{"serve"}, env: map[string]string{"CAIRN_NATS_URL": "nats://127.0.0.1:1",
			"MONGODB_URI": "mongodb://127.0.0.1:1/x"}, code: 2, stderr: "but BETTER_AUTH_SECRET is not", oneLine: true},
		{name: "ServeNatsBadURL", args: []string{"serve"}, env: map[string]string{"CAIRN_NATS_URL": "http://127.0.0.1:1"}, code: 2,
			stderr: `invalid CAIRN_NATS_URL="http://127.0.0.1:1": must be comma-separated nats:// or tls:// URLs`, oneLine: true},
		{name: "ServeNatsDuplicateWindow", args: []string{"serve"}, env: map[string]string{"CAIRN_NATS_URL": "nats://127.0.0.1:1",
			"CAIRN_NATS_DUPLICATE_WINDOW": "5s", "CAIRN_NATS_ACK_TIMEOUT": "5s"}, code: 2, stderr: "must exceed CAIRN_NATS_ACK_TIMEOUT", oneLine: true},
		{name: "WriterWithoutNats", args: []string{"writer"}, code: 2, stderr: "CAIRN_NATS_URL is not set", oneLine: true},
		{name: "WriterWithoutMongo", args: []string{"writer"}, env: map[string]string{"CAIRN_NATS_URL": "nats://127.0.0.1:1"}, code: 2,
			stderr: "MONGODB_URI is not set", oneLine: true},
		{name: "WriterHelp", args: []string{"writer", "-h"}, code: 0, stderr: "-nats-ack-wait"},
		{name: "LogLevelListsValues", args: []string{"export"}, env: map[string]string{"CAIRN_LOG_LEVEL": "verbose"}, code: 2,
			stderr: `invalid CAIRN_LOG_LEVEL="verbose": must be debug, info, warn or error`, oneLine: true, notInErr: "slog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no stray .env, no ./data
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
			if tc.oneLine && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr is not one line: %q", stderr.String())
			}
			if tc.notInErr != "" && strings.Contains(stderr.String(), tc.notInErr) {
				t.Errorf("stderr %q contains %q", stderr.String(), tc.notInErr)
			}
		})
	}
}

func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := versionText(bi, true, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	for _, want := range []string{"cairn v1.2.3\n", "commit:      abc123 (modified)\n", "commit time: 2026-11-30T10:00:00Z\n",
		"built:       2026-12-01T09:00:00Z\n", "go:          go1.26.0\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("versionText lacks %q:\n%s", want, got)
		}
	}
	if got := versionText(nil, false, time.Time{}); !strings.Contains(got, "cairn unknown\n") || !strings.Contains(got, "built:       unknown\n") {
		t.Errorf("without build info:\n%s", got)
	}
}

// TestLoadgenAllFailedExitsNonZero: a run in which no request succeeds (here
// nothing listens) exits 1, not 0.
func TestLoadgenAllFailedExitsNonZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	if err := ln.Close(); err != nil { // nothing listens there now
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"loadgen", "--url", url, "--total", "20", "--concurrency", "2", "--timeout", "2s",
		"--progress-interval", "0"}, nil, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "every request failed") {
		t.Fatalf("exit %d, want 1 with 'every request failed'\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
}

// TestPprofAddrValidatedBeforeStores: a bad CAIRN_PPROF_ADDR is a
// configuration error, found before anything is opened.
func TestPprofAddrValidatedBeforeStores(t *testing.T) {
	for _, env := range []map[string]string{{"CAIRN_PPROF_ADDR": "0.0.0.0:6060"}, {"CAIRN_PPROF_ALLOW_REMOTE": "yes"}} {
		_, err := loadConfig("serve", nil, func(k string) string { return env[k] }, "", &bytes.Buffer{}, nil)
		var ce *configError
		if !errors.As(err, &ce) {
			t.Errorf("%v: err = %v, want a configError", env, err)
		}
	}
}
