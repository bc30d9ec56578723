// Package mongotest runs a real MongoDB wire-protocol server for tests:
// FerretDB v1.24.2 with its SQLite backend, built from tools/ferretdb.
//
// The binary is found through the CAIRN_FERRETDB_BIN environment variable
// (scripts/ci.d/10-ferretdb.sh builds it and sets the variable). When the
// variable is unset, Start skips the test, unless CI=true, where it fails.
//
// FerretDB is not MongoDB: it has no TTL indexes, uses no index for reads
// (every query scans the collection), and rejects payload keys containing
// "." or starting with "$". Keep test collections small.
package mongotest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvBin names the environment variable holding the FerretDB binary's path.
const EnvBin = "CAIRN_FERRETDB_BIN"

// startTimeout bounds how long Start waits for FerretDB to listen.
const startTimeout = 60 * time.Second

// Server is a running FerretDB process listening on a loopback address, with
// its data in a directory under the test's t.TempDir().
type Server struct {
	t   testing.TB
	bin string
	dir string

	mu   sync.Mutex
	addr string // host:port, fixed after the first start
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Bin returns the FerretDB binary's path from EnvBin. When it is unset, it
// skips the test, or fails it when CI=true.
func Bin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvBin)
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: scripts/ci.d/10-ferretdb.sh must build FerretDB for CI", EnvBin)
		}
		t.Skipf("%s is not set; MongoDB tests need FerretDB: run `source scripts/ci.d/10-ferretdb.sh` (builds and caches it) and retry", EnvBin)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v", EnvBin, bin, err)
	}
	return bin
}

// Start launches FerretDB on 127.0.0.1 with a fresh SQLite directory and
// waits until it accepts connections. The process is killed when the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Bin(t), dir: t.TempDir(), addr: "127.0.0.1:0"}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.logTail()
		}
	})
	s.start()
	return s
}

// URI returns the server's MongoDB URI without a database, e.g.
// "mongodb://127.0.0.1:12345/".
func (s *Server) URI() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "mongodb://" + s.addr + "/"
}

// DatabaseURI returns the server's URI with db as its database path.
func (s *Server) DatabaseURI(db string) string {
	return s.URI() + url.PathEscape(db)
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Stop stops the server with SIGTERM (SIGKILL after 10 s) and waits for it to
// exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Kill stops the server abruptly with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops the server if it runs and starts it again on the same
// address with the same data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("mongotest: server already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "ferretdb.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatalf("mongotest: open log: %v", err)
	}
	defer logf.Close() //nolint:errcheck // the child process has its own copy; ours was never written to

	var lastErr error
	// Restarting on a fixed port can race with the old socket's teardown:
	// retry a few times.
	for attempt := 0; attempt < 20; attempt++ {
		addr, err := s.launch(logf)
		if err == nil {
			s.addr = addr
			return
		}
		lastErr = err
		if s.addr == "127.0.0.1:0" {
			break
		}
		// A pause between retries of the launch above (which itself waits
		// for the server's "listening" line), not a wait that hopes.
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("mongotest: start ferretdb: %v (log: %s)", lastErr, filepath.Join(s.dir, "ferretdb.log"))
}

var listeningRE = regexp.MustCompile(`^ferretdb listening mongodb://([^/]+)/`)

// launch starts the process and waits for its "listening" line. s.mu is held.
func (s *Server) launch(logf *os.File) (string, error) {
	cmd := exec.Command(s.bin, "-listen", s.addr, "-dir", filepath.Join(s.dir, "data"), "-log-level", "error")
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() { // drain until exit
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case line, ok := <-lines:
		if m := listeningRE.FindStringSubmatch(line); ok && m != nil {
			s.cmd, s.done = cmd, done
			return m[1], nil
		}
		_ = cmd.Process.Kill()
		<-done
		return "", fmt.Errorf("ferretdb did not start (%v): %q", cmd.ProcessState, line)
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
		return "", errors.New("ferretdb did not listen within " + startTimeout.String())
	}
}

func (s *Server) logTail() {
	b, err := os.ReadFile(filepath.Join(s.dir, "ferretdb.log"))
	if err != nil || len(b) == 0 {
		return
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	s.t.Logf("ferretdb log (tail):\n%s", b)
}

// DatabaseName returns a fresh database name for t: its name, sanitised and
// shortened, plus a random suffix.
func DatabaseName(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t_" + strings.Trim(name, "_") + "_" + hex.EncodeToString(b[:])
}
