package wal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	headerSize    = 8
	frameSize     = 8
	segmentSuffix = ".seg"
	magic         = "CRNWAL"
	version       = 1
	// MaxRecordSize is the largest record Append accepts.
	MaxRecordSize = 32 << 20
	// DefaultSegmentSize is the size at which a new segment is started.
	DefaultSegmentSize = 64 << 20
	// maxGroupBytes bounds how much one group commit writes.
	maxGroupBytes = 16 << 20
	// DefaultRetryInterval is how often a failed spool tries to become
	// writable again.
	DefaultRetryInterval = time.Second
	// failureLogInterval bounds how often repeated failures are logged.
	failureLogInterval = 30 * time.Second
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by the spool.
var (
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrTooLarge is returned for a record over MaxRecordSize.
	ErrTooLarge = errors.New("wal: record too large")
)

// CorruptionError reports damaged data in a segment, and how a Reader
// stepped over it.
type CorruptionError struct {
	// Segment and Offset locate the start of the damage.
	Segment int
	Offset  int64
	// Reason says what was wrong.
	Reason string
	// Resume is the offset where reading resumed: the next valid record, or
	// the end of the segment's data when none follows.
	Resume int64
	// Bytes is the number of bytes stepped over (Resume - Offset).
	Bytes int64
	// Records is the number of records lost: exact when Exact, otherwise a
	// lower bound (the damaged bytes may have held more than one record).
	Records int
	// Exact reports whether Records is exact.
	Exact bool
}

// Error implements error.
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corrupt segment %d at offset %d: %s", e.Segment, e.Offset, e.Reason)
}

// Position is a place in the spool: a segment and a byte offset in it.
type Position struct {
	Segment int
	Offset  int64
}

// Less reports whether p comes before q.
func (p Position) Less(q Position) bool {
	return p.Segment < q.Segment || p.Segment == q.Segment && p.Offset < q.Offset
}

// String formats p as "segment:offset".
func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Segment, p.Offset) }

// Options configure a WAL.
type Options struct {
	// SegmentSize is the size after which a new segment is started
	// (DefaultSegmentSize if zero).
	SegmentSize int64
	// Logger receives repair and failure messages.
	Logger *slog.Logger
	// OnSync, if set, is called after every group commit with its duration,
	// record count and byte count.
	OnSync func(d time.Duration, records, bytes int)
	// RetryInterval is how often a failed spool (disk full, I/O error)
	// tries to recover: on the next append after it, or by itself
	// (DefaultRetryInterval if zero).
	RetryInterval time.Duration
}

type appendReq struct {
	data []byte
	done chan appendResult
}

type appendResult struct {
	pos Position
	err error
}

// WAL is an append-only, segmented, fsynced log of records.
type WAL struct {
	dir  string
	opts Options
	log  *slog.Logger

	reqs    chan *appendReq
	quit    chan struct{}
	stopped chan struct{}

	// Owned by the writer goroutine.
	f    *os.File
	bw   *bufio.Writer
	seg  int
	size int64

	mu        sync.Mutex
	synced    Position      // end of the last synced record
	committed Position      // stored elsewhere up to here (see Commit)
	resets    int64         // invalid checkpoints discarded
	first     int           // oldest segment on disk
	segBytes  map[int]int64 // size of each segment on disk
	failed    error         // set while the spool cannot be written
	retryAt   time.Time     // when a failed spool next tries to recover
	closed    bool

	// Owned by the writer goroutine: rate-limited failure logging.
	failLogged time.Time
	failQuiet  int // failures not logged since failLogged
}

