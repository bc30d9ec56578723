// Package pipeline moves events from HTTP to the store: Ingest appends them to
// the write-ahead spool and returns once they are fsynced; a single batcher
// goroutine reads the spool in order and writes batches to the EventStore,
// retrying with capped exponential backoff, and trims the spool only after
// the store confirms a write.
//
// A batch is written when FlushSize events are waiting or when the oldest
// waiting event was received FlushInterval ago (measured from its receivedAt,
// not from the last flush, so steady traffic cannot postpone it).
//
// The batcher reads from a Source (the spool here; a stream consumer could be
// another) and commits its progress back to it. The committed position —
// kept by the spool (wal.WAL.Commit) in its checkpoint file — advances only
// over events that are durable in the store: after a successful write to a
// store that is durable on return, or — for a store implementing
// cairn.DeferredSyncer, like the embedded one — after its Sync, which the
// batcher calls at most every SyncInterval, when a spool segment can be
// trimmed, when idle, and at shutdown. A lost or invalid checkpoint only
// means replaying records the store already has, which the idempotent store
// ignores.
//
// The defaults of Options are the exported Default* constants.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/wal"
	"github.com/google/uuid"
)

// Defaults for the zero fields of Options.
const (
	// DefaultFlushSize is the default FlushSize.
	DefaultFlushSize = 500
	// DefaultFlushInterval is the default FlushInterval.
	DefaultFlushInterval = time.Second
	// DefaultMaxBacklog is the default MaxBacklog.
	DefaultMaxBacklog = 1_000_000
	// DefaultMinBackoff is the default MinBackoff.
	DefaultMinBackoff = 100 * time.Millisecond
	// DefaultMaxBackoff is the default MaxBackoff.
	DefaultMaxBackoff = 30 * time.Second
	// DefaultSyncInterval is the default SyncInterval.
	DefaultSyncInterval = time.Second
)

// Options configure a Pipeline.
type Options struct {
	// FlushSize is the number of waiting events that triggers a store write
	// (DefaultFlushSize if zero).
	FlushSize int
	// FlushInterval is the longest an event waits before a store write
	// (DefaultFlushInterval if zero).
	FlushInterval time.Duration
	// MaxBacklog is the number of unflushed events above which Ingest
	// refuses new events (DefaultMaxBacklog if zero).
	MaxBacklog int64
	// DeadLetterPath is the JSON-lines file receiving events the store
	// refuses permanently.
	DeadLetterPath string
	// Logger receives pipeline logs.
	Logger *slog.Logger
	// OnFlush, if set, is called after every store write attempt.
	OnFlush func(events int, d time.Duration, err error)
	// MinBackoff and MaxBackoff bound the retry delay after a failed store
	// write (DefaultMinBackoff and DefaultMaxBackoff if zero).
	MinBackoff, MaxBackoff time.Duration
	// SyncInterval is how often, at most, a cairn.DeferredSyncer store is
	// synced while busy (DefaultSyncInterval if zero).
	SyncInterval time.Duration
}

// Pipeline is the durable ingest path. It implements cairn.Ingester.
type Pipeline struct {
	wal   *wal.WAL
	src   Source       // what the batcher reads
	spool *spoolSource // src, when it is the spool (Ingest wakes it)
	store cairn.EventStore
	opts  Options
	log   *slog.Logger

	accepted, stored, duplicates, deadLettered atomic.Int64
	flushes, flushFailures                     atomic.Int64
	backlog, backlogBytes                      atomic.Int64
	corruptRecords                             atomic.Int64
	flushing                                   atomic.Bool
	lastFlushNanos, lastFlushAt                atomic.Int64

	checkpoint Position // durable in the store up to here (batcher-owned)
	storedPos  Position // written to the store up to here (batcher-owned)
	lastSync   time.Time
	drain      chan struct{} // closed to ask the batcher to flush everything and stop
	cancel     context.CancelFunc
	done       chan struct{}
	drained    atomic.Int64 // events flushed after drain was requested
	closeOnce  sync.Once
}

