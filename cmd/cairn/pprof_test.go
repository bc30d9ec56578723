package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
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
	if err := startPprof(t.Context(), "", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("off: %v", err)
	}
	if err := startPprof(t.Context(), "0.0.0.0:0", slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("non-loopback address accepted without CAIRN_PPROF_ALLOW_REMOTE")
	}

	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := startPprof(ctx, "127.0.0.1:0", slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no listening address logged: %s", logs.String())
	}
	resp, err := http.Get("http://" + m[1] + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("goroutine profile: status %d body %.100q", resp.StatusCode, body)
	}

	// Cancelling ctx stops the server.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get("http://" + m[1] + "/debug/pprof/"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pprof still serving 5s after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
