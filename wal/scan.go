package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// segmentScan reads the records of one segment and steps over damage: after
// a bad record it resynchronises on the next valid frame (a sane length whose
// data fits and matches its CRC), so only the damaged bytes are lost.
type segmentScan struct {
	ra   io.ReaderAt
	seg  int
	size func() (int64, error) // the segment's current size on disk
	sr   *segmentReader
	bufN int
}

// openScan starts scanning segment seg (read through ra) at offset from
// (headerSize or later). It checks the header; a damaged header is reported
// as a *CorruptionError stepped over like any other damage (the scan then
// resumes at the first valid record, or at from when from is past the
// header), never as the loss of the segment.
func openScan(ra io.ReaderAt, seg int, from int64, size func() (int64, error), bufSize int) (*segmentScan, error) {
	s := &segmentScan{ra: ra, seg: seg, size: size, bufN: bufSize}
	from = max(from, headerSize)
	hr := newSegmentReader(bufio.NewReaderSize(io.NewSectionReader(ra, 0, headerSize), 16), seg)
	herr := hr.readHeader()
	if herr == nil {
		s.seek(from)
		return s, nil
	}
	ce := asCorruption(herr, seg, 0)
	resume := from
	if from == headerSize {
		n, err := size()
		if err != nil {
			return nil, err
		}
		if resume, err = resync(ra, headerSize, n); err != nil {
			return nil, err
		}
	}
	s.seek(resume)
	ce.Resume, ce.Bytes = resume, resume
	if from > headerSize {
		ce.Bytes = headerSize // only the header is in question
	}
	ce.Records, ce.Exact = 0, resume == from
	if resume != from {
		ce.Records = 1 // at least the record that started at from
	}
	return s, ce
}

// seek positions the scan at off.
func (s *segmentScan) seek(off int64) {
	sr := newSegmentReader(bufio.NewReaderSize(&offsetReader{ra: s.ra, off: off}, s.bufN), s.seg)
	sr.off = off
	s.sr = sr
}

// offsetReader reads ra sequentially from off. Like reading an *os.File,
// it reports io.EOF only on a read that returns no bytes, so a reader that
// has caught up with the end of the growing active segment reads the
// records appended later (io.SectionReader would leave a stale io.EOF in
// the bufio.Reader).
type offsetReader struct {
	ra  io.ReaderAt
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.ra.ReadAt(p, o.off)
	o.off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// off returns the offset of the next unread byte: the end of the last
// record returned (or of the damage stepped over).
func (s *segmentScan) off() int64 { return s.sr.off }

// next returns the next record, reusing buf, reading no further than limit
// (< 0: the end of the file). It returns io.EOF at the end, or a
// *CorruptionError describing damage it has stepped over: call next again to
// continue after it.
func (s *segmentScan) next(buf []byte, limit int64) ([]byte, error) {
	s.sr.limit = limit
	rec, err := s.sr.next(buf)
	var ce *CorruptionError
	if err == nil || errors.Is(err, io.EOF) || !errors.As(err, &ce) {
		return rec, err
	}
	end := limit
	if end < 0 {
		if end, err = s.size(); err != nil {
			return nil, err
		}
	}
	at := ce.Offset
	resume, err := resync(s.ra, at+1, end)
	if err != nil {
		return nil, err
	}
	ce.Resume, ce.Bytes = resume, resume-at
	// One record is lost for sure; exactly one when its length was intact
	// and the next valid record starts right after it.
	ce.Records, ce.Exact = 1, false
	var fr [frameSize]byte
	if _, err := s.ra.ReadAt(fr[:], at); err == nil {
		if l := int64(binary.LittleEndian.Uint32(fr[:4])); l > 0 && at+frameSize+l == resume {
			ce.Exact = true
		}
	}
	s.seek(resume)
	return nil, ce
}

// resyncSmall is the record length up to which resync checks a candidate's
// CRC directly; longer candidates must first be followed by something that
// can follow a record (see plausibleNext), so that scanning random garbage
// does not checksum megabytes at every byte.
const resyncSmall = 64 << 10

// resync returns the first offset in [from, end) where a valid record
// starts — length 1..MaxRecordSize, data within end, CRC-32C matching — or
// end if there is none.
func resync(ra io.ReaderAt, from, end int64) (int64, error) {
	const window = 1 << 20
	buf := make([]byte, min(int64(window), max(end-from, frameSize)))
	var data []byte
	for base := from; base+frameSize <= end; {
		n, err := ra.ReadAt(buf[:min(int64(len(buf)), end-base)], base)
		if err != nil && err != io.EOF {
			return 0, err
		}
		if n < frameSize {
			break
		}
		for i := 0; i+frameSize <= n; i++ {
			l := int64(binary.LittleEndian.Uint32(buf[i:]))
			q := base + int64(i)
			if l == 0 || l > MaxRecordSize || q+frameSize+l > end {
				continue
			}
			if l > resyncSmall && !plausibleNext(ra, q+frameSize+l, end) {
				continue
			}
			sum := binary.LittleEndian.Uint32(buf[i+4:])
			var d []byte
			if int64(i)+frameSize+l <= int64(n) {
				d = buf[int64(i)+frameSize : int64(i)+frameSize+l]
			} else {
				if int64(cap(data)) < l {
					data = make([]byte, l)
				}
				d = data[:l]
				if _, err := ra.ReadAt(d, q+frameSize); err != nil && err != io.EOF {
					return 0, err
				}
			}
			if crc32.Checksum(d, castagnoli) == sum {
				return q, nil
			}
		}
		base += int64(n - frameSize + 1)
	}
	return end, nil
}

// plausibleNext reports whether what lies at off could follow a record: the
// end of the data, a partial frame header (a torn tail), a zero length (zero
// fill) or a sane length.
func plausibleNext(ra io.ReaderAt, off, end int64) bool {
	if end-off < 4 {
		return true
	}
	var b [4]byte
	if _, err := ra.ReadAt(b[:], off); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(b[:]) <= MaxRecordSize
}