var _ cairn.Ingester = (*Pipeline)(nil)

// New creates a pipeline over an open spool and store: Ingest appends to the
// spool, and the batcher reads it from its committed position (validated by
// wal.Open). New counts the events still waiting in the spool, so backlog
// figures are right from the start; call Start to begin flushing.
func New(w *wal.WAL, store cairn.EventStore, opts Options) (*Pipeline, error) {
	if opts.FlushSize <= 0 {
		opts.FlushSize = DefaultFlushSize
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = DefaultMaxBacklog
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{wal: w, store: store, opts: opts, log: opts.Logger,
		drain: make(chan struct{}), done: make(chan struct{})}
	p.checkpoint = w.Committed()
	p.storedPos = p.checkpoint
	// Count what is waiting (quietly: the batcher reports any damage).
	count := newSpoolSource(w, slog.New(slog.DiscardHandler))
	defer count.Close() //nolint:errcheck // read-only spool reader used to count the backlog
	var events, bytes int64
	for {
		rec, _, err := count.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("scan spool: %w", err)
		}
		if n, err := cairn.BatchLen(rec); err == nil {
			events += int64(n)
		}
		bytes += int64(len(rec))
	}
	p.backlog.Store(events)
	p.backlogBytes.Store(bytes)
	if events > 0 {
		p.log.Info("replaying spool", "events", events, "bytes", bytes, "from", p.checkpoint.String())
	}
	p.spool = newSpoolSource(w, p.log)
	p.spool.lost = &p.corruptRecords
	p.src = p.spool
	return p, nil
}

// Ingest durably accepts events. See cairn.Ingester.
func (p *Pipeline) Ingest(ctx context.Context, events []cairn.Event) error {
	if len(events) == 0 {
		return nil
	}
	if b := p.backlog.Load(); b+int64(len(events)) > p.opts.MaxBacklog {
		return &cairn.Error{Code: cairn.EUNAVAILABLE,
			Message: fmt.Sprintf("Backlog full (%d events waiting); retry later.", b), Err: cairn.ErrBacklogFull}
	}
	for i := range events {
		if events[i].EventID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("generate event id: %w", err)
			}
			events[i].EventID = id.String()
		}
	}
	rec := cairn.AppendBatch(make([]byte, 0, 64+len(events)*300), events)
	if _, err := p.wal.Append(ctx, rec); err != nil {
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			return err
		case errors.Is(err, wal.ErrClosed):
			return &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Shutting down; retry later.",
				Err: fmt.Errorf("%w: %w", cairn.ErrIngestClosed, err)}
		}
		return &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Spool unavailable; retry later.",
			Err: fmt.Errorf("%w: %w", cairn.ErrSpoolFailed, err)}
	}
	n := int64(len(events))
	p.accepted.Add(n)
	p.backlogBytes.Add(int64(len(rec)))
	// Wake the batcher only when a flush may be due: the backlog was empty
	// (it must start the interval clock) or just reached FlushSize. Between
	// those, its timer covers the oldest waiting event.
	if prev, size := p.backlog.Add(n)-n, int64(p.opts.FlushSize); prev <= 0 || prev < size && prev+n >= size {
		p.spool.notify()
	}
	return nil
}

// Stats returns a snapshot of the pipeline's counters.
func (p *Pipeline) Stats() cairn.IngestStats {
	bytes, segs := p.wal.Size()
	st := cairn.IngestStats{
		Backlog:             p.backlog.Load(),
		BacklogBytes:        p.backlogBytes.Load(),
		FlushSize:           p.opts.FlushSize,
		FlushInterval:       p.opts.FlushInterval,
		MaxBacklog:          p.opts.MaxBacklog,
		Flushing:            p.flushing.Load(),
		Accepted:            p.accepted.Load(),
		Stored:              p.stored.Load(),
		Duplicates:          p.duplicates.Load(),
		DeadLettered:        p.deadLettered.Load(),
		Flushes:             p.flushes.Load(),
		FlushFailures:       p.flushFailures.Load(),
		LastFlushDuration:   time.Duration(p.lastFlushNanos.Load()),
		SpoolBytes:          bytes,
		SpoolSegments:       segs,
		CheckpointResets:    p.wal.CheckpointResets(),
		SpoolCorruptRecords: p.corruptRecords.Load(),
	}
	if at := p.lastFlushAt.Load(); at != 0 {
		st.LastFlushAt = time.Unix(0, at).UTC()
	}
	if err := p.wal.Err(); err != nil {
		st.SpoolError = err.Error()
	}
	return st
}

