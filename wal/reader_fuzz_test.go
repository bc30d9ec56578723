package wal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
)

// frame encodes records as a segment, exactly as the writer does.
func frame(records ...[]byte) []byte {
	b := segmentHeader()
	for _, r := range records {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(r, castagnoli))
		b = append(b, r...)
	}
	return b
}

// FuzzReader feeds arbitrary bytes to the segment reader: it must never
// panic, must stop with io.EOF or a *CorruptionError, and every record it
// returns must lie inside the input with a matching checksum. Appending a
// valid record to a clean segment must read back that record.
func FuzzReader(f *testing.F) {
	f.Add(frame([]byte("one"), []byte("two")), []byte("three"))
	f.Add(frame([]byte("one"))[:10], []byte("x"))
	f.Add([]byte("CRNWAL"), []byte{})
	f.Add(append(frame([]byte("a")), 0, 0, 0, 0, 0, 0, 0, 0), []byte("b"))
	f.Fuzz(func(t *testing.T, data, extra []byte) {
		sr := newSegmentReader(bufio.NewReader(bytes.NewReader(data)), 1)
		if err := sr.readHeader(); err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("header error is not a CorruptionError: %v", err)
			}
			return
		}
		var n int
		for {
			rec, err := sr.next(nil)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var ce *CorruptionError
				if !errors.As(err, &ce) || ce.Offset != sr.off {
					t.Fatalf("bad error %v at offset %d", err, sr.off)
				}
				return
			}
			n++
			if sr.off > int64(len(data)) || len(rec) == 0 || !bytes.Contains(data, rec) {
				t.Fatalf("record %d outside the input", n)
			}
		}
		if sr.off != int64(len(data)) {
			t.Fatalf("clean EOF at %d of %d bytes", sr.off, len(data))
		}
		if len(extra) == 0 {
			return
		}
		// Clean segment + one more record reads back n+1 records.
		more := append(bytes.Clone(data), frame(extra)[headerSize:]...)
		sr = newSegmentReader(bufio.NewReader(bytes.NewReader(more)), 1)
		if err := sr.readHeader(); err != nil {
			t.Fatalf("re-read header: %v", err)
		}
		var last []byte
		for i := 0; i <= n; i++ {
			rec, err := sr.next(nil)
			if err != nil {
				t.Fatalf("re-read record %d: %v", i, err)
			}
			last = rec
		}
		if !bytes.Equal(last, extra) {
			t.Fatalf("appended record reads back as %q, want %q", last, extra)
		}
	})
}

// FuzzScan feeds arbitrary bytes to the resynchronising segment scan (what
// Reader and repair run): it must never panic and must terminate; every
// record it returns must carry a matching checksum and lie inside the
// input; every reported damage must move forward. A valid record appended
// after the damage must be read back, unless a record the scan returned
// (a CRC-valid frame found in the damage) covers its start.
func FuzzScan(f *testing.F) {
	f.Add(frame([]byte("one"), []byte("two")), []byte("three"))
	f.Add(append(frame([]byte("one")), 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4), []byte("x"))
	f.Add([]byte("XXXXXX\x00\x01"), []byte("y"))
	f.Add(append(frame([]byte("a")), make([]byte, 64)...), []byte("b"))
	f.Fuzz(func(t *testing.T, data, extra []byte) {
		if len(extra) == 0 || len(extra) > 1<<16 {
			return
		}
		in := append(bytes.Clone(data), frame(extra)[headerSize:]...)
		extraStart := int64(len(data))
		ra := bytes.NewReader(in)
		size := func() (int64, error) { return int64(len(in)), nil }
		s, err := openScan(ra, 1, headerSize, size, 64)
		var ce *CorruptionError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("open: %v", err)
		}
		var last []byte
		var lastEnd int64
		covered := false
		for steps := 0; ; steps++ {
			if steps > len(in)+2 {
				t.Fatal("scan does not terminate")
			}
			before := s.off()
			rec, err := s.next(nil, -1)
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.As(err, &ce) {
				if ce.Resume <= ce.Offset || ce.Resume < before || ce.Resume > int64(len(in)) || ce.Records < 1 {
					t.Fatalf("damage report %+v does not move forward from %d", ce, before)
				}
				continue
			}
			if err != nil {
				t.Fatalf("next: %v", err)
			}
			if len(rec) == 0 {
				t.Fatal("empty record")
			}
			end := s.off()
			start := end - frameSize - int64(len(rec))
			if start < before || end > int64(len(in)) || !bytes.Equal(in[start+frameSize:end], rec) ||
				binary.LittleEndian.Uint32(in[start+4:]) != crc32.Checksum(rec, castagnoli) {
				t.Fatalf("record [%d,%d) is not a valid frame of the input", start, end)
			}
			if start < extraStart && end > extraStart {
				covered = true
			}
			last, lastEnd = rec, end
		}
		// Records start after the header: one appended inside it is not one.
		if !covered && extraStart >= headerSize && (lastEnd != int64(len(in)) || !bytes.Equal(last, extra)) {
			t.Fatalf("the valid record after the damage was not read back (last %q ending at %d of %d)", last, lastEnd, len(in))
		}
	})
}
