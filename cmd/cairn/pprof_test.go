package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestCheckPprofAddr(t *testing.T) {
	for _, tc := range []struct {
		addr        string
		allowRemote bool
		ok          bool
	}{
		{"127.0.0.1:6060", false, true},
		{"localhost:6060", false, true},
		{"[::1]:6060", false, true},
		{":6060", false, false},
		{"0.0.0.0:6060", false, false},
		{"10.1.2.3:6060", false, false},
		{"0.0.0.0:6060", true, true},
		{"nonsense", false, false},
		{"nonsense", true, false},
	} {
		err := checkPprofAddr(tc.addr, tc.allowRemote)
		if (err == nil) != tc.ok {
			t.Errorf("checkPprofAddr(%q, %v) = %v, want ok=%v", tc.addr, tc.allowRemote, err, tc.ok)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStartPprof(t *testing.T) {
	if p, err := startPprof("", false, slog.New(slog.DiscardHandler)); p != nil || err != nil {
		t.Fatalf("off: %v, %v", p, err)
	}
	if _, err := startPprof("0.0.0.0:0", false, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("non-loopback address accepted without CAIRN_PPROF_ALLOW_REMOTE")
	}

	var logs syncBuffer
	p, err := startPprof("127.0.0.1:0", false, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String())
	if m == nil || m[1] != p.Addr().String() {
		t.Fatalf("listening address %s not logged: %s", p.Addr(), logs.String())
	}
	resp, err := http.Get("http://" + m[1] + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if err := resp.Body.Close(); err != nil {
		t.Error(err)
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("goroutine profile: status %d body %.100q", resp.StatusCode, body)
	}

	// Close stops the server: the listener is gone when it returns.
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get("http://" + m[1] + "/debug/pprof/"); err == nil {
		resp.Body.Close() //nolint:errcheck // failing on the next line; closing only releases the connection
		t.Fatal("pprof still serving after Close")
	}
}

// TestMainOwnsPprof: Main starts pprof in Open and stops it in Close.
func TestMainOwnsPprof(t *testing.T) {
	p := startMain(t, "", "CAIRN_PPROF_ADDR=127.0.0.1:0")
	addr := p.main.PprofAddr()
	if addr == "" {
		t.Fatal("pprof not started by Main.Open")
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Error(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("pprof cmdline: %d", resp.StatusCode)
	}
	p.Stop()
	if resp, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		resp.Body.Close() //nolint:errcheck // failing on the next line; closing only releases the connection
		t.Fatal("pprof still serving after Main.Close")
	}
}
