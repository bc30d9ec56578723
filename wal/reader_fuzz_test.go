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
			if err == io.EOF {
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
		sr.readHeader()
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
