package jetstream

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn/pipeline"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// delivery is a Source position: the number of messages this Source has
// received. Committing it acknowledges every message received up to it.
type delivery uint64

func (d delivery) String() string { return "delivery " + strconv.FormatUint(uint64(d), 10) }

type held struct {
	n delivery
	m natsjs.Msg
}

// Source reads the stream through the writers' shared durable pull
// consumer, for pipeline.NewBatcher. Each record it returns is a one-event
// batch (cairn.AppendBatch framing around the message's event). Commit
// acknowledges the messages, so the batcher's contract — commit only what
// the store holds durably — is what keeps them in the stream until then.
// While the batcher holds messages (a slow or unreachable store) the Source
// tells the stream they are in progress, so they are not redelivered to
// another writer; a writer that dies stops doing so, and its messages are
// redelivered after Config.AckWait.
type Source struct {
	c    *Conn
	cons natsjs.Consumer
	it   natsjs.MessagesContext

	msgs  chan held
	ready chan struct{}
	buf   []byte

	mu      sync.Mutex
	pending []held // received, not yet acknowledged, in order
	next    delivery

	redeliveries, lag atomic.Int64
	stop              chan struct{}
	wg                sync.WaitGroup
	closeOnce         sync.Once
}

var _ pipeline.Source = (*Source)(nil)

// NewSource creates or updates the durable consumer and starts pulling
// messages; batch is how many the consumer fetches at a time (the
// batcher's FlushSize is a good value).
func NewSource(ctx context.Context, c *Conn, batch int) (*Source, error) {
	cfg := c.cfg
	var cons natsjs.Consumer
	err := c.retry(ctx, "create consumer", func(ctx context.Context) error {
		var err error
		cons, err = c.js.CreateOrUpdateConsumer(ctx, cfg.Stream, natsjs.ConsumerConfig{
			Durable:       cfg.Consumer,
			Description:   "Cairn writers: events into the store",
			AckPolicy:     natsjs.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxAckPending: cfg.MaxAckPending,
			MaxDeliver:    -1,
			DeliverPolicy: natsjs.DeliverAllPolicy,
			FilterSubject: cfg.Subject(),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: consumer %s on %s: %w", cfg.Consumer, cfg.Stream, err)
	}
	batch = max(batch, 1)
	it, err := cons.Messages(natsjs.PullMaxMessages(batch))
	if err != nil {
		return nil, fmt.Errorf("jetstream: pull from %s: %w", cfg.Consumer, err)
	}
	s := &Source{c: c, cons: cons, it: it, msgs: make(chan held, 2*batch), ready: make(chan struct{}, 1),
		stop: make(chan struct{})}
	s.wg.Go(s.pull)
	s.wg.Go(s.keepAlive)
	s.wg.Go(s.poll)
	return s, nil
}

// pull receives messages into the pending list and the batcher's queue.
func (s *Source) pull() {
	for {
		m, err := s.it.Next()
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			if err == natsjs.ErrMsgIteratorClosed { //nolint:errorlint // sentinel returned as is
				return
			}
			s.c.log.Warn("consumer pull failed; retrying", "consumer", s.c.cfg.Consumer, "err", err)
			select {
			case <-time.After(250 * time.Millisecond):
			case <-s.stop:
				return
			}
			continue
		}
		if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
			s.redeliveries.Add(1)
		}
		s.mu.Lock()
		s.next++
		h := held{n: s.next, m: m}
		s.pending = append(s.pending, h)
		s.mu.Unlock()
		select {
		case s.msgs <- h:
		case <-s.stop:
			return
		}
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
}

// keepAlive tells the stream that held messages are still being worked on.
func (s *Source) keepAlive() {
	t := time.NewTicker(max(s.c.cfg.AckWait/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		held := append([]held(nil), s.pending...)
		s.mu.Unlock()
		for _, h := range held {
			if err := h.m.InProgress(); err != nil {
				s.c.log.Debug("in-progress signal failed", "err", err)
			}
		}
	}
}

// poll refreshes the consumer's lag until Close.
func (s *Source) poll() {
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), statsEvery)
		info, err := s.cons.Info(ctx)
		cancel()
		if err == nil {
			s.lag.Store(int64(info.NumPending) + int64(info.NumAckPending))
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Next implements pipeline.Source.
func (s *Source) Next() ([]byte, pipeline.Position, error) {
	select {
	case h := <-s.msgs:
		s.buf = append(append(s.buf[:0], 1), h.m.Data()...) // uvarint(1): a batch of one
		return s.buf, h.n, nil
	default:
		return nil, nil, io.EOF
	}
}

// Ready implements pipeline.Source.
func (s *Source) Ready() <-chan struct{} { return s.ready }

// Commit implements pipeline.Source: it acknowledges every message
// received up to pos.
func (s *Source) Commit(_ context.Context, pos pipeline.Position) error {
	upTo, ok := pos.(delivery)
	if !ok {
		return fmt.Errorf("jetstream: commit: position %v is not a stream position", pos)
	}
	s.mu.Lock()
	i := 0
	for i < len(s.pending) && s.pending[i].n <= upTo {
		i++
	}
	done := s.pending[:i:i]
	s.pending = s.pending[i:]
	s.mu.Unlock()
	var firstErr error
	for _, h := range done {
		if err := h.m.Ack(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("jetstream: ack: %w", err)
		}
	}
	return firstErr
}

// Releases implements pipeline.Source: acknowledging frees stream space, so
// it is always worth doing at once.
func (s *Source) Releases(pipeline.Position) bool { return true }

// Redeliveries returns the number of messages received that the stream had
// delivered before (to this or another writer).
func (s *Source) Redeliveries() int64 { return s.redeliveries.Load() }

// Lag returns the consumer's messages not yet acknowledged (waiting or
// delivered), as last polled.
func (s *Source) Lag() int64 { return s.lag.Load() }

// Close implements pipeline.Source: it stops pulling and hands the
// messages not acknowledged back to the stream for redelivery.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.it.Stop()
		s.wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, h := range s.pending {
			if err := h.m.Nak(); err != nil {
				s.c.log.Debug("nak failed; the message is redelivered after the ack wait", "err", err)
			}
		}
		s.pending = nil
	})
	return nil
}
