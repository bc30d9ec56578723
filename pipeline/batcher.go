package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
)

// Batcher is the batcher alone: it reads a Source, writes batches to the
// store (size and age triggers, retry with backoff, dead-letter) and commits
// its progress back to the Source only once the store holds the events
// durably. Pipeline pairs one with the spool; NewBatcher runs one over any
// other Source, such as a stream consumer.
type Batcher struct {
	src   Source
	store cairn.EventStore
	opts  Options
	log   *slog.Logger
	// countOnRead: the backlog counts records as they are read (no Ingest
	// side counts them in).
	countOnRead bool

	stored, duplicates, deadLettered atomic.Int64
	flushes, flushFailures           atomic.Int64
	backlog, backlogBytes            atomic.Int64
	corruptRecords                   atomic.Int64
	flushing                         atomic.Bool
	lastFlushNanos, lastFlushAt      atomic.Int64

	checkpoint Position // durable in the store up to here (batcher-owned)
	storedPos  Position // written to the store up to here (batcher-owned)
	lastSync   time.Time
	drain      chan struct{} // closed to ask the batcher to flush everything and stop
	cancel     context.CancelFunc
	done       chan struct{}
	drained    atomic.Int64 // events flushed after drain was requested
	closeOnce  sync.Once
}

// NewBatcher creates a batcher reading src into store; call Start to begin
// flushing and Close to drain and stop it (Close also closes src). Its
// backlog (Stats) counts events read from src and not yet stored. The
// Options fields about ingest (MaxBacklog) do not apply.
func NewBatcher(src Source, store cairn.EventStore, opts Options) *Batcher {
	b := newBatcher(src, store, opts.withDefaults())
	b.countOnRead = true
	return b
}

func newBatcher(src Source, store cairn.EventStore, opts Options) *Batcher {
	return &Batcher{src: src, store: store, opts: opts, log: opts.Logger,
		drain: make(chan struct{}), done: make(chan struct{})}
}

// withDefaults fills the zero fields of o with the defaults.
func (o Options) withDefaults() Options {
	if o.FlushSize <= 0 {
		o.FlushSize = DefaultFlushSize
	}
	o.MaxFlushSize = max(o.MaxFlushSize, o.FlushSize)
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = DefaultMaxBacklog
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Stats returns a snapshot of the batcher's counters (the spool fields are
// zero; Pipeline.Stats fills them).
func (p *Batcher) Stats() cairn.IngestStats {
	st := cairn.IngestStats{
		Backlog:           p.backlog.Load(),
		BacklogBytes:      p.backlogBytes.Load(),
		FlushSize:         p.opts.FlushSize,
		FlushInterval:     p.opts.FlushInterval,
		MaxBacklog:        p.opts.MaxBacklog,
		Flushing:          p.flushing.Load(),
		Stored:            p.stored.Load(),
		Duplicates:        p.duplicates.Load(),
		DeadLettered:      p.deadLettered.Load(),
		Flushes:           p.flushes.Load(),
		FlushFailures:     p.flushFailures.Load(),
		LastFlushDuration: time.Duration(p.lastFlushNanos.Load()),
	}
	if at := p.lastFlushAt.Load(); at != 0 {
		st.LastFlushAt = time.Unix(0, at).UTC()
	}
	return st
}

// Start launches the batcher.
func (p *Batcher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		p.run(ctx)
	}()
}

// Close asks the batcher to write everything waiting in its source to the
// store and stop, and waits until it has or ctx ends (whatever is left stays
// in the source: the spool for the next start, or the stream for
// redelivery). It returns the number of events flushed
// during the drain and ctx's error if the drain was cut short.
func (p *Batcher) Close(ctx context.Context) (int64, error) {
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
func (p *Batcher) run(ctx context.Context) {
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

// fill reads source records into st until MaxFlushSize events are staged
// or the source is exhausted; it reports whether it reached the end. (A
// flush is due from FlushSize events on; what is already waiting beyond
// that goes into the same write, up to MaxFlushSize.)
func (p *Batcher) fill(st *staged) bool {
	for len(st.events) < p.opts.MaxFlushSize {
		rec, end, err := p.src.Next()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			p.log.Error("source read failed", "err", err)
			return true
		}
		before := len(st.events)
		events, err := cairn.DecodeBatch(st.events, rec)
		if err != nil {
			p.log.Error("undecodable source record: dead-lettering it", "position", end.String(), "err", err)
			p.deadLetterRaw(rec, err.Error())
			if !p.countOnRead {
				if n, lerr := cairn.BatchLen(rec); lerr == nil {
					p.backlog.Add(-int64(n))
				}
				p.backlogBytes.Add(-int64(len(rec)))
			}
			st.events = st.events[:before]
			st.end = end
			continue
		}
		st.events = events
		st.bytes += int64(len(rec))
		st.end = end
		if p.countOnRead {
			p.backlog.Add(int64(len(events) - before))
			p.backlogBytes.Add(int64(len(rec)))
		}
	}
	return false
}

// flush writes st to the store, retrying until it succeeds or ctx ends, then
// advances the checkpoint and trims the spool.
func (p *Batcher) flush(ctx context.Context, st *staged) error {
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
func (p *Batcher) commit(ctx context.Context, force bool) {
	if p.storedPos == p.checkpoint || ctx.Err() != nil {
		return
	}
	if syncer, ok := p.store.(cairn.DeferredSyncer); ok {
		if !force && time.Since(p.lastSync) < p.opts.SyncInterval && !p.src.Releases(p.storedPos) {
			return
		}
		if err := syncer.Sync(ctx); err != nil {
			p.log.Warn("store sync failed; the source keeps the events", "err", err)
			return
		}
		p.lastSync = time.Now()
	}
	p.checkpoint = p.storedPos
	if err := p.src.Commit(ctx, p.checkpoint); err != nil {
		p.log.Warn("cannot commit source position", "err", err)
	}
}

// deadLetter appends permanently rejected events to the dead-letter file.
func (p *Batcher) deadLetter(rejected []cairn.RejectedEvent) {
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

func (p *Batcher) deadLetterRaw(rec []byte, reason string) {
	p.deadLettered.Add(1)
	line, _ := json.Marshal(map[string]any{"reason": reason, "record": rec})
	p.appendDeadLetter(append(line, '\n'))
}

func (p *Batcher) appendDeadLetter(buf []byte) {
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
