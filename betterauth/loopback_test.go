package betterauth_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTrustLoopback: a development server without a base URL accepts
// browser sign-up and sign-in from the loopback origins of its own port,
// under either name, and nothing else; without TrustLoopback (production)
// the same requests are refused.
func TestTrustLoopback(t *testing.T) {
	for _, trust := range []bool{true, false} {
		e := newEnv(t, func(c *envConfig) {
			c.BaseURL, c.TrustedOrigins, c.TrustLoopback = "", nil, trust
		})
		srv := httptest.NewServer(e.handler)
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
		for i, tc := range []struct {
			name, origin string
			ok           bool
		}{
			{"Localhost", "http://localhost:" + port, true},
			{"IPv4", "http://127.0.0.1:" + port, true},
			{"IPv6", "http://[::1]:" + port, true},
			{"OtherPort", "http://localhost:1", false},
			{"HTTPS", "https://localhost:" + port, false},
			{"OtherHost", "http://evil.example:" + port, false},
		} {
			name := tc.name
			if !trust {
				name = "Strict" + name
			}
			t.Run(name, func(t *testing.T) {
				email := strings.ToLower(name) + "@example.com"
				want := tc.ok && trust
				for _, path := range []string{"/api/auth/sign-up/email", "/api/auth/sign-in/email"} {
					body := `{"name":"N","email":"` + email + `","password":"correct-horse-9"}`
					req, err := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Origin", tc.origin)
					req.Header.Set("Sec-Fetch-Site", "same-origin")
					req.Header.Set("Sec-Fetch-Mode", "cors")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					_ = resp.Body.Close() // the status is all this test reads
					if got := resp.StatusCode == http.StatusOK; got != want {
						t.Errorf("%d: POST %s from %s: status %d, want ok=%v", i, path, tc.origin, resp.StatusCode, want)
					}
					if !want && resp.StatusCode != http.StatusForbidden {
						t.Errorf("POST %s from %s: status %d, want 403", path, tc.origin, resp.StatusCode)
					}
				}
			})
		}
	}
}
