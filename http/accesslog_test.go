package http_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAccessLog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		on    bool
		lines int
	}{{"On", true, 2}, {"Off", false, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := newServer(&fakeIngester{}, nopStore{})
			s.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
			s.AccessLog = tc.on
			h := s.Handler()
			post(t, h, []byte(`{"userId":"u1","sessionId":"s1","type":"page_view"}`), "Cookie", "better-auth.session_token=secret-token")
			req := httptest.NewRequest("GET", "/health?token=secret-query", nil)
			h.ServeHTTP(httptest.NewRecorder(), req)

			var got []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if strings.Contains(line, "secret") {
					t.Errorf("log line leaks a cookie or query: %s", line)
				}
				var m map[string]any
				if line == "" || json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "request" {
					continue
				}
				got = append(got, m)
			}
			if len(got) != tc.lines {
				t.Fatalf("%d access-log lines, want %d:\n%s", len(got), tc.lines, buf.String())
			}
			if !tc.on {
				return
			}
			want := []struct {
				method, route string
				status        float64
			}{{"POST", "POST /events", 202}, {"GET", "GET /health", 200}}
			for i, w := range want {
				m := got[i]
				if m["level"] != "INFO" || m["method"] != w.method || m["route"] != w.route || m["status"] != w.status {
					t.Errorf("line %d = %v, want %s %s %v at INFO", i, m, w.method, w.route, w.status)
				}
				if b, _ := m["bytes"].(float64); b <= 0 {
					t.Errorf("line %d: bytes = %v", i, m["bytes"])
				}
				if _, ok := m["duration_ms"].(float64); !ok {
					t.Errorf("line %d: no duration_ms", i)
				}
				if id, _ := m["request_id"].(string); id == "" {
					t.Errorf("line %d: no request_id", i)
				}
			}
		})
	}
}