// Open opens (creating if needed) the spool in dir, repairs a torn tail in
// its newest segment, loads and validates the checkpoint (see Committed),
// and starts a new segment for appends.
func Open(dir string, opts Options) (*WAL, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	w := &WAL{
		dir: dir, opts: opts, log: opts.Logger,
		reqs: make(chan *appendReq, 4096), quit: make(chan struct{}), stopped: make(chan struct{}),
		segBytes: map[int]int64{},
	}
	if err := removeTemps(dir); err != nil {
		return nil, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for _, s := range segs {
		fi, err := os.Stat(w.segPath(s))
		if err != nil {
			return nil, fmt.Errorf("stat segment %d: %w", s, err)
		}
		w.segBytes[s] = fi.Size()
	}
	next := 1
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		if err := w.repair(last); err != nil {
			return nil, err
		}
		next = last + 1
		w.first = segs[0]
	} else {
		w.first = next
	}
	w.loadCheckpoint(segs)
	if err := w.createSegment(next); err != nil {
		return nil, err
	}
	w.synced = Position{Segment: next, Offset: headerSize}
	go w.run()
	return w, nil
}

func (w *WAL) segPath(n int) string {
	return filepath.Join(w.dir, fmt.Sprintf("%08d%s", n, segmentSuffix))
}

// listSegments returns the segment numbers in dir, ascending.
func listSegments(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read spool dir: %w", err)
	}
	var segs []int
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(name, segmentSuffix))
		if err != nil || n <= 0 {
			continue
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	return segs, nil
}

func removeTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read spool dir: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove temp file: %w", err)
			}
		}
	}
	return nil
}

// repair makes the newest segment n end at a record boundary. Damage at its
// very end with no valid record after it is a torn tail (a crash mid-write):
// the tail is copied to "<segment>.broken" and cut. Damage followed by valid
// records is corruption in the middle: it is kept in place (readers step
// over it) and logged, so no valid record is ever deleted.
func (w *WAL) repair(n int) (err error) {
	path := w.segPath(n)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open segment %d for repair: %w", n, err)
	}
	defer func() {
		// The segment may have been truncated and rewritten: its Close
		// error is the repair's.
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close segment %d: %w", n, cerr))
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment %d: %w", n, err)
	}
	size := fi.Size()
	valid, headerOK, middle, err := scanValid(f, n, size)
	if err != nil {
		return fmt.Errorf("scan segment %d: %w", n, err)
	}
	for _, ce := range middle {
		w.log.Warn("spool: damaged data in the middle of the newest segment; kept, readers step over it",
			"segment", n, "offset", ce.Offset, "bytes", ce.Bytes, "reason", ce.Reason)
	}
	if valid == size {
		return nil
	}
	if err := w.saveBroken(f, n, valid, size); err != nil {
		return err
	}
	w.log.Warn("spool: truncating torn tail", "segment", n, "offset", valid,
		"discarded_bytes", size-valid, "copy", w.segPath(n)+".broken")
	if !headerOK && valid <= headerSize {
		// No record and no header survived: rewrite the header so the
		// segment stays readable.
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("truncate segment %d: %w", n, err)
		}
		if _, err := f.WriteAt(segmentHeader(), 0); err != nil {
			return fmt.Errorf("rewrite header of segment %d: %w", n, err)
		}
		valid = headerSize
	} else if err := f.Truncate(valid); err != nil {
		return fmt.Errorf("truncate segment %d: %w", n, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync segment %d: %w", n, err)
	}
	w.segBytes[n] = valid
	return nil
}

// saveBroken copies bytes [from, to) of segment n to "<segment>.broken"
// (synced) before they are cut, as etcd does.
func (w *WAL) saveBroken(f *os.File, n int, from, to int64) error {
	b := make([]byte, to-from)
	if _, err := f.ReadAt(b, from); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read torn tail of segment %d: %w", n, err)
	}
	path := w.segPath(n) + ".broken"
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("save torn tail of segment %d: %w", n, err)
	}
	bf, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("save torn tail of segment %d: %w", n, err)
	}
	defer bf.Close() //nolint:errcheck // read-only handle opened to fsync; WriteFile checked the write and its close
	if err := bf.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// scanValid reads a whole segment of size bytes, stepping over damage. It
