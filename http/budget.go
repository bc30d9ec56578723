package http

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
)

// Defaults for Server.BodyMemory and Server.BodyMemoryWait.
const (
	// DefaultBodyMemory is the default budget for request-body memory
	// across all in-flight requests.
	DefaultBodyMemory = 64 << 20
	// DefaultBodyMemoryWait is how long a request waits, by default, for
	// its first share of the budget.
	DefaultBodyMemoryWait = time.Second
)

// errBodyMemory is the answer when the body budget is exhausted.
var errBodyMemory = &cairn.Error{Code: cairn.EUNAVAILABLE,
	Message: "Server busy decoding other requests; retry later.", Err: cairn.ErrBodyMemory}

// bodyBudget bounds the memory that request bodies hold across every
// in-flight request: the bytes read from the wire, the bytes they inflate
// to, and the decoded events (with their spool encoding), which are of the
// same order. A request takes its share through a bodyLease as the body is
// read and gives it all back when its handler returns.
//
// It is one reusable piece: every route that reads a client body of events
// (POST /events, and routes reusing its body reader, such as a tracking API
// under /v1) reads it through Server.readBody, which draws on the server's
// one budget, so the bound holds across all of them.
//
// A lease waits (up to the configured wait) only for its first share, while
// it holds nothing; growing a lease that already holds memory never waits —
// it either gets the bytes at once or the request is refused with 503. Waits
// while holding memory would let concurrent requests each hold part of the
// budget and wait for each other until every one of them timed out.
type bodyBudget struct {
	capacity int64
	wait     time.Duration

	mu    sync.Mutex
	used  int64
	high  int64
	freed chan struct{} // closed (and replaced) whenever memory is released
}

func newBodyBudget(capacity int64, wait time.Duration) *bodyBudget {
	if capacity <= 0 {
		capacity = DefaultBodyMemory
	}
	if wait <= 0 {
		wait = DefaultBodyMemoryWait
	}
	return &bodyBudget{capacity: capacity, wait: wait, freed: make(chan struct{})}
}

// tryAcquire takes n bytes if they are free, and otherwise returns the
// channel that is closed when memory is next released.
func (b *bodyBudget) tryAcquire(n int64) (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.capacity {
		return false, b.freed
	}
	b.used += n
	b.high = max(b.high, b.used)
	return true, nil
}

// acquire takes n bytes, waiting up to b.wait for them when wait is set.
func (b *bodyBudget) acquire(ctx context.Context, n int64, wait bool) error {
	if n > b.capacity {
		return errBodyMemory
	}
	ok, freed := b.tryAcquire(n)
	if ok {
		return nil
	}
	if !wait {
		return errBodyMemory
	}
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	for {
		select {
		case <-freed:
		case <-timer.C:
			return errBodyMemory
		case <-ctx.Done():
			return ctx.Err()
		}
		if ok, freed = b.tryAcquire(n); ok {
			return nil
		}
	}
}

func (b *bodyBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// stats returns the bytes held now and the most ever held at once.
func (b *bodyBudget) stats() (held, high int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.high
}

// bodyLease is one request's share of a bodyBudget.
type bodyLease struct {
	b      *bodyBudget
	ctx    context.Context
	held   int64
	credit int64 // reserved but not yet used
}

// reserve takes n bytes for later grow calls, waiting for them if the
// lease holds nothing yet.
func (l *bodyLease) reserve(n int64) error {
	if err := l.b.acquire(l.ctx, n, l.held == 0); err != nil {
		return err
	}
	l.held += n
	l.credit += n
	return nil
}

// grow adds n bytes to the lease, from its reserve first; only the first
// share may wait.
func (l *bodyLease) grow(n int64) error {
	if l.credit >= n {
		l.credit -= n
		return nil
	}
	if err := l.b.acquire(l.ctx, n, l.held == 0); err != nil {
		return err
	}
	l.held += n
	return nil
}

// release returns everything the lease holds.
func (l *bodyLease) release() {
	l.b.release(l.held)
	l.held, l.credit = 0, 0
}

// readAll reads r to its end or to limit+1 bytes, whichever comes first,
// drawing every buffer it allocates from the lease. sizeHint, when
// positive, is the expected length (such as Content-Length). Buffers
// outgrown are counted until the lease is released, as the garbage they
// become is only reclaimed later.
func (l *bodyLease) readAll(r io.Reader, sizeHint, limit int64) ([]byte, error) {
	size := int64(32 << 10)
	if sizeHint > 0 {
		size = sizeHint + 1 // room to see the end without growing
	}
	size = min(size, limit+1)
	if err := l.grow(size); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, nil
			}
			next := min(2*int64(cap(buf)), limit+1)
			if err := l.grow(next); err != nil {
				return nil, err
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// newLease starts a request's share of the server's body budget; the
// caller must release it.
func (s *Server) newLease(r *http.Request) *bodyLease {
	return &bodyLease{b: s.budget, ctx: r.Context()}
}

// BodyMemoryHighWater returns the most bytes request bodies have held at
// once since the server started (never more than BodyMemory).
func (s *Server) BodyMemoryHighWater() int64 {
	s.init()
	_, high := s.budget.stats()
	return high
}

// BodyMemoryHeld returns the bytes request bodies hold now.
func (s *Server) BodyMemoryHeld() int64 {
	s.init()
	held, _ := s.budget.stats()
	return held
}
