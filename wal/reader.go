package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// segmentReader decodes the records of one segment.
type segmentReader struct {
	r     *bufio.Reader
	seg   int
	off   int64 // offset of the next unread byte
	limit int64 // stop (io.EOF) at this offset; < 0 for no limit
}

func newSegmentReader(r *bufio.Reader, seg int) *segmentReader {
	return &segmentReader{r: r, seg: seg, limit: -1}
}

func (s *segmentReader) corrupt(format string, args ...any) error {
	return &CorruptionError{Segment: s.seg, Offset: s.off, Reason: fmt.Sprintf(format, args...)}
}

func (s *segmentReader) readHeader() error {
	var h [headerSize]byte
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return s.corrupt("short segment header: %v", err)
	}
	if string(h[:6]) != magic {
		return s.corrupt("bad magic %q", h[:6])
	}
	if v := binary.BigEndian.Uint16(h[6:]); v != version {
		return s.corrupt("unsupported version %d", v)
	}
	s.off = headerSize
	return nil
}

// next returns the next record, reusing buf. It returns io.EOF at a clean end
// (end of file or the limit) and a *CorruptionError for damaged data.
func (s *segmentReader) next(buf []byte) ([]byte, error) {
	if s.limit >= 0 && s.off >= s.limit {
		return nil, io.EOF
	}
	var frame [frameSize]byte
	n, err := io.ReadFull(s.r, frame[:])
	if err == io.EOF {
		return nil, io.EOF
	} else if err != nil {
		return nil, s.corrupt("torn record header (%d of %d bytes)", n, frameSize)
	}
	length := binary.LittleEndian.Uint32(frame[0:])
	sum := binary.LittleEndian.Uint32(frame[4:])
	if length == 0 {
		return nil, s.corrupt("zero record length")
	}
	if length > MaxRecordSize {
		return nil, s.corrupt("record length %d exceeds limit", length)
	}
	if cap(buf) < int(length) {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	if n, err := io.ReadFull(s.r, buf); err != nil {
		return nil, s.corrupt("torn record (%d of %d bytes)", n, length)
	}
	if crc32.Checksum(buf, castagnoli) != sum {
		return nil, s.corrupt("checksum mismatch")
	}
	s.off += frameSize + int64(length)
	return buf, nil
}

// Reader returns the spool's records in order, from a starting position up
// to the last synced record. It is not safe for concurrent use.
type Reader struct {
	w       *WAL
	pos     Position
	f       *os.File
	sc      *segmentScan
	buf     []byte
	limited bool // the last read stopped at the synced end of the active segment
}

// NewReader returns a Reader starting at pos. A position before the oldest
// segment, or with an offset inside a segment header, starts at the first
// record of that segment.
func (w *WAL) NewReader(pos Position) *Reader {
	if first := w.oldest(); pos.Segment < first {
		pos = Position{Segment: first}
	}
	return &Reader{w: w, pos: pos}
}

// Next returns the next synced record and the position just past it. The
// record's bytes are valid until the next call. It returns io.EOF when every
// synced record has been read (more may come later). Damaged data — a bad
// record, a bad segment header, a missing segment — is returned once as a
// *CorruptionError saying what was lost; the Reader has already stepped over
// it (to the next valid record), so call Next again to continue.
func (r *Reader) Next() ([]byte, Position, error) {
	for {
		synced := r.w.Synced()
		if !r.pos.Less(synced) {
			return nil, r.pos, io.EOF
		}
		if r.f == nil {
			if err := r.open(); err != nil {
				return nil, r.pos, err
			}
		}
		limit := int64(-1)
		if r.pos.Segment == synced.Segment {
			limit = synced.Offset
		} else if r.limited {
			// The segment was active when last read and is not any more.
			// Its read-ahead may hold bytes past the synced end that a
			// recovering spool has since cut (see WAL.recover): reread it
			// from the file.
			r.limited = false
			if err := r.reopen(); err != nil {
				return nil, r.pos, err
			}
		}
		r.limited = limit >= 0
		rec, err := r.sc.next(r.buf, limit)
		if errors.Is(err, io.EOF) {
			if r.pos.Segment < synced.Segment {
				r.advance(r.pos.Segment + 1)
				continue
			}
			return nil, r.pos, io.EOF
		}
		r.pos.Offset = r.sc.off()
		if err != nil {
			return nil, r.pos, err
		}
		r.buf = rec
		return rec, r.pos, nil
	}
}

// open opens the reader's current segment at its position. A missing
// segment, or a damaged header, is reported as corruption (already stepped
// over).
func (r *Reader) open() error {
	path := r.w.segPath(r.pos.Segment)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		seg := r.pos.Segment
		r.advance(seg + 1)
		return &CorruptionError{Segment: seg, Offset: 0, Reason: "segment missing"}
	} else if err != nil {
		return fmt.Errorf("open segment %d: %w", r.pos.Segment, err)
	}
	size := func() (int64, error) {
		fi, err := f.Stat()
		if err != nil {
			return 0, fmt.Errorf("stat segment %d: %w", r.pos.Segment, err)
		}
		return fi.Size(), nil
	}
	sc, err := openScan(f, r.pos.Segment, r.pos.Offset, size, 256<<10)
	var ce *CorruptionError
	if err != nil && !errors.As(err, &ce) {
		f.Close() //nolint:errcheck // read-only segment, error path: the scan error is returned
		return err
	}
	r.f, r.sc = f, sc
	r.pos.Offset = sc.off()
	return err
}

// reopen drops the current segment's file and read-ahead and opens it again
// at the reader's position.
func (r *Reader) reopen() error {
	if r.f != nil {
		r.f.Close() //nolint:errcheck // a read-only segment handle, reopened below
		r.f, r.sc = nil, nil
	}
	return r.open()
}

func (r *Reader) advance(seg int) {
	if r.f != nil {
		r.f.Close() //nolint:errcheck // read-only segment, done with: nothing was written through it
		r.f, r.sc = nil, nil
	}
	r.pos = Position{Segment: seg}
}

// Close releases the reader's open file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f, r.sc = nil, nil
	return err
}