// returns the offset after its last valid record (headerSize with none, 0
// when the header is damaged too), whether the header is intact, and the
// damage found before that offset.
func scanValid(f io.ReaderAt, seg int, size int64) (valid int64, headerOK bool, middle []*CorruptionError, err error) {
	sizeFn := func() (int64, error) { return size, nil }
	var pending []*CorruptionError // damage not yet followed by a valid record
	s, err := openScan(f, seg, headerSize, sizeFn, 1<<20)
	var ce *CorruptionError
	if errors.As(err, &ce) {
		pending = append(pending, ce)
	} else if err != nil {
		return 0, false, nil, err
	}
	headerOK = ce == nil
	if headerOK {
		valid = headerSize
	}
	for {
		_, err := s.next(nil, -1)
		if errors.Is(err, io.EOF) {
			return valid, headerOK, middle, nil
		}
		if errors.As(err, &ce) {
			pending = append(pending, ce)
			continue
		}
		if err != nil {
			return 0, false, nil, err
		}
		valid = s.off()
		middle = append(middle, pending...)
		pending = pending[:0]
	}
}

func asCorruption(err error, seg int, off int64) *CorruptionError {
	var ce *CorruptionError
	if errors.As(err, &ce) {
		return ce
	}
	return &CorruptionError{Segment: seg, Offset: off, Reason: err.Error()}
}

func segmentHeader() []byte {
	h := make([]byte, headerSize)
	copy(h, magic)
	binary.BigEndian.PutUint16(h[6:], version)
	return h
}

// createSegment creates segment n atomically (header written and synced
// under a temporary name, renamed, directory synced) and makes it the active
// one, opened under its final name so errors name the segment.
func (w *WAL) createSegment(n int) error {
	tmp := w.segPath(n) + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("create segment %d: %w", n, err)
	}
	if _, err := f.Write(segmentHeader()); err != nil {
		f.Close() //nolint:errcheck // error path: the error below is returned
		return fmt.Errorf("write header of segment %d: %w", n, err)
	}
	if err := f.Sync(); err != nil {
		f.Close() //nolint:errcheck // error path: the error below is returned
		return fmt.Errorf("sync segment %d: %w", n, err)
	}
	if err := os.Rename(tmp, w.segPath(n)); err != nil {
		f.Close() //nolint:errcheck // error path: the error below is returned
		return fmt.Errorf("rename segment %d: %w", n, err)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close() //nolint:errcheck // error path: the error below is returned
		return err
	}
	// Reopen under the final name: an *os.File's errors name the path it
	// was opened with, and the temporary name is gone.
	final, err := os.OpenFile(w.segPath(n), os.O_WRONLY|os.O_APPEND, 0)
	f.Close() //nolint:errcheck // its header was written and fsynced above; writes go through final
	if err != nil {
		return fmt.Errorf("open segment %d: %w", n, err)
	}
	f = final
	w.f, w.seg, w.size = f, n, headerSize
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, 1<<20)
	} else {
		w.bw.Reset(f)
	}
	w.mu.Lock()
	w.segBytes[n] = headerSize
	w.mu.Unlock()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open spool dir: %w", err)
	}
	defer d.Close() //nolint:errcheck // read-only directory handle; its Sync error is returned
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync spool dir: %w", err)
	}
	return nil
}

// Append writes data as one record and returns once it is on stable storage,
// with the position just past it. If ctx ends first, Append returns its error;
// the record may still be written.
func (w *WAL) Append(ctx context.Context, data []byte) (Position, error) {
	if len(data) == 0 || len(data) > MaxRecordSize {
		return Position{}, ErrTooLarge
	}
	req := &appendReq{data: data, done: make(chan appendResult, 1)}
	w.mu.Lock()
	closed, failed, retryAt := w.closed, w.failed, w.retryAt
	w.mu.Unlock()
	if closed {
		return Position{}, ErrClosed
	}
	if failed != nil && time.Now().Before(retryAt) {
		return Position{}, failed // a recovery attempt is not due yet
	}
	select {
	case w.reqs <- req:
	case <-w.quit:
		return Position{}, ErrClosed
	case <-ctx.Done():
		return Position{}, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.pos, res.err
	case <-ctx.Done():
		return Position{}, ctx.Err()
	}
}

