// Package natstest runs real nats-server processes for tests: one server or
// a cluster of three with JetStream (file storage) on loopback.
//
// The binary is found through the CAIRN_NATS_SERVER_BIN environment
// variable (scripts/ci.d/60-nats.sh builds it and sets the variable). When
// the variable is unset, Start skips the test, unless CI=true, where it
// fails.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// EnvBin names the environment variable holding the nats-server binary's path.
const EnvBin = "CAIRN_NATS_SERVER_BIN"

// readyTimeout bounds how long Start waits for JetStream to answer.
const readyTimeout = 60 * time.Second

// Options shape a test cluster.
type Options struct {
	// Nodes is 1 (a single server) or 3 (a cluster; 1 if zero).
	Nodes int
	// SyncAlways sets `sync_interval: always` (fsync every write before
	// acknowledging it) instead of the server's default.
	SyncAlways bool
}

// Cluster is a set of nats-server processes on loopback, each with its data
// in a directory under the test's t.TempDir().
type Cluster struct {
	t     testing.TB
	bin   string
	dir   string
	opts  Options
	ports []int // client ports
	mu    sync.Mutex
	procs []*exec.Cmd
	dones []chan struct{}
}

// Bin returns the nats-server binary's path from EnvBin. When it is unset,
// it skips the test, or fails it when CI=true.
func Bin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvBin)
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: scripts/ci.d/60-nats.sh must build nats-server for CI", EnvBin)
		}
		t.Skipf("%s is not set; NATS tests need nats-server: run `source scripts/ci.d/60-nats.sh` (builds and caches it) and retry", EnvBin)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v", EnvBin, bin, err)
	}
	return bin
}

// Start launches the servers, waits until JetStream answers on every one,
// and stops them when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	c := &Cluster{t: t, bin: Bin(t), dir: t.TempDir(), opts: opts}
	ports := freePorts(t, 2*opts.Nodes)
	c.ports = ports[:opts.Nodes]
	routes := ports[opts.Nodes:]
	c.procs = make([]*exec.Cmd, opts.Nodes)
	c.dones = make([]chan struct{}, opts.Nodes)
	for i := range opts.Nodes {
		conf := fmt.Sprintf("server_name: n%d\nlisten: 127.0.0.1:%d\n", i, c.ports[i])
		js := fmt.Sprintf("jetstream { store_dir: %q", filepath.Join(c.dir, fmt.Sprintf("n%d", i)))
		if opts.SyncAlways {
			js += ", sync_interval: always"
		}
		conf += js + " }\n"
		if opts.Nodes > 1 {
			var rs []string
			for _, p := range routes {
				rs = append(rs, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
			conf += fmt.Sprintf("cluster { name: cairn, listen: 127.0.0.1:%d, routes: [%s] }\n", routes[i], strings.Join(rs, ", "))
		}
		if err := os.WriteFile(c.confPath(i), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.Kill(i)
		}
		if t.Failed() {
			c.logTail()
		}
	})
	for i := range opts.Nodes {
		c.Restart(i)
	}
	c.WaitReady()
	return c
}

func (c *Cluster) confPath(i int) string { return filepath.Join(c.dir, fmt.Sprintf("n%d.conf", i)) }
func (c *Cluster) logPath(i int) string  { return filepath.Join(c.dir, fmt.Sprintf("n%d.log", i)) }

// freePorts returns n distinct free loopback ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// URL returns server i's client URL.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.ports[i]) }

// URLs returns every server's client URL.
func (c *Cluster) URLs() []string {
	var out []string
	for i := range c.ports {
		out = append(out, c.URL(i))
	}
	return out
}

// Nodes returns the number of servers.
func (c *Cluster) Nodes() int { return len(c.ports) }

// Kill stops server i with SIGKILL and waits for it to exit (nothing if it
// is not running).
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	cmd, done := c.procs[i], c.dones[i]
	c.procs[i] = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart kills server i if it runs and starts it again with its data.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Kill(i)
	logf, err := os.OpenFile(c.logPath(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close() //nolint:errcheck // the child has its own copy
	cmd := exec.Command(c.bin, "-c", c.confPath(i))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("natstest: start %s: %v", c.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.mu.Lock()
	c.procs[i], c.dones[i] = cmd, done
	c.mu.Unlock()
}

// Running reports whether server i runs.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i] != nil
}

// WaitReady waits until JetStream answers account requests on every
// running server.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for i := range c.ports {
		if !c.Running(i) {
			continue
		}
		for {
			err := c.ping(i)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("natstest: server %d not ready: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond) // poll interval
		}
	}
}

func (c *Cluster) ping(i int) error {
	nc, err := nats.Connect(c.URL(i), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// Leader returns the index of the server leading stream, asking any
// running server; -1 if it cannot tell.
func (c *Cluster) Leader(stream string) int {
	for i := range c.ports {
		if !c.Running(i) {
			continue
		}
		if l := c.leaderVia(i, stream); l >= 0 {
			return l
		}
	}
	return -1
}

func (c *Cluster) leaderVia(i int, stream string) int {
	nc, err := nats.Connect(c.URL(i), nats.Timeout(time.Second))
	if err != nil {
		return -1
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		if len(c.ports) == 1 {
			return 0
		}
		return -1
	}
	var n int
	if _, err := fmt.Sscanf(info.Cluster.Leader, "n%d", &n); err != nil {
		return -1
	}
	return n
}

func (c *Cluster) logTail() {
	for i := range c.ports {
		b, err := os.ReadFile(c.logPath(i))
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		c.t.Logf("nats-server n%d log (tail):\n%s", i, b)
	}
}
