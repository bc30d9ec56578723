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
// The batcher (Batcher) reads from a Source — the spool here; NewBatcher
// runs one over any other Source, such as a stream consumer — and commits
// its progress back to it. The committed position —
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
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// DefaultMaxFlushSize is the default MaxFlushSize of a Pipeline.
	DefaultMaxFlushSize = 10_000
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
	// MaxFlushSize is the most events one store write takes when more are
	// already waiting (a backlog: after a burst, an outage, a restart):
	// larger writes cost less per event (one read-modify-write per user
	// and per counter for the whole write, fewer commits). Below FlushSize
	// it is FlushSize. Zero means DefaultMaxFlushSize for a Pipeline and
	// FlushSize for NewBatcher (a JetStream source, whose messages wait
	// unacknowledged during a write).
	MaxFlushSize int
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

// Pipeline is the durable ingest path: the spool-backed ingester and the
// Batcher reading that spool. It implements cairn.Ingester.
type Pipeline struct {
	*Batcher
	wal   *wal.WAL
	spool *spoolSource // the batcher's source (Ingest wakes it)

	accepted atomic.Int64
}

var (
	_ cairn.Ingester = (*Pipeline)(nil)
	_ cairn.Admitter = (*Pipeline)(nil)
)

// New creates a pipeline over an open spool and store: Ingest appends to the
// spool, and the batcher reads it from its committed position (validated by
// wal.Open). New counts the events still waiting in the spool, so backlog
// figures are right from the start; call Start to begin flushing.
func New(w *wal.WAL, store cairn.EventStore, opts Options) (*Pipeline, error) {
	if opts.MaxFlushSize == 0 {
		opts.MaxFlushSize = DefaultMaxFlushSize
	}
	opts = opts.withDefaults()
	p := &Pipeline{wal: w}
	p.spool = newSpoolSource(w, opts.Logger)
	p.Batcher = newBatcher(p.spool, store, opts)
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
	p.spool.lost = &p.corruptRecords
	return p, nil
}

// Ingest durably accepts events. See cairn.Ingester.
func (p *Pipeline) Ingest(ctx context.Context, events []cairn.Event) error {
	if len(events) == 0 {
		return nil
	}
	if b := p.backlog.Load(); b+int64(len(events)) > p.opts.MaxBacklog {
		return backlogFull(b)
	}
	if err := AssignEventIDs(events); err != nil {
		return err
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

// Admit refuses new events while the backlog is full, so that the HTTP
// server can answer 503 before it reads a body. See cairn.Admitter.
func (p *Pipeline) Admit() error {
	if b := p.backlog.Load(); b >= p.opts.MaxBacklog {
		return backlogFull(b)
	}
	return nil
}

// backlogFull is the error of an event refused with b events waiting.
func backlogFull(b int64) error {
	return &cairn.Error{Code: cairn.EUNAVAILABLE,
		Message: fmt.Sprintf("Backlog full (%d events waiting); retry later.", b), Err: cairn.ErrBacklogFull}
}

// AssignEventIDs gives each event without an EventID a new UUIDv7 (time
// ordered), as cairn.Ingester implementations must before they accept
// events.
func AssignEventIDs(events []cairn.Event) error {
	for i := range events {
		if events[i].EventID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("generate event id: %w", err)
			}
			events[i].EventID = id.String()
		}
	}
	return nil
}

// Stats returns a snapshot of the pipeline's counters.
func (p *Pipeline) Stats() cairn.IngestStats {
	st := p.Batcher.Stats()
	st.Accepted = p.accepted.Load()
	st.SpoolBytes, st.SpoolSegments = p.wal.Size()
	st.CheckpointResets = p.wal.CheckpointResets()
	st.SpoolCorruptRecords = p.corruptRecords.Load()
	if err := p.wal.Err(); err != nil {
		st.SpoolError = err.Error()
	}
	return st
}
