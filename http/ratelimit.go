package http

import (
	"math"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
)

// sourceLimiter holds one token bucket per source, counted in events. The
// buckets live in this process: with several Cairn nodes behind a load
// balancer, each node enforces a source's limit on its own share.
type sourceLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

// bucket is a token bucket: tokens refill at rate per second up to burst.
// Tokens may go negative when one request carries more events than the
// bucket holds (it is let through only when the bucket is full), so the
// debt is paid back before the next request passes.
type bucket struct {
	tokens float64
	last   time.Time
}

// take asks for n events' worth of tokens from the source's bucket under
// lim. It returns true when the events may pass, else how long to wait
// until they would.
func (l *sourceLimiter) take(sourceID string, lim cairn.RateLimit, n int, now time.Time) (bool, time.Duration) {
	if lim.Unlimited() || n <= 0 {
		return true, 0
	}
	rate := float64(lim.EventsPerSecond)
	burst := float64(lim.Burst)
	if burst <= 0 {
		burst = rate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*bucket)
	}
	b := l.buckets[sourceID]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		l.buckets[sourceID] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens += elapsed * rate
		b.last = now
	}
	b.tokens = min(b.tokens, burst) // also when the limit was lowered
	need := min(float64(n), burst)
	if b.tokens >= need {
		b.tokens -= float64(n)
		return true, 0
	}
	wait := time.Duration(math.Ceil((need - b.tokens) / rate * float64(time.Second)))
	return false, wait
}

// refund gives back n events' worth of tokens taken for events that were
// not accepted after all (the spool refused them).
func (l *sourceLimiter) refund(sourceID string, lim cairn.RateLimit, n int) {
	if lim.Unlimited() || n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[sourceID]; b != nil {
		b.tokens += float64(n)
	}
}
