package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// checkpointName is the file, inside the spool directory, holding the
// committed position as "segment:offset\n".
const checkpointName = "checkpoint"

// Commit records that every record before pos is safely stored elsewhere:
// pos becomes the Committed position (saved in the spool's checkpoint file)
// and every segment wholly before pos is deleted. pos must be a position
// returned by a Reader (the end of a record); a position before the current
// commit is ignored. The checkpoint file is written without fsync: losing it
// only means replaying records that are already stored.
func (w *WAL) Commit(pos Position) error {
	w.mu.Lock()
	if !w.committed.Less(pos) {
		w.mu.Unlock()
		return nil
	}
	if w.synced.Less(pos) {
		synced := w.synced
		w.mu.Unlock()
		return fmt.Errorf("commit %s: beyond the last synced record %s", pos, synced)
	}
	w.committed = pos
	w.mu.Unlock()
	path := filepath.Join(w.dir, checkpointName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(pos.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename checkpoint: %w", err)
	}
	return w.removeBefore(pos.Segment)
}

// Committed returns the position up to which records are committed: where a
// reader replaying the spool after a restart starts. With no valid
// checkpoint it is the start of the oldest segment.
func (w *WAL) Committed() Position {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed.Segment < w.first {
		return Position{Segment: w.first, Offset: headerSize}
	}
	return w.committed
}

// CheckpointResets returns how many times an invalid checkpoint was found
// and discarded (the spool then replays from its oldest record).
func (w *WAL) CheckpointResets() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.resets
}

// loadCheckpoint reads and validates the checkpoint file against the
// segments on disk (segs, ascending; the torn tail already repaired). A
// checkpoint that is malformed, names a segment that is not on disk, or an
// offset that is not the end of a valid record in it is logged at ERROR and
// discarded: the spool replays from its oldest record, which is safe because
// stores ignore events they already have.
func (w *WAL) loadCheckpoint(segs []int) {
	path := filepath.Join(w.dir, checkpointName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	reset := func(reason string, args ...any) {
		w.resets++
		w.committed = Position{}
		oldest, newest := 0, 0
		if len(segs) > 0 {
			oldest, newest = segs[0], segs[len(segs)-1]
		}
		w.log.Error("spool checkpoint invalid: replaying the spool from its oldest record",
			append([]any{"checkpoint", strings.TrimSpace(string(b)), "reason", reason,
				"oldest_segment", oldest, "newest_segment", newest}, args...)...)
	}
	if err != nil {
		reset("unreadable: " + err.Error())
		return
	}
	pos, ok := parsePosition(strings.TrimSpace(string(b)))
	if !ok {
		reset("malformed")
		return
	}
	switch {
	case len(segs) == 0:
		reset("the spool has no segments")
		return
	case pos.Segment > segs[len(segs)-1]:
		reset("segment past the end of the spool")
		return
	case w.segBytes[pos.Segment] == 0:
		reset("segment missing")
		return
	}
	f, err := os.Open(w.segPath(pos.Segment))
	if err != nil {
		reset("cannot open its segment: " + err.Error())
		return
	}
	defer f.Close() //nolint:errcheck // read-only segment, only scanned
	found, end := isRecordEnd(f, pos.Segment, pos.Offset)
	switch {
	case found:
		w.committed = pos
	case pos.Offset > end:
		reset("offset past the end of its segment's records", "segment_end", end)
	default:
		reset("offset is not a record boundary", "segment_end", end)
	}
}

// isRecordEnd reports whether off is the end of the header or of a valid
// record in segment seg (stepping over damage before it), and the end of the
// segment's valid records.
func isRecordEnd(f *os.File, seg int, off int64) (bool, int64) {
	if off == headerSize {
		return true, headerSize
	}
	fi, err := f.Stat()
	if err != nil {
		return false, 0
	}
	size := func() (int64, error) { return fi.Size(), nil }
	s, err := openScan(f, seg, headerSize, size, 1<<20)
	var ce *CorruptionError
	if err != nil && !errors.As(err, &ce) {
		return false, 0
	}
	end := int64(headerSize)
	for {
		if s.off() == off {
			return true, off
		}
		_, err := s.next(nil, -1)
		if errors.As(err, &ce) {
			continue
		}
		if err != nil {
			return false, end
		}
		end = s.off()
		if end > off {
			return false, end
		}
	}
}

// parsePosition parses "segment:offset".
func parsePosition(s string) (Position, bool) {
	seg, off, ok := strings.Cut(s, ":")
	if !ok {
		return Position{}, false
	}
	n, err1 := strconv.Atoi(seg)
	o, err2 := strconv.ParseInt(off, 10, 64)
	if err1 != nil || err2 != nil || n <= 0 || o < headerSize {
		return Position{}, false
	}
	return Position{Segment: n, Offset: o}, true
}