// run is the writer goroutine: it gathers pending appends, writes them, syncs
// once, and releases every waiter (group commit).
func (w *WAL) run() {
	defer close(w.stopped)
	group := make([]*appendReq, 0, 256)
	positions := make([]Position, 0, 256)
	probe := time.NewTimer(time.Hour)
	probe.Stop()
	defer probe.Stop()
	for {
		var first *appendReq
		if w.Err() != nil {
			probe.Reset(w.opts.RetryInterval)
		}
		select {
		case first = <-w.reqs:
		case <-probe.C:
			// Recover without waiting for traffic, so /health clears.
			w.mu.Lock()
			failed := w.failed != nil
			w.mu.Unlock()
			if failed {
				if err := w.recover(); err != nil {
					_ = w.noteFailure(err) // recorded in w.failed; appends report it
				}
			}
			continue
		case <-w.quit:
			// Drain what was queued before Close.
			select {
			case first = <-w.reqs:
			default:
				return
			}
		}
		group = append(group[:0], first)
		bytes := len(first.data)
	gather:
		for bytes < maxGroupBytes {
			select {
			case r := <-w.reqs:
				group = append(group, r)
				bytes += len(r.data)
			default:
				break gather
			}
		}
		probe.Stop()
		positions = positions[:0]
		err := w.writeGroup(group, &positions)
		for i, r := range group {
			if err != nil {
				r.done <- appendResult{err: err}
			} else {
				r.done <- appendResult{pos: positions[i]}
			}
		}
	}
}

func (w *WAL) writeGroup(group []*appendReq, positions *[]Position) error {
	w.mu.Lock()
	failed := w.failed
	w.mu.Unlock()
	if failed != nil {
		if err := w.recover(); err != nil {
			return w.noteFailure(err)
		}
	}
	start := time.Now()
	var frame [frameSize]byte
	total := 0
	for _, r := range group {
		need := int64(frameSize + len(r.data))
		if w.size+need > w.opts.SegmentSize && w.size > headerSize {
			if err := w.rotate(); err != nil {
				return w.fail(err)
			}
		}
		binary.LittleEndian.PutUint32(frame[0:], uint32(len(r.data)))
		binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(r.data, castagnoli))
		if _, err := w.bw.Write(frame[:]); err != nil {
			return w.fail(fmt.Errorf("write spool: %w", err))
		}
		if _, err := w.bw.Write(r.data); err != nil {
			return w.fail(fmt.Errorf("write spool: %w", err))
		}
		w.size += need
		total += int(need)
		*positions = append(*positions, Position{Segment: w.seg, Offset: w.size})
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(fmt.Errorf("write spool: %w", err))
	}
	if err := fdatasync(w.f); err != nil {
		return w.fail(fmt.Errorf("sync spool: %w", err))
	}
	w.mu.Lock()
	w.synced = Position{Segment: w.seg, Offset: w.size}
	w.segBytes[w.seg] = w.size
	w.mu.Unlock()
	if w.opts.OnSync != nil {
		w.opts.OnSync(time.Since(start), len(group), total)
	}
	return nil
}

// rotate syncs and closes the active segment and starts the next one.
func (w *WAL) rotate() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("write spool: %w", err)
	}
	if err := fdatasync(w.f); err != nil {
		return fmt.Errorf("sync spool: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close segment %d: %w", w.seg, err)
	}
	w.mu.Lock()
	w.synced = Position{Segment: w.seg, Offset: w.size}
	w.segBytes[w.seg] = w.size
	w.mu.Unlock()
	return w.createSegment(w.seg + 1)
}

// fail puts the spool in a failed state: after a write or fsync error the
// state of the active segment is unknown, so nothing more is written to it
// and appends are refused until recover succeeds. What was synced before
// stays readable.
func (w *WAL) fail(err error) error {
	w.mu.Lock()
	first := w.failed == nil
	w.failed = err
	w.retryAt = time.Now().Add(w.opts.RetryInterval)
	w.mu.Unlock()
	if first {
		w.log.Error("spool write failed; refusing appends until a fresh segment can be written and synced",
			"err", err, "retry_every", w.opts.RetryInterval)
		w.failLogged, w.failQuiet = time.Now(), 0
		return err
	}
	return w.noteFailure(err)
}