// Start launches the batcher.
func (p *Pipeline) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		p.run(ctx)
	}()
}

// Close asks the batcher to write everything waiting in the spool to the
// store and stop, and waits until it has or ctx ends (whatever is left stays
// in the spool for the next start). It returns the number of events flushed
// during the drain and ctx's error if the drain was cut short.
func (p *Pipeline) Close(ctx context.Context) (int64, error) {
	p.closeOnce.Do(func() { close(p.drain) })
	if p.cancel == nil {
		return 0, nil // never started
	}
	select {
	case <-p.done:
		return p.drained.Load(), nil
	case <-ctx.Done():
		p.cancel()
		<-p.done
		return p.drained.Load(), ctx.Err()
	}
}

// staged is what the batcher has read from the spool but not yet stored.
type staged struct {
	events []cairn.Event
	bytes  int64
	end    Position
}

// run is the batcher loop.
func (p *Pipeline) run(ctx context.Context) {
	defer func() {
		// The batcher has nowhere to return an error: log it.
		if err := p.src.Close(); err != nil {
			p.log.Error("close source", "err", err)
		}
	}()
	defer p.commit(ctx, true) // whatever the store has, durably, before exiting
	var st staged
	draining := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		caughtUp := p.fill(&st)
		if !draining {
			select {
			case <-p.drain:
				draining = true
			default:
			}
		}
		due := len(st.events) >= p.opts.FlushSize ||
			len(st.events) > 0 && (draining || !caughtUp ||
				time.Since(st.events[0].ReceivedAt) >= p.opts.FlushInterval)
		if due {
			if err := p.flush(ctx, &st); err != nil {
				return // ctx ended: shutdown deadline
			}
			if draining {
				p.drained.Add(int64(len(st.events)))
			}
			st = staged{events: st.events[:0], end: st.end}
			continue
		}
		if caughtUp && len(st.events) == 0 {
			p.commit(ctx, true) // idle: make the store durable and trim now
			if draining {
				return
			}
		}
		// Sleep until the oldest staged event is due; with nothing staged,
		// poll once per interval as a safety net for the kick accounting.
		delay := p.opts.FlushInterval
		if len(st.events) > 0 {
			delay -= time.Since(st.events[0].ReceivedAt)
		}
		timer.Reset(delay) // Go ≥ 1.23: Reset discards a stale fire
		// Every Ingest after fill's EOF either kicked (backlog empty, or
		// FlushSize reached) or is behind a staged event whose timer is set.
		select {
		case <-p.src.Ready():
		case <-timer.C:
		case <-p.drain:
			draining = true
		case <-ctx.Done():
			return
		}
	}
}

// fill reads source records into st until FlushSize events are staged or
// the source is exhausted; it reports whether it reached the end.
func (p *Pipeline) fill(st *staged) bool {
	for len(st.events) < p.opts.FlushSize {
		rec, end, err := p.src.Next()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			p.log.Error("spool read failed", "err", err)
			return true
		}
		before := len(st.events)
		events, err := cairn.DecodeBatch(st.events, rec)
		if err != nil {
			p.log.Error("undecodable spool record: dead-lettering it", "position", end.String(), "err", err)
			p.deadLetterRaw(rec, err.Error())
			if n, lerr := cairn.BatchLen(rec); lerr == nil {
				p.backlog.Add(-int64(n))
			}
			p.backlogBytes.Add(-int64(len(rec)))
			st.events = st.events[:before]
			st.end = end
			continue
		}
		st.events = events
		st.bytes += int64(len(rec))
		st.end = end
	}
	return false
}

