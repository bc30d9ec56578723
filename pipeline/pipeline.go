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
// The batcher's progress is a checkpoint file (spool position) next to the
// spool. It advances only over events that are durable in the store: after a
// successful write to a store that is durable on return, or — for a store
// implementing cairn.DeferredSyncer, like the embedded one — after its Sync,
// which the batcher calls at most every SyncInterval, when a spool segment
// can be trimmed, when idle, and at shutdown. The file itself is written
// without fsync: losing it only means replaying records the store already
// has, which the idempotent store ignores.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/wal"
	"github.com/google/uuid"
)

// Options configure a Pipeline.
type Options struct {
	// FlushSize is the number of waiting events that triggers a store write.
	FlushSize int
	// FlushInterval is the longest an event waits before a store write.
	FlushInterval time.Duration
	// MaxBacklog is the number of unflushed events above which Ingest
	// refuses new events.
	MaxBacklog int64
	// DeadLetterPath is the JSON-lines file receiving events the store
	// refuses permanently.
	DeadLetterPath string
	// Logger receives pipeline logs.
	Logger *slog.Logger
	// OnFlush, if set, is called after every store write attempt.
	OnFlush func(events int, d time.Duration, err error)
	// MinBackoff and MaxBackoff bound the retry delay after a failed store
	// write (defaults 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// SyncInterval is how often, at most, a cairn.DeferredSyncer store is
	// synced while busy (default 1s).
	SyncInterval time.Duration
}

// Pipeline is the durable ingest path. It implements cairn.Ingester.
type Pipeline struct {
	wal   *wal.WAL
	store cairn.EventStore
	opts  Options
	log   *slog.Logger

	accepted, stored, duplicates, deadLettered atomic.Int64
	flushes, flushFailures                     atomic.Int64
	backlog, backlogBytes                      atomic.Int64
	flushing                                   atomic.Bool
	lastFlushNanos, lastFlushAt                atomic.Int64

	checkpoint wal.Position // durable in the store up to here (batcher-owned)
	storedPos  wal.Position // written to the store up to here (batcher-owned)
	lastSync   time.Time
	kick       chan struct{} // wakes the batcher: a flush may be due
	drain      chan struct{} // closed to ask the batcher to flush everything and stop
	cancel     context.CancelFunc
	done       chan struct{}
	drained    atomic.Int64 // events flushed after drain was requested
	closeOnce  sync.Once
}

var _ cairn.Ingester = (*Pipeline)(nil)

// New creates a pipeline over an open spool and store. It reads the
// checkpoint and counts the events still waiting in the spool, so backlog
// figures are right from the start; call Start to begin flushing.
func New(w *wal.WAL, store cairn.EventStore, opts Options) (*Pipeline, error) {
	if opts.FlushSize <= 0 {
		opts.FlushSize = 500
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = 1_000_000
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{wal: w, store: store, opts: opts, log: opts.Logger,
		kick: make(chan struct{}, 1), drain: make(chan struct{}), done: make(chan struct{})}
	p.checkpoint = p.readCheckpoint()
	p.storedPos = p.checkpoint
	// Count what is waiting.
	r := w.NewReader(p.checkpoint)
	defer r.Close()
	var events, bytes int64
	for {
		rec, _, err := r.Next()
		if err == io.EOF {
			break
		}
		var ce *wal.CorruptionError
		if errors.As(err, &ce) {
			r.SkipSegment()
			continue
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
	return p, nil
}

func (p *Pipeline) checkpointPath() string { return filepath.Join(p.wal.Dir(), "checkpoint") }

func (p *Pipeline) readCheckpoint() wal.Position {
	b, err := os.ReadFile(p.checkpointPath())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			p.log.Warn("cannot read spool checkpoint; replaying the whole spool", "err", err)
		}
		return wal.Position{}
	}
	seg, off, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	s, err1 := strconv.Atoi(seg)
	o, err2 := strconv.ParseInt(off, 10, 64)
	if !ok || err1 != nil || err2 != nil || s < 0 || o < 0 {
		p.log.Warn("malformed spool checkpoint; replaying the whole spool", "content", string(b))
		return wal.Position{}
	}
	return wal.Position{Segment: s, Offset: o}
}

func (p *Pipeline) writeCheckpoint(pos wal.Position) error {
	tmp := p.checkpointPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(pos.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp, p.checkpointPath()); err != nil {
		return fmt.Errorf("rename checkpoint: %w", err)
	}
	return nil
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
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Stats returns a snapshot of the pipeline's counters.
func (p *Pipeline) Stats() cairn.IngestStats {
	bytes, segs := p.wal.Size()
	st := cairn.IngestStats{
		Backlog:           p.backlog.Load(),
		BacklogBytes:      p.backlogBytes.Load(),
		FlushSize:         p.opts.FlushSize,
		FlushInterval:     p.opts.FlushInterval,
		MaxBacklog:        p.opts.MaxBacklog,
		Flushing:          p.flushing.Load(),
		Accepted:          p.accepted.Load(),
		Stored:            p.stored.Load(),
		Duplicates:        p.duplicates.Load(),
		DeadLettered:      p.deadLettered.Load(),
		Flushes:           p.flushes.Load(),
		FlushFailures:     p.flushFailures.Load(),
		LastFlushDuration: time.Duration(p.lastFlushNanos.Load()),
		SpoolBytes:        bytes,
		SpoolSegments:     segs,
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
	end    wal.Position
}

// run is the batcher loop.
func (p *Pipeline) run(ctx context.Context) {
	r := p.wal.NewReader(p.checkpoint)
	defer r.Close()
	defer p.commit(true) // whatever the store has, durably, before exiting
	var st staged
	draining := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		caughtUp := p.fill(r, &st)
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
			p.commit(true) // idle: make the store durable and trim now
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
		case <-p.kick:
		case <-timer.C:
		case <-p.drain:
			draining = true
		case <-ctx.Done():
			return
		}
	}
}

// fill reads spool records into st until FlushSize events are staged or the
// spool is exhausted; it reports whether it reached the end of the spool.
func (p *Pipeline) fill(r *wal.Reader, st *staged) bool {
	for len(st.events) < p.opts.FlushSize {
		rec, end, err := r.Next()
		if err == io.EOF {
			return true
		}
		var ce *wal.CorruptionError
		if errors.As(err, &ce) {
			p.log.Error("spool corruption: skipping the rest of the segment", "segment", ce.Segment,
				"offset", ce.Offset, "reason", ce.Reason)
			r.SkipSegment()
			st.end = r.Position()
			continue
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
	p.commit(false)
	return nil
}

// commit advances the checkpoint to what the store holds durably and trims
// the spool behind it. For a cairn.DeferredSyncer store it first syncs the
// store — unless force is false, the last sync was under SyncInterval ago,
// and no spool segment would be freed.
func (p *Pipeline) commit(force bool) {
	if p.storedPos == p.checkpoint {
		return
	}
	if syncer, ok := p.store.(cairn.DeferredSyncer); ok {
		if !force && time.Since(p.lastSync) < p.opts.SyncInterval && p.storedPos.Segment == p.checkpoint.Segment {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := syncer.Sync(ctx)
		cancel()
		if err != nil {
			p.log.Warn("store sync failed; the spool keeps the events", "err", err)
			return
		}
		p.lastSync = time.Now()
	}
	p.checkpoint = p.storedPos
	if err := p.writeCheckpoint(p.checkpoint); err != nil {
		p.log.Warn("cannot save spool checkpoint", "err", err)
	}
	if err := p.wal.RemoveBefore(p.checkpoint.Segment); err != nil {
		p.log.Warn("cannot trim spool", "err", err)
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
