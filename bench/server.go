package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a server started by the suite (Cairn or the no-op server).
type process struct {
	cmd     *exec.Cmd
	URL     string
	started time.Time
	exited  chan struct{}
	logPath string
}

// cleanEnv returns the environment without Cairn's own settings, so a
// developer's shell (MONGODB_URI, PORT, ...) cannot change what is measured.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "CAIRN_"), strings.HasPrefix(k, "MONGODB_"), strings.HasPrefix(k, "BETTER_AUTH_"),
			k == "PORT", k == "NODE_ENV", k == "GOMAXPROCS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startCairn runs `exe serve` on dataDir, on a free loopback port, with
// the extra serve flags, and waits until it listens. Its log goes to
// dataDir/../<name>.log.
func startCairn(ctx context.Context, exe, dataDir, name string, extra ...string) (*process, error) {
	// No access log: the no-op ceiling logs nothing either, and a line per
	// request would measure the log file's disk, not Cairn.
	args := []string{"serve", "--data-dir", dataDir, "--host", "127.0.0.1", "--port", "0",
		"--log-format", "json", "--log-level", "info", "--access-log", "false"}
	args = append(args, extra...)
	p := &process{logPath: filepath.Join(filepath.Dir(dataDir), name+".log")}
	return p, p.start(ctx, exe, filepath.Dir(dataDir), args, func(line []byte) string {
		var l struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &l) == nil && l.Msg == "listening" && l.Addr != "" {
			return "http://" + l.Addr
		}
		return ""
	})
}

// startNoop runs `exe bench --noop-server` and waits for its address.
func startNoop(ctx context.Context, exe, dir string) (*process, error) {
	p := &process{logPath: filepath.Join(dir, "noop.log")}
	return p, p.start(ctx, exe, dir, []string{"bench", "--noop-server", "127.0.0.1:0"}, func(line []byte) string {
		if a, ok := bytes.CutPrefix(line, []byte("listening ")); ok {
			return "http://" + string(bytes.TrimSpace(a))
		}
		return ""
	})
}

// start launches the process (in dir, so no .env file is picked up) and
// scans its stderr and stdout with ready until it returns the server URL.
// Its output is copied to p.logPath (Cairn logs no line per request).
func (p *process) start(ctx context.Context, exe, dir string, args []string, ready func([]byte) string) error {
	logf, err := os.Create(p.logPath)
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Dir = dir
	p.cmd.Env = cleanEnv()
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		logf.Close() //nolint:errcheck // leaving on the error returned below; the empty log is only released
		return fmt.Errorf("start %s: %w", exe, err)
	}
	p.exited = make(chan struct{})
	go func() {
		p.cmd.Wait() //nolint:errcheck // the exit status is not measured: an early exit fails start or the phase's requests, and the log says why
		pw.Close()   //nolint:errcheck // PipeWriter.Close always returns nil
		close(p.exited)
	}()
	urlc := make(chan string, 1)
	go func() {
		defer logf.Close() //nolint:errcheck // the log is a diagnostic copy of the output, with no one to report to here
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			logf.Write(append(line, '\n')) //nolint:errcheck // a diagnostic copy: a failed write must not stop the scan that finds the URL and drains the pipe
			if !found {
				if u := ready(line); u != "" {
					found = true
					urlc <- u
				}
			}
		}
		io.Copy(io.Discard, pr) //nolint:errcheck // only drains the pipe (after an over-long line) so the process never blocks on output
	}()
	select {
	case p.URL = <-urlc:
		return nil
	case <-p.exited:
		return fmt.Errorf("%s %s exited before listening (see %s)", exe, args[0], p.logPath)
	case <-time.After(60 * time.Second):
		p.Kill()
		return fmt.Errorf("%s %s did not listen within 60s (see %s)", exe, args[0], p.logPath)
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
}

// PID returns the process id.
func (p *process) PID() int { return p.cmd.Process.Pid }

// Stop asks the process to shut down (SIGTERM) and waits up to timeout
// before killing it.
func (p *process) Stop(timeout time.Duration) error {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.Kill()
		return fmt.Errorf("signal pid %d: %w: killed", p.PID(), err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("pid %d did not stop within %v: killed", p.PID(), timeout)
	}
}

// Kill kills the process (SIGKILL, a crash) and waits for it.
func (p *process) Kill() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill() //nolint:errcheck // it fails only for a process that already exited (os.ErrProcessDone), which p.exited then shows
	<-p.exited
}

// rssSampler polls /proc/<pid>/status VmRSS and keeps the maximum.
type rssSampler struct {
	mu   sync.Mutex
	max  int64
	stop chan struct{}
	done chan struct{}
}

// readRSS returns the resident set size of pid in bytes.
func readRSS(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := readRSS(pid); err == nil {
				s.mu.Lock()
				s.max = max(s.max, v)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the maximum RSS in MiB.
func (s *rssSampler) Stop() float64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.max) / (1 << 20)
}

// health is the part of GET /health the suite reads.
type health struct {
	Spool struct {
		Backlog int64 `json:"backlog"`
	} `json:"spool"`
}

func getHealth(ctx context.Context, base string) (*health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() //nolint:errcheck // the body was read to the end (or is abandoned); closing it only releases the connection
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return nil, fmt.Errorf("decode /health: %w", err)
	}
	return &h, nil
}

// waitDrained polls /health until the backlog is zero and returns when that
// was first seen.
func waitDrained(ctx context.Context, base string, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		h, err := getHealth(ctx, base)
		if err == nil && h.Spool.Backlog == 0 {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return time.Time{}, fmt.Errorf("wait for empty backlog: %w", err)
			}
			return time.Time{}, fmt.Errorf("backlog still %d after %v", h.Spool.Backlog, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ServeNoop serves the HTTP ceilings' no-op handlers on addr until ctx ends:
// POST /events reads and discards the body; POST /decode/events (when
// decode is not nil) reads the body and decodes it with decode — the
// HTTP+JSON ceiling of issue 14, which parses the events as Cairn does but
// neither spools nor stores them — answering 400 when it fails. Both answer
// 202 with a fixed body of the same shape as Cairn's. It prints
// "listening <addr>" to w once bound.
func ServeNoop(ctx context.Context, addr string, w io.Writer, decode func(body []byte) (int, error)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("noop listen: %w", err)
	}
	ack := []byte(`{"message":"Events accepted for processing","count":0,"eventIds":[]}`)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // the no-op server only drains the request; a broken request shows at the load generator
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		w.Write(ack) //nolint:errcheck // a failed write shows at the load generator
	})
	if decode != nil {
		mux.HandleFunc("POST /decode/events", func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
			if err == nil {
				_, err = decode(body)
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, "{\"error\":%q}", err.Error())
				return
			}
			w.WriteHeader(http.StatusAccepted)
			w.Write(ack) //nolint:errcheck // a failed write shows at the load generator
		})
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(w, "listening %s\n", ln.Addr())
	closed := make(chan error, 1)
	go func() {
		<-ctx.Done()
		closed <- srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := <-closed; err != nil {
		return fmt.Errorf("noop close: %w", err)
	}
	return nil
}
