// Package live fans accepted events out to live subscribers (the console's
// live tail, GET /api/live). Ingest publishes each durable batch once and
// never waits: Publish records the batch in the in-memory history and
// queues it for one fan-out goroutine, which encodes each event's JSON once
// for every subscriber and appends a reference to it to each matching
// subscriber's bounded buffer. When a subscriber's buffer is full (or the
// fan-out queue is, under overload) the new events are dropped for that
// subscriber only and counted, and its next read reports how many it
// skipped. Subscribers filter by event type, user id and source id, and
// unsubscribe when they go away. The fan-out goroutine runs only while
// there is something to deliver.
package live

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
)

// DefaultBuffer is the number of events a subscriber may fall behind by
// before events are dropped for it: a little more than 100 ms of the
// fastest batched ingest measured, since an HTTP live stream writes at
// most every 50 ms.
const DefaultBuffer = 8192

// queueBatches is the number of published batches waiting for the fan-out
// goroutine beyond which new batches are dropped for every subscriber.
const queueBatches = 1024

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

	mu      sync.Mutex
	subs    []*Subscription // in subscription order; replaced, never modified, so a copy may be read unlocked
	nsubs   atomic.Int32
	seq     atomic.Uint64  // of the last published batch
	queue   chan published // to the fan-out goroutine
	running atomic.Bool    // a fan-out goroutine is running

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
		queue:  make(chan published, queueBatches),
		perSec: newRing(3600, time.Second),
		perMin: newRing(1440, time.Minute),
		types:  map[string]int64{},
		now:    time.Now,
	}
}

// SetClock replaces the clock the hub stamps published events with (for
// tests); call it before publishing.
func (h *Hub) SetClock(now func() time.Time) { h.now = now }

// published is a batch on its way to the subscribers.
type published struct {
	seq    uint64
	events []cairn.Event
}

// Subscription is one subscriber's view of the stream. Read it with Next;
// release it with Close.
type Subscription struct {
	hub    *Hub
	filter cairn.LiveFilter
	after  uint64        // batches up to this sequence number were published before it subscribed
	notify chan struct{} // capacity 1: "there is something to read"

	mu      sync.Mutex
	pending []cairn.LiveEvent
	spare   []cairn.LiveEvent // the slice Next returned last, reused
	skipped int64
	closed  bool
}

// Subscribe registers a subscriber receiving the events published from
// now on that match f.
func (h *Hub) Subscribe(f cairn.LiveFilter) cairn.LiveSubscription { return h.subscribe(f) }

func (h *Hub) subscribe(f cairn.LiveFilter) *Subscription {
	s := &Subscription{hub: h, filter: f, notify: make(chan struct{}, 1)}
	h.mu.Lock()
	s.after = h.seq.Load()
	subs := make([]*Subscription, len(h.subs), len(h.subs)+1)
	copy(subs, h.subs)
	h.subs = append(subs, s)
	h.nsubs.Store(int32(len(h.subs)))
	h.mu.Unlock()
	return s
}

// snapshot returns the current subscribers; the slice is never modified.
func (h *Hub) snapshot() []*Subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs
}

// Subscribers returns the number of live subscriptions.
func (h *Hub) Subscribers() int { return int(h.nsubs.Load()) }

// Publish records events in the history and hands them to the
// subscribers without blocking or encoding anything: the fan-out
// goroutine delivers them, in publish order. Events are shared, not
// copied, and must not be modified afterwards.
func (h *Hub) Publish(events []cairn.Event) {
	if len(events) == 0 {
		return
	}
	h.record(events)
	if h.nsubs.Load() == 0 {
		return
	}
	b := published{seq: h.seq.Add(1), events: events}
	select {
	case h.queue <- b:
	default:
		// The fan-out is more than queueBatches behind: drop this batch
		// for everyone rather than wait.
		for _, s := range h.snapshot() {
			if s.after < b.seq {
				s.offer(b.events, nil, 0)
			}
		}
		return
	}
	if h.running.CompareAndSwap(false, true) {
		go h.fanout()
	}
}

// fanout delivers queued batches until the queue is empty, then ends; the
// next Publish starts another.
func (h *Hub) fanout() {
	for {
		select {
		case b := <-h.queue:
			h.deliver(b)
			continue
		default:
		}
		h.running.Store(false)
		// A batch queued after the receive above but before Store found
		// running still true and started nobody: take it over.
		if len(h.queue) == 0 || !h.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// deliver encodes the batch's events that some subscriber wants, once,
// and hands them to those subscribers.
func (h *Hub) deliver(b published) {
	enc := make([]cairn.LiveEvent, len(b.events))
	var buf []byte
	encode := func(i int) cairn.LiveEvent {
		if enc[i].Event == nil {
			if buf == nil {
				buf = make([]byte, 0, encodedSize(b.events))
			}
			start := len(buf)
			// Should the estimate fall short, append moves buf to a new
			// array; the events encoded earlier keep the old one.
			buf = b.events[i].AppendJSON(buf)
			enc[i] = cairn.LiveEvent{Event: &b.events[i], JSON: buf[start:len(buf):len(buf)]}
		}
		return enc[i]
	}
	for _, s := range h.snapshot() {
		if s.after < b.seq {
			s.offer(b.events, encode, h.buffer)
		}
	}
}

// encodedSize estimates the bytes of the events' JSON: the fixed fields
// and times take about 150.
func encodedSize(events []cairn.Event) int {
	n := 0
	for i := range events {
		e := &events[i]
		n += 160 + len(e.EventID) + len(e.UserID) + len(e.SessionID) + len(e.Type) + len(e.SourceID) + len(e.AnonymousID) + len(e.Payload)
	}
	return n
}

// offer appends the matching events (encoded by enc) to the subscriber's
// buffer, counting those that do not fit (all of them when enc is nil) as
// skipped, and wakes the reader.
func (s *Subscription) offer(events []cairn.Event, enc func(int) cairn.LiveEvent, limit int) {
	s.mu.Lock()
	added := false
	for i := range events {
		if !Match(s.filter, &events[i]) {
			continue
		}
		added = true
		if enc == nil || len(s.pending) >= limit || s.closed {
			s.skipped++
			continue
		}
		s.pending = append(s.pending, enc(i))
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
// call, then returns them, oldest first, and the number skipped. The
// returned slice is valid until the next call. It returns ctx's error when ctx ends first, and ErrClosed
// after Close.
func (s *Subscription) Next(ctx context.Context) ([]cairn.LiveEvent, int64, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, 0, ErrClosed
		}
		if len(s.pending) > 0 || s.skipped > 0 {
			events, skipped := s.pending, s.skipped
			clear(s.spare) // release the batches the previous read held
			s.pending, s.spare, s.skipped = s.spare[:0], events, 0
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
	h := s.hub
	h.mu.Lock()
	subs := make([]*Subscription, 0, len(h.subs))
	for _, o := range h.subs {
		if o != s {
			subs = append(subs, o)
		}
	}
	h.subs = subs
	h.nsubs.Store(int32(len(subs)))
	h.mu.Unlock()
	s.mu.Lock()
	s.closed, s.pending, s.spare = true, nil, nil
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// ErrClosed is returned by Next after Close.
var ErrClosed = cairn.Errorf(cairn.EUNAVAILABLE, "live subscription closed")
