package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pipeline"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// statsEvery is how often Ingester and Source poll the stream and the
// consumer for their Stats and metrics.
const statsEvery = 2 * time.Second

// Ingester publishes accepted events to the stream. It implements
// cairn.Ingester: Ingest returns nil only after the stream has acknowledged
// every event (stored on a quorum of its replicas).
type Ingester struct {
	c       *Conn
	subject string
	// OnPublish, if set before the first Ingest, is called after every
	// Ingest that published (events, time until the last ack, error).
	OnPublish func(events int, d time.Duration, err error)

	accepted, retries     atomic.Int64
	backlog, backlogBytes atomic.Int64 // messages waiting in the stream (polled)
	streamErr             atomic.Pointer[string]
	closed                atomic.Bool
	stop                  chan struct{}
	wg                    sync.WaitGroup
}

var _ cairn.Ingester = (*Ingester)(nil)

// NewIngester returns an Ingester publishing through c; Close stops it.
func NewIngester(c *Conn) *Ingester {
	in := &Ingester{c: c, subject: c.cfg.Subject(), stop: make(chan struct{})}
	in.wg.Go(in.poll)
	return in
}

// Ingest publishes events (assigning a UUIDv7 eventId to each that has
// none) with their eventId as Nats-Msg-Id, and waits for the stream to
// acknowledge all of them. Publishes that fail or go unanswered are retried
// with the same msg id until Config.AckTimeout has passed since the call;
// then it returns an EUNAVAILABLE *Error wrapping cairn.ErrSpoolFailed
// (nothing is acknowledged, though some events may be in the stream: a
// client retry with the same eventIds is deduplicated). A full stream is an
// EUNAVAILABLE *Error wrapping cairn.ErrBacklogFull, a closed Ingester one
// wrapping cairn.ErrIngestClosed; if ctx ends first, ctx's error.
func (in *Ingester) Ingest(ctx context.Context, events []cairn.Event) error {
	if len(events) == 0 {
		return nil
	}
	if in.closed.Load() {
		return &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Shutting down; retry later.", Err: cairn.ErrIngestClosed}
	}
	if err := pipeline.AssignEventIDs(events); err != nil {
		return err
	}
	size := 0
	for i := range events {
		size += 64 + len(events[i].Payload) + len(events[i].UserID) + len(events[i].EventID)
	}
	buf := make([]byte, 0, size)
	msgs := make([]*nats.Msg, len(events))
	for i := range events {
		start := len(buf)
		buf = events[i].AppendBinary(buf)
		m := nats.NewMsg(in.subject)
		m.Data = buf[start:len(buf):len(buf)]
		m.Header.Set(natsjs.MsgIDHeader, events[i].EventID)
		msgs[i] = m
	}
	start := time.Now()
	err := in.publish(ctx, msgs)
	if in.OnPublish != nil {
		in.OnPublish(len(events), time.Since(start), err)
	}
	if err == nil {
		in.accepted.Add(int64(len(events)))
	}
	return err
}

// publish sends msgs and waits for their acks, retrying failures.
func (in *Ingester) publish(ctx context.Context, msgs []*nats.Msg) error {
	timeout := in.c.cfg.AckTimeout
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	js := in.c.js
	todo := msgs
	futs := make([]natsjs.PubAckFuture, len(msgs))
	wait := 20 * time.Millisecond
	var lastErr error
	for {
		var failed []*nats.Msg
		for i, m := range todo {
			f, err := js.PublishMsgAsync(m, natsjs.WithStallWait(max(time.Until(deadlineOf(tctx)), time.Millisecond)))
			if err != nil {
				lastErr = err
				failed = append(failed, m)
				futs[i] = nil
				continue
			}
			futs[i] = f
		}
		for i, f := range futs[:len(todo)] {
			if f == nil {
				continue
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				if streamFull(err) {
					return &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Event stream full; retry later.",
						Err: fmt.Errorf("%w: %w", cairn.ErrBacklogFull, err)}
				}
				lastErr = err
				failed = append(failed, todo[i])
			case <-tctx.Done():
				return in.timedOut(ctx, timeout, lastErr)
			}
		}
		if len(failed) == 0 {
			return nil
		}
		in.retries.Add(int64(len(failed)))
		select {
		case <-time.After(wait):
		case <-tctx.Done():
			return in.timedOut(ctx, timeout, lastErr)
		}
		wait = min(wait*2, 500*time.Millisecond)
		todo = failed
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// timedOut is the error when the acks did not all come within timeout.
func (in *Ingester) timedOut(ctx context.Context, timeout time.Duration, last error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if last == nil {
		last = natsjs.ErrAsyncPublishTimeout
	}
	return &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Event stream unavailable; retry later.",
		Err: fmt.Errorf("%w: no ack from stream %s within %v: %w", cairn.ErrSpoolFailed, in.c.cfg.Stream, timeout, last)}
}

// streamFull reports whether err is the stream refusing a message because
// a limit is reached.
func streamFull(err error) bool {
	var apiErr *natsjs.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	d := strings.ToLower(apiErr.Description)
	return strings.Contains(d, "maximum bytes") || strings.Contains(d, "maximum messages") ||
		strings.Contains(d, "insufficient resources")
}

// AcksPending returns the number of published messages waiting for the
// stream's acknowledgement.
func (in *Ingester) AcksPending() int { return in.c.js.PublishAsyncPending() }

// Retries returns the number of publishes retried since start.
func (in *Ingester) Retries() int64 { return in.retries.Load() }

// Stats reports the events accepted by this node and, as the backlog, the
// messages the stream holds for the writers (polled every few seconds).
// SpoolError is the last error reaching the stream, if the last poll failed.
func (in *Ingester) Stats() cairn.IngestStats {
	st := cairn.IngestStats{
		Accepted:     in.accepted.Load(),
		Backlog:      in.backlog.Load(),
		BacklogBytes: in.backlogBytes.Load(),
	}
	if e := in.streamErr.Load(); e != nil {
		st.SpoolError = *e
	}
	return st
}

// poll refreshes the stream figures until Close.
func (in *Ingester) poll() {
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), statsEvery)
		s, err := in.c.js.Stream(ctx, in.c.cfg.Stream)
		var info *natsjs.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err != nil {
			msg := fmt.Sprintf("stream %s: %v", in.c.cfg.Stream, err)
			in.streamErr.Store(&msg)
		} else {
			in.streamErr.Store(nil)
			in.backlog.Store(int64(info.State.Msgs))
			in.backlogBytes.Store(int64(info.State.Bytes))
		}
		select {
		case <-in.stop:
			return
		case <-t.C:
		}
	}
}

// Close makes further Ingest calls fail with cairn.ErrIngestClosed and
// stops the stats poller. It does not close the connection.
func (in *Ingester) Close() {
	if in.closed.Swap(true) {
		return
	}
	close(in.stop)
	in.wg.Wait()
}
