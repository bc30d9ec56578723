package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	p := startMain(t, "")
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"healthcheck", "--url", p.URL + "/health"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("healthy server: exit %d, stderr %q", code, errOut.String())
	}
	if strings.TrimSpace(out.String()) != "ok" {
		t.Errorf("stdout %q, want ok", out.String())
	}

	// A port nobody listens on: exit 1 with one line naming the URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/health"
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run(t.Context(), []string{"healthcheck", "--url", dead, "--timeout", "2s"}, nil, &out, &errOut); code != 1 {
		t.Fatalf("no server: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), dead) || strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("stderr %q: want one line naming %s", errOut.String(), dead)
	}

	// A stray argument is a usage error.
	if code := run(t.Context(), []string{"healthcheck", "extra"}, nil, &out, &errOut); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
}
