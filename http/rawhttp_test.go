package http_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMalformedHTTPAnsweredByNetHTTP pins down the README's promise about
// requests that are not valid HTTP: Go's net/http answers them itself,
// before any Cairn handler runs, in text/plain, and closes the connection
// (there is no hook to change that). Every request that is valid HTTP gets
// Cairn's JSON errors, including unknown routes and methods.
func TestMalformedHTTPAnsweredByNetHTTP(t *testing.T) {
	s := newServer(&fakeIngester{}, nopStore{})
	if err := s.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	addr := s.Addr().String()
	tests := []struct {
		name   string
		raw    string
		status int
		json   bool
	}{
		{"BadRequestLine", "GARBAGE\r\n\r\n", 400, false},
		{"MissingHost", "GET /health HTTP/1.1\r\n\r\n", 400, false},
		{"BadHost", "GET /health HTTP/1.1\r\nHost: a b\r\n\r\n", 400, false},
		{"MalformedHeader", "GET /health HTTP/1.1\r\nHost: x\r\nno-colon\r\n\r\n", 400, false},
		{"HeadersTooLarge", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n", 431, false},
		{"UnsupportedVersion", "GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, false},
		{"UnsupportedTransferEncoding", "POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, false},
		{"UnknownRouteIsJSON", "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, true},
		{"WrongMethodIsJSON", "DELETE /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			go func() { _, _ = io.WriteString(c, tt.raw) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			defer func() { _ = resp.Body.Close() }()
			ct := resp.Header.Get("Content-Type")
			if resp.StatusCode != tt.status || strings.HasPrefix(ct, "application/json") != tt.json {
				t.Errorf("status %d Content-Type %q; want %d, JSON %v", resp.StatusCode, ct, tt.status, tt.json)
			}
		})
	}
}
