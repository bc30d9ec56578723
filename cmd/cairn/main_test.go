package main

// End-to-end test harness. startMain runs a Main in the test process on
// 127.0.0.1:0 with its own data directory and environment: most end-to-end
// tests use it. startCairn runs the real binary (built once by TestMain),
// for what needs a separate process: kill -9 and crash recovery, signals,
// exit codes, the data-dir lock, a busy port.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/apitest"
)

// cairnBin is the binary built by TestMain.
var cairnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cairnBin = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", cairnBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cairn:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "remove test binary dir:", err)
	}
	os.Exit(code)
}

// proc is a running Cairn process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	URL     string
	DataDir string
	env     []string
	logPath string
	exited  chan struct{}
	exitErr error
	client  *http.Client

	sub       string      // the binary's subcommand ("" = serve)
	inProcess bool        // started by startMain
	main      *Main       // the running in-process server (nil when stopped)
	logs      *syncBuffer // the in-process server's log
}

// startMain starts Cairn in the test process — the same Main `cairn serve`
// runs — with a fresh data dir (or dataDir if not empty) and extra
// "KEY=value" settings (nothing else from the environment or a .env file),
// on 127.0.0.1:0. It is closed at the end of the test if still running.
func startMain(t *testing.T, dataDir string, env ...string) *proc {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	p := &proc{t: t, DataDir: dataDir, env: env, inProcess: true}
	p.start()
	return p
}

// startInProcess opens a Main configured like start configures the binary.
func (p *proc) startInProcess() {
	t := p.t
	t.Helper()
	settings := map[string]string{"PORT": "0", "CAIRN_HOST": "127.0.0.1", "CAIRN_DATA_DIR": p.DataDir,
		"CAIRN_LOG_FORMAT": "json", "CAIRN_LOG_LEVEL": "debug"}
	for _, kv := range p.env {
		k, v, _ := strings.Cut(kv, "=")
		settings[k] = v
	}
	cfg, err := loadConfig("serve", nil, func(k string) string { return settings[k] }, "", io.Discard, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	p.logs = &syncBuffer{}
	m := &Main{Config: cfg, Logger: newLogger(cfg, p.logs)}
	if err := m.Open(t.Context()); err != nil {
		if cerr := m.Close(context.Background()); cerr != nil {
			t.Errorf("close after failed open: %v", cerr)
		}
		t.Fatalf("open cairn: %v\n%s", err, p.logs.String())
	}
	p.main = m
	p.URL = m.URL()
	t.Cleanup(func() {
		if p.main == m {
			if err := m.Close(context.Background()); err != nil {
				t.Errorf("cairn close: %v", err)
			}
			p.main = nil
		}
		if t.Failed() {
			t.Logf("cairn log:\n%s", tail(p.Logs(), 60))
		}
	})
	jar, _ := cookiejar.New(nil)
	p.client = newClient(t)
	p.client.Jar = jar
}

// startCairn starts the binary with a fresh data dir (or dataDir if not
// empty) and extra "KEY=value" environment entries, and waits until it
// listens. The process is killed at the end of the test if still running.
func startCairn(t *testing.T, dataDir string, env ...string) *proc {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	p := &proc{t: t, DataDir: dataDir, env: env}
	p.start()
	return p
}

func (p *proc) start() {
	t := p.t
	t.Helper()
	if p.inProcess {
		p.startInProcess()
		return
	}
	var base []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PORT" || k == "MONGODB_URI" || k == "NODE_ENV" || strings.HasPrefix(k, "CAIRN_") || strings.HasPrefix(k, "BETTER_AUTH_") {
			continue
		}
		base = append(base, kv)
	}
	base = append(base, "PORT=0", "CAIRN_HOST=127.0.0.1", "CAIRN_DATA_DIR="+p.DataDir, "CAIRN_LOG_FORMAT=json", "CAIRN_LOG_LEVEL=debug")
	sub := p.sub
	if sub == "" {
		sub = "serve"
	}
	cmd := exec.Command(cairnBin, sub)
	cmd.Env = append(base, p.env...)
	cmd.Dir = t.TempDir() // no stray .env
	p.logPath = filepath.Join(t.TempDir(), "cairn.log")
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cairn: %v", err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	addr := make(chan string, 1)
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if _, err := logFile.Write(append(line, '\n')); err != nil {
				t.Errorf("cairn log: %v", err)
			}
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
	}()
	go func() {
		copied.Wait()
		p.exitErr = cmd.Wait()
		if err := logFile.Close(); err != nil {
			t.Errorf("cairn log: %v", err)
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			// ErrProcessDone: it exited since the select looked.
			if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("kill cairn: %v", err)
			}
			<-p.exited
		}
		if t.Failed() {
			t.Logf("cairn log (%s):\n%s", p.logPath, tail(p.Logs(), 60))
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.exited:
		t.Fatalf("cairn exited during start-up: %v\n%s", p.exitErr, p.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("cairn did not start listening within 60s\n%s", p.Logs())
	}
	jar, _ := cookiejar.New(nil)
	p.client = newClient(t)
	p.client.Jar = jar
}

