package betterauth

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate limits, as Better Auth's defaults in production: 100 requests per 10
// seconds per client and path, and 3 per 10 seconds on the credential paths.
const (
	rateWindow      = 10 * time.Second
	rateMax         = 100
	rateMaxStrict   = 3
	rateSweepAbove  = 10000
	rateLimitedPath = "/sign-in,/sign-up,/change-password,/change-email"
)

// rateLimiter counts requests per (client, path) in fixed windows. It lives
// in memory: a restart or a second process starts from zero.
type rateLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	start time.Time
	count int
}

func newRateLimiter(now func() time.Time) *rateLimiter {
	return &rateLimiter{now: now, buckets: map[string]*bucket{}}
}

// allow counts one request for key against max and, when it is over,
// returns false and the whole seconds until the window ends.
func (l *rateLimiter) allow(key string, limit int) (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) > rateSweepAbove {
		for k, b := range l.buckets {
			if now.Sub(b.start) >= rateWindow {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil || now.Sub(b.start) >= rateWindow {
		l.buckets[key] = &bucket{start: now, count: 1}
		return true, 0
	}
	if b.count >= limit {
		wait := b.start.Add(rateWindow).Sub(now)
		return false, int((wait + time.Second - 1) / time.Second)
	}
	b.count++
	return true, 0
}

// limitFor returns the request limit for a path under /api/auth.
func limitFor(path string) int {
	for _, p := range strings.Split(rateLimitedPath, ",") {
		if strings.HasPrefix(path, p) {
			return rateMaxStrict
		}
	}
	return rateMax
}

// clientIP returns the address a request is rate-limited and recorded by:
// the peer, unless the peer is one of the trusted proxies. Then
// X-Forwarded-For is read from the right (each proxy appends the address it
// received from), skipping trusted proxies, and the first address that is
// not one is the client; entries left of it are the client's to forge and
// are never believed. A malformed entry stops the walk at the peer.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := ""
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		a, err := netip.ParseAddr(hop)
		if err != nil {
			return host
		}
		client = a.Unmap().String()
		if !isTrusted(a, trusted) {
			return client
		}
	}
	if client == "" { // no header: the proxy itself
		return host
	}
	return client // every hop a trusted proxy: the leftmost
}

// isTrusted reports whether a is within one of the trusted prefixes.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies parses a comma-separated list of IP addresses and
// CIDR prefixes (CAIRN_TRUSTED_PROXIES); an empty string is none.
func ParseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// limit applies the rate limit for one request from client (see clientIP)
// under /api/auth and writes the 429 when it is over. It reports whether the
// request may proceed.
func (l *rateLimiter) limit(w http.ResponseWriter, path, client string) bool {
	ok, retry := l.allow(client+"|"+path, limitFor(path))
	if !ok {
		w.Header().Set("X-Retry-After", strconv.Itoa(retry))
		writeAPIError(w, errTooManyRequests)
	}
	return ok
}
