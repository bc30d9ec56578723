package betterauth

import (
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

// clientIP returns the address a request is rate-limited and recorded by.
// A single-entry X-Forwarded-For is believed only from a loopback or private
// peer (a reverse proxy), since anyone else could forge it.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if xff := strings.TrimSpace(r.Header.Get("X-Forwarded-For")); xff != "" && !strings.Contains(xff, ",") {
		if peer, err := netip.ParseAddr(host); err == nil && (peer.IsLoopback() || peer.IsPrivate()) {
			if a, err := netip.ParseAddr(xff); err == nil {
				return a.String()
			}
		}
	}
	return host
}

// limit applies the rate limit for one request under /api/auth and writes
// the 429 when it is over. It reports whether the request may proceed.
func (l *rateLimiter) limit(w http.ResponseWriter, r *http.Request, path string) bool {
	ok, retry := l.allow(clientIP(r)+"|"+path, limitFor(path))
	if !ok {
		w.Header().Set("X-Retry-After", strconv.Itoa(retry))
		writeAPIError(w, errTooManyRequests)
	}
	return ok
}
