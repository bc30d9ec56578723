package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/cairn-dev/cairn/wal"
)

// Position is a place in a Source, just past a record. For the spool it is
// a wal.Position (segment and byte offset); another source defines its own
// comparable type (a stream consumer counts deliveries, and committing a
// position acknowledges every message delivered up to it). The batcher only
// compares positions for equality (a nil Position is "nothing read yet"),
// logs them, and hands them back to the Source that returned them.
type Position interface {
	// String formats the position for logs.
	String() string
}

// Source is what the batcher reads: records in order, each one batch of
// events encoded with cairn.AppendBatch. The batcher owns the size and age
// triggers, retries with backoff, dead-lettering and the store sync; a Source
// only delivers records and keeps the committed position. The spool is one
// Source (see New); a stream consumer can be another.
type Source interface {
	// Next returns the next record and the position just past it. The bytes
	// are valid until the next call. It returns io.EOF when no record is
	// available now (wait on Ready). Damaged data is the source's to report
	// and step over; any other error stops the current read.
	Next() ([]byte, Position, error)
	// Ready returns a channel that receives a value when records may have
	// arrived since Next returned io.EOF.
	Ready() <-chan struct{}
	// Commit records that every record up to pos is durable in the store;
	// the source may release them.
	Commit(ctx context.Context, pos Position) error
	// Releases reports whether committing pos would free storage (for the
	// spool, a segment), which makes an early store sync worthwhile.
	Releases(pos Position) bool
	// Close releases the source's resources.
	Close() error
}

// spoolSource is the Source reading the write-ahead spool from its
// committed position. Ingest wakes it through notify after appending.
type spoolSource struct {
	w     *wal.WAL
	r     *wal.Reader
	log   *slog.Logger
	ready chan struct{}
	// lost counts records lost to damage (exact or lower bounds), if set.
	lost *atomic.Int64
}

var _ Source = (*spoolSource)(nil)

func newSpoolSource(w *wal.WAL, log *slog.Logger) *spoolSource {
	return &spoolSource{w: w, r: w.NewReader(w.Committed()), log: log, ready: make(chan struct{}, 1)}
}

// Next implements Source. Damage is logged, counted and stepped over: the
// reader resumes at the next valid record, so only damaged records are lost.
func (s *spoolSource) Next() ([]byte, Position, error) {
	for {
		rec, pos, err := s.r.Next()
		var ce *wal.CorruptionError
		if errors.As(err, &ce) {
			s.log.Error("spool corruption: damaged records lost", "segment", ce.Segment,
				"offset", ce.Offset, "reason", ce.Reason, "resumed_at", ce.Resume, "bytes", ce.Bytes,
				"records_lost", ce.Records, "exact", ce.Exact)
			if s.lost != nil {
				s.lost.Add(int64(ce.Records))
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, pos, fmt.Errorf("read spool: %w", err)
		}
		return rec, pos, err
	}
}

// Ready implements Source.
func (s *spoolSource) Ready() <-chan struct{} { return s.ready }

// notify wakes the batcher (without blocking).
func (s *spoolSource) notify() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Commit implements Source: the spool saves its checkpoint and deletes the
// segments behind it.
func (s *spoolSource) Commit(_ context.Context, pos Position) error {
	wp, ok := pos.(wal.Position)
	if !ok {
		return fmt.Errorf("commit spool: position %v is not a spool position", pos)
	}
	return s.w.Commit(wp)
}

// Releases implements Source: committing pos frees a segment when pos is in
// a later segment than the committed position.
func (s *spoolSource) Releases(pos Position) bool {
	wp, ok := pos.(wal.Position)
	return ok && s.w.Committed().Segment < wp.Segment
}

// Close implements Source.
func (s *spoolSource) Close() error { return s.r.Close() }
