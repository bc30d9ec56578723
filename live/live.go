// Package live fans accepted events out to live subscribers (the console's
// live tail, GET /api/live). Ingest publishes each durable batch once;
// every subscriber has its own bounded buffer, so publishing never waits
// for a subscriber: when a subscriber's buffer is full the new events are
// dropped for that subscriber only and counted, and its next read reports
// how many it skipped. Subscribers filter by event type, user id and
// source id, and unsubscribe when they go away.
package live

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
)

// DefaultBuffer is the number of events a subscriber may fall behind by
// before events are dropped for it.
const DefaultBuffer = 1024

// Match reports whether ev passes the filter.
func Match(f cairn.LiveFilter, ev *cairn.Event) bool {
	return (f.Type == "" || ev.Type == f.Type) &&
		(f.UserID == "" || ev.UserID == f.UserID) &&
		(f.SourceID == "" || sourceOf(ev) == f.SourceID)
}

// sourceOf returns the id of the source an event was sent through ("" for
// an anonymous POST /events).
func sourceOf(e *cairn.Event) string { return e.SourceID }

// Hub is the fan-out point, and keeps the in-memory ingest history the
// console shows (rates, latest events, types today, rejections). The zero
// value is not usable; call NewHub.
type Hub struct {
	buffer int

	mu   sync.RWMutex
	subs map[*Subscription]struct{}

	hist     sync.Mutex
	perSec   ring
	perMin   ring
	bySource map[string]*ring // per source id; sources are few (each needs a write key)
	recent   []cairn.Event    // circular, recentN slots
	recentAt int              // next slot to write
	day      time.Time        // UTC day of types
	types    map[string]int64
	rejected atomic.Int64
	now      func() time.Time
}

var _ cairn.LiveFeed = (*Hub)(nil)

// recentN is how many of the latest events the hub keeps.
const recentN = 50

// NewHub returns a hub whose subscribers each buffer up to buffer events
// (DefaultBuffer when buffer < 1).
func NewHub(buffer int) *Hub {
	if buffer < 1 {
		buffer = DefaultBuffer
	}
	return &Hub{
		buffer: buffer,
		subs:   map[*Subscription]struct{}{},
		perSec: newRing(3600, time.Second),
		perMin: newRing(1440, time.Minute),
		types:  map[string]int64{},
		now:    time.Now,
	}
}

// SetClock replaces the clock the hub stamps published events with (for
// tests); call it before publishing.
func (h *Hub) SetClock(now func() time.Time) { h.now = now }

// Subscription is one subscriber's view of the stream. Read it with Next;
// release it with Close.
type Subscription struct {
	hub    *Hub
	filter cairn.LiveFilter
	notify chan struct{} // capacity 1: "there is something to read"

	mu      sync.Mutex
	pending []cairn.Event
	skipped int64
	closed  bool
}

// Subscribe registers a subscriber receiving the events that match f.
func (h *Hub) Subscribe(f cairn.LiveFilter) cairn.LiveSubscription { return h.subscribe(f) }

func (h *Hub) subscribe(f cairn.LiveFilter) *Subscription {
	s := &Subscription{hub: h, filter: f, notify: make(chan struct{}, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Subscribers returns the number of live subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
}

// Publish hands events to every matching subscriber without blocking:
// a subscriber whose buffer is full skips them (and is told so). Events
// are copied by value; their payloads are shared and must not be
// modified afterwards.
func (h *Hub) Publish(events []cairn.Event) {
	h.record(events)
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		s.offer(events, h.buffer)
	}
}

// offer appends the matching events to the subscriber's buffer, counting
// those that do not fit as skipped, and wakes the reader.
func (s *Subscription) offer(events []cairn.Event, limit int) {
	s.mu.Lock()
	added := false
	for i := range events {
		if !Match(s.filter, &events[i]) {
			continue
		}
		added = true
		if len(s.pending) >= limit {
			s.skipped++
			continue
		}
		s.pending = append(s.pending, events[i])
	}
	s.mu.Unlock()
	if added {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// Next waits until events arrived or some were skipped since the last
// call, then returns them, oldest first, and the number skipped. It
// returns ctx's error when ctx ends first, and ErrClosed after Close.
func (s *Subscription) Next(ctx context.Context) ([]cairn.Event, int64, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, 0, ErrClosed
		}
		if len(s.pending) > 0 || s.skipped > 0 {
			events, skipped := s.pending, s.skipped
			s.pending, s.skipped = nil, 0
			s.mu.Unlock()
			return events, skipped, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-s.notify:
		}
	}
}

// Close unsubscribes; it is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	delete(s.hub.subs, s)
	s.hub.mu.Unlock()
	s.mu.Lock()
	s.closed, s.pending = true, nil
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// ErrClosed is returned by Next after Close.
var ErrClosed = cairn.Errorf(cairn.EUNAVAILABLE, "live subscription closed")