// startCairnCmd is startCairn for another subcommand that logs "listening"
// with its address once ready (`cairn writer`).
func startCairnCmd(t *testing.T, sub, dataDir string, env ...string) *proc {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	p := &proc{t: t, DataDir: dataDir, env: env, sub: sub}
	p.start()
	return p
}

// restart starts the process again on the same data dir (after Stop or Kill).
func (p *proc) restart() {
	p.t.Helper()
	p.start()
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *proc) Kill() {
	p.t.Helper()
	if p.inProcess {
		p.t.Fatal("Kill needs a real process: use startCairn")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill cairn: %v", err)
	}
	<-p.exited
}

// Stop sends SIGTERM and waits for a clean exit (status 0); in process, it
// closes the Main as serve does on SIGTERM.
func (p *proc) Stop() {
	p.t.Helper()
	if p.inProcess {
		m := p.main
		p.main = nil
		if err := m.Close(context.Background()); err != nil {
			p.t.Fatalf("cairn close: %v\n%s", err, tail(p.Logs(), 40))
		}
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("signal cairn: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("cairn did not exit within 60s of SIGTERM")
	}
	if p.exitErr != nil {
		p.t.Fatalf("cairn exited with %v after SIGTERM\n%s", p.exitErr, tail(p.Logs(), 40))
	}
}

// Logs returns everything the process logged.
func (p *proc) Logs() string {
	if p.inProcess {
		return p.logs.String()
	}
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newClient returns the HTTP client every end-to-end test uses.
// Every exchange is validated against the OpenAPI document (apitest), so a
// changed status code or field fails the test.
func newClient(t *testing.T) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: apitest.NewTransport(t, nil)}
}

// do sends a request with p's client (which carries p's session cookie once
// login was called) and returns the status, headers and body.
func (p *proc) do(method, path string, body []byte, header ...string) (int, http.Header, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(p.t.Context(), method, p.URL+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() {
		if err := resp.Body.Close(); err != nil {
			p.t.Errorf("%s %s: close body: %v", method, path, err)
		}
	}()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// login signs up a fresh account (sign-up is open in development) so that
// p's client carries a session cookie for the protected reads. Without the
// auth routes (404) it does nothing.
func (p *proc) login() {
	p.t.Helper()
	email := fmt.Sprintf("e2e-%d@example.com", time.Now().UnixNano())
	body := fmt.Sprintf(`{"email":%q,"password":"correct-horse-9","name":"E2E"}`, email)
	status, _, b := p.do("POST", "/api/auth/sign-up/email", []byte(body))
	if status == http.StatusNotFound {
		return
	}
	if status != http.StatusOK {
		p.t.Fatalf("sign-up: %d %s", status, b)
	}
}

// waitFor polls cond (every 10 ms, on a ticker) until it holds, and fails
// the test with what was awaited after timeout or when the test ends. It is
// how end-to-end tests wait: on a condition, never a fixed sleep.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	expired := time.After(timeout)
	for {
		select {
		case <-tick.C:
			if cond() {
				return
			}
		case <-expired:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting for %s", what)
		}
	}
}

// decode unmarshals a JSON body or fails the test.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, b, err)
	}
	return v
}