// noteFailure records another failed write or recovery attempt, logging at
// most one line per failureLogInterval with the count since the last.
func (w *WAL) noteFailure(err error) error {
	w.mu.Lock()
	w.failed = err
	w.retryAt = time.Now().Add(w.opts.RetryInterval)
	w.mu.Unlock()
	w.failQuiet++
	if time.Since(w.failLogged) >= failureLogInterval {
		w.log.Warn("spool still failing; appends refused", "err", err, "failures", w.failQuiet,
			"since", w.failLogged.Format(time.RFC3339))
		w.failLogged, w.failQuiet = time.Now(), 0
	}
	return err
}

// recover makes a failed spool writable again without risking an
// acknowledged record: the active segment, whose bytes after the last
// synced record are unknown, is abandoned (cut back to that record, best
// effort, so readers do not take the unacknowledged bytes for damage), and
// a fresh segment is created — its header written and fsynced, renamed, the
// directory fsynced. Only then is the failure cleared; the caller's group
// is written and fsynced in the fresh segment before anyone is
// acknowledged.
func (w *WAL) recover() error {
	if w.f != nil {
		_ = w.f.Close() // the handle's state is unknown; its synced data is on disk
		w.f = nil
	}
	w.mu.Lock()
	synced := w.synced
	w.mu.Unlock()
	if synced.Segment == w.seg {
		if err := os.Truncate(w.segPath(w.seg), synced.Offset); err != nil {
			w.log.Warn("spool: cannot cut the unacknowledged tail of the abandoned segment; readers will report it as damage",
				"segment", w.seg, "offset", synced.Offset, "err", err)
		} else {
			w.mu.Lock()
			w.segBytes[w.seg] = synced.Offset
			w.mu.Unlock()
		}
	}
	if err := w.createSegment(w.seg + 1); err != nil {
		return err
	}
	w.mu.Lock()
	prev := w.failed
	w.failed = nil
	w.synced = Position{Segment: w.seg, Offset: headerSize}
	w.mu.Unlock()
	w.log.Info("spool writable again; continuing in a fresh segment", "segment", w.seg, "after", prev,
		"failures_since_last_log", w.failQuiet)
	w.failQuiet = 0
	return nil
}

// Err returns the error that stopped the spool accepting appends, if any.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// Synced returns the position after the last synced record.
func (w *WAL) Synced() Position {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.synced
}

// oldest returns the oldest segment still on disk.
func (w *WAL) oldest() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// Size returns the bytes and segment count the spool takes on disk.
func (w *WAL) Size() (bytes int64, segments int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.segBytes {
		bytes += b
	}
	return bytes, len(w.segBytes)
}

// removeBefore deletes every segment numbered below seg, never the active
// one (see Commit).
func (w *WAL) removeBefore(seg int) error {
	w.mu.Lock()
	active := w.synced.Segment
	var doomed []int
	for s := range w.segBytes {
		if s < seg && s < active {
			doomed = append(doomed, s)
		}
	}
	w.mu.Unlock()
	if len(doomed) == 0 {
		return nil
	}
	slices.Sort(doomed)
	for _, s := range doomed {
		if err := os.Remove(w.segPath(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove segment %d: %w", s, err)
		}
		if err := os.Remove(w.segPath(s) + ".broken"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove torn tail copy of segment %d: %w", s, err)
		}
		w.mu.Lock()
		delete(w.segBytes, s)
		if w.first <= s {
			w.first = s + 1
		}
		w.mu.Unlock()
	}
	return syncDir(w.dir)
}

// Close waits for queued appends to be written and synced, then closes the
// active segment. Appends after Close fail with ErrClosed.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.stopped
	// Fail anything that raced in after the writer stopped.
	for {
		select {
		case r := <-w.reqs:
			r.done <- appendResult{err: ErrClosed}
			continue
		default:
		}
		break
	}
	if w.Err() != nil {
		// Failed: what is buffered was never acknowledged (its appends got
		// the error), and what was acknowledged is synced. Nothing to save.
		if w.f != nil {
			_ = w.f.Close()
		}
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		w.f.Close() //nolint:errcheck // error path: the flush error is returned
		return fmt.Errorf("flush spool: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}
