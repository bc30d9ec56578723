package betterauth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// TestRateLimitForwardedFor checks which address the sign-in rate limit
// counts: X-Forwarded-For is believed only from a configured trusted proxy,
// so a client on a private network cannot rotate it to dodge the limit.
func TestRateLimitForwardedFor(t *testing.T) {
	signIn := `{"email":"nobody@example.com","password":"wrong-password-123"}`
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     func(i int) string // X-Forwarded-For of the i-th attempt
		want429 bool               // the 4th attempt is limited
	}{
		{"PrivatePeerRotatingUntrusted", nil, "10.0.0.5:4000", func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }, true},
		{"LoopbackPeerRotatingUntrusted", nil, "127.0.0.1:4000", func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }, true},
		{"TrustedProxyDistinctClients", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "10.0.0.5:4000",
			func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }, false},
		{"TrustedProxyOneClient", []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")}, "10.0.0.5:4000",
			func(int) string { return "203.0.113.7" }, true},
		{"TrustedProxyChainSpoofedLeft", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "10.0.0.5:4000",
			// The client forges the left entries; the proxy appends the real one.
			func(i int) string { return fmt.Sprintf("198.51.100.%d, 203.0.113.7, 10.1.2.3", i+1) }, true},
		{"UntrustedPeerOutsideList", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "192.168.1.9:4000",
			func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }, true},
		{"TrustedProxyMalformedHeader", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "10.0.0.5:4000",
			func(i int) string { return fmt.Sprintf("not-an-ip-%d", i) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *envConfig) { c.Production = true; c.TrustedProxies = tt.trusted })
			var last int
			for i := range 4 {
				r := httptest.NewRequest("POST", "/api/auth/sign-in/email", strings.NewReader(signIn))
				r.RemoteAddr = tt.peer
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Origin", "http://localhost:3000")
				r.Header.Set("X-Forwarded-For", tt.xff(i))
				w := httptest.NewRecorder()
				e.handler.ServeHTTP(w, r)
				last = w.Code
			}
			if got := last == http.StatusTooManyRequests; got != tt.want429 {
				t.Errorf("4th sign-in: status %d; want 429: %v", last, tt.want429)
			}
		})
	}
}