// flush writes st to the store, retrying until it succeeds or ctx ends, then
// advances the checkpoint and trims the spool.
func (p *Pipeline) flush(ctx context.Context, st *staged) error {
	backoff := p.opts.MinBackoff
	p.flushing.Store(true)
	defer p.flushing.Store(false)
	for {
		start := time.Now()
		res, err := p.store.InsertEvents(ctx, st.events)
		d := time.Since(start)
		if p.opts.OnFlush != nil {
			p.opts.OnFlush(len(st.events), d, err)
		}
		if err == nil {
			p.flushes.Add(1)
			p.lastFlushNanos.Store(int64(d))
			p.lastFlushAt.Store(time.Now().UnixNano())
			p.stored.Add(int64(res.Inserted))
			p.duplicates.Add(int64(res.Duplicates))
			if len(res.Rejected) > 0 {
				p.deadLetter(res.Rejected)
			}
			p.log.Debug("flushed", "events", len(st.events), "inserted", res.Inserted,
				"duplicates", res.Duplicates, "rejected", len(res.Rejected), "duration", d)
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.flushFailures.Add(1)
		p.log.Warn("store write failed; will retry", "events", len(st.events), "retry_in", backoff,
			"code", cairn.ErrorCode(err), "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, p.opts.MaxBackoff)
	}
	p.backlog.Add(-int64(len(st.events)))
	p.backlogBytes.Add(-st.bytes)
	p.storedPos = st.end
	p.commit(ctx, false)
	return nil
}

// commit advances the source's committed position to what the store holds
// durably (the spool then trims behind it). For a cairn.DeferredSyncer store
// it first syncs the store — unless force is false, the last sync was under
// SyncInterval ago, and committing would free nothing. ctx is the batcher's
// run context: when Close's deadline has passed, the sync is not attempted
// and the events stay in the source, to be replayed.
func (p *Pipeline) commit(ctx context.Context, force bool) {
	if p.storedPos == p.checkpoint || ctx.Err() != nil {
		return
	}
	if syncer, ok := p.store.(cairn.DeferredSyncer); ok {
		if !force && time.Since(p.lastSync) < p.opts.SyncInterval && !p.src.Releases(p.storedPos) {
			return
		}
		if err := syncer.Sync(ctx); err != nil {
			p.log.Warn("store sync failed; the spool keeps the events", "err", err)
			return
		}
		p.lastSync = time.Now()
	}
	p.checkpoint = p.storedPos
	if err := p.src.Commit(ctx, p.checkpoint); err != nil {
		p.log.Warn("cannot commit spool position", "err", err)
	}
}

// deadLetter appends permanently rejected events to the dead-letter file.
func (p *Pipeline) deadLetter(rejected []cairn.RejectedEvent) {
	p.deadLettered.Add(int64(len(rejected)))
	var buf []byte
	for _, r := range rejected {
		buf = append(buf, `{"reason":`...)
		reason, _ := json.Marshal(r.Reason)
		buf = append(buf, reason...)
		buf = append(buf, `,"event":`...)
		buf = r.Event.AppendJSON(buf)
		buf = append(buf, "}\n"...)
		p.log.Error("store rejected event permanently; dead-lettered", "eventId", r.Event.EventID,
			"userId", r.Event.UserID, "reason", r.Reason)
	}
	p.appendDeadLetter(buf)
}

func (p *Pipeline) deadLetterRaw(rec []byte, reason string) {
	p.deadLettered.Add(1)
	line, _ := json.Marshal(map[string]any{"reason": reason, "record": rec})
	p.appendDeadLetter(append(line, '\n'))
}

func (p *Pipeline) appendDeadLetter(buf []byte) {
	if p.opts.DeadLetterPath == "" {
		return
	}
	f, err := os.OpenFile(p.opts.DeadLetterPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		_, err = f.Write(buf)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		p.log.Error("cannot write dead-letter file", "path", p.opts.DeadLetterPath, "err", err)
	}
}
