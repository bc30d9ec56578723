package wal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/wal"
)

func openWAL(t *testing.T, dir string, segSize int64) *wal.WAL {
	t.Helper()
	w, err := wal.Open(dir, wal.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

// mustClose closes c, failing the test (without stopping it) on error.
func mustClose(tb testing.TB, c io.Closer) {
	tb.Helper()
	if err := c.Close(); err != nil {
		tb.Errorf("Close: %v", err)
	}
}

func rec(i int) []byte {
	return []byte(fmt.Sprintf("record-%04d-%s", i, bytes.Repeat([]byte{'x'}, i%50)))
}

// readAll returns every record readable from the start, stopping at the
// first corruption error (returned) unless skip is set.
func readAll(t *testing.T, w *wal.WAL, skip bool) ([]string, []error) {
	t.Helper()
	r := w.NewReader(wal.Position{})
	defer mustClose(t, r)
	var out []string
	var errs []error
	for {
		b, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, errs
		}
		var ce *wal.CorruptionError
		if errors.As(err, &ce) {
			errs = append(errs, err)
			if !skip {
				return out, errs
			}
			continue // the reader has stepped over the damage
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, string(b))
	}
}

func appendN(t *testing.T, w *wal.WAL, from, n int) []string {
	t.Helper()
	var want []string
	for i := from; i < from+n; i++ {
		if _, err := w.Append(t.Context(), rec(i)); err != nil {
			t.Fatalf("Append: %v", err)
		}
		want = append(want, string(rec(i)))
	}
	return want
}

func TestAppendReadAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir, 1024)
	want := appendN(t, w, 0, 100)
	got, errs := readAll(t, w, false)
	if len(errs) > 0 || !slices.Equal(got, want) {
		t.Fatalf("read %d records (errs %v), want %d", len(got), errs, len(want))
	}
	if _, segs := w.Size(); segs < 3 {
		t.Fatalf("expected rotation into several segments, have %d", segs)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openWAL(t, dir, 1024)
	defer mustClose(t, w)
	want = append(want, appendN(t, w, 100, 10)...)
	if got, _ := readAll(t, w, false); !slices.Equal(got, want) {
		t.Fatalf("after reopen read %d records, want %d", len(got), len(want))
	}
}

func TestConcurrentAppendsGroupCommit(t *testing.T) {
	var mu sync.Mutex
	syncs, synced := 0, 0
	w, err := wal.Open(t.TempDir(), wal.Options{OnSync: func(_ time.Duration, n, _ int) {
		mu.Lock()
		syncs++
		synced += n
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, w)
	const writers, each = 32, 50
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := w.Append(context.Background(), rec(g*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, _ := readAll(t, w, false)
	if len(got) != writers*each || synced != writers*each {
		t.Fatalf("read %d, synced %d records; want %d", len(got), synced, writers*each)
	}
	// Group commit: concurrent appends share fsyncs.
	if syncs >= writers*each {
		t.Fatalf("%d fsyncs for %d concurrent appends: no group commit", syncs, writers*each)
	}
	t.Logf("%d appends in %d fsyncs", writers*each, syncs)
}

func TestAppendAfterCloseFails(t *testing.T) {
	w := openWAL(t, t.TempDir(), 0)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(context.Background(), []byte("x")); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	w2 := openWAL(t, t.TempDir(), 0)
	defer mustClose(t, w2)
	if _, err := w2.Append(context.Background(), nil); !errors.Is(err, wal.ErrTooLarge) {
		t.Fatalf("empty record: %v, want ErrTooLarge", err)
	}
}

func TestCommit(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir, 1024)
	appendN(t, w, 0, 100)
	r := w.NewReader(w.Committed())
	var mid wal.Position
	for range 60 {
		_, pos, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		mid = pos
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(mid); err != nil {
		t.Fatal(err)
	}
	if got := w.Committed(); got != mid {
		t.Fatalf("Committed = %s, want %s", got, mid)
	}
	if _, segs := w.Size(); segs >= 5 {
		t.Fatalf("%d segments left after committing record 60 of 100: nothing trimmed", segs)
	}
	if err := w.Commit(wal.Position{Segment: 999, Offset: 8}); err == nil {
		t.Fatal("Commit beyond the synced end succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The checkpoint survives a reopen and a reader resumes after record 59.
	w = openWAL(t, dir, 1024)
	defer mustClose(t, w)
	if got := w.Committed(); got != mid {
		t.Fatalf("after reopen Committed = %s, want %s", got, mid)
	}
	r = w.NewReader(w.Committed())
	defer mustClose(t, r)
	b, _, err := r.Next()
	if err != nil || string(b) != string(rec(60)) {
		t.Fatalf("first record after the checkpoint = %q, %v; want %q", b, err, rec(60))
	}
	if n := w.CheckpointResets(); n != 0 {
		t.Fatalf("CheckpointResets = %d on a valid checkpoint", n)
	}
}

// TestCheckpointValidation (issue 15, defect 1): an invalid checkpoint is
// detected on open, counted, and the spool replays from its oldest record.
func TestCheckpointValidation(t *testing.T) {
	cases := []struct {
		name string
		// checkpoint returns the file's content given the segment files
		// (oldest first) and the end of the last record.
		checkpoint func(t *testing.T, segs []string, end wal.Position) string
		// survive is how many of the 40 records are readable from Committed.
		survive int
		resets  int64
	}{
		{"Valid", func(t *testing.T, segs []string, end wal.Position) string { return end.String() }, 0, 0},
		{"Missing", func(t *testing.T, segs []string, end wal.Position) string { return "" }, 40, 0},
		{"PastEndSegment", func(t *testing.T, segs []string, end wal.Position) string {
			return fmt.Sprintf("%d:8", end.Segment+3)
		}, 40, 1},
		{"PastEndOffset", func(t *testing.T, segs []string, end wal.Position) string {
			return fmt.Sprintf("%d:%d", end.Segment, end.Offset+100)
		}, 40, 1},
		{"CorruptedDigit", func(t *testing.T, segs []string, end wal.Position) string {
			return fmt.Sprintf("%d:%d9", end.Segment, end.Offset)
		}, 40, 1},
		{"NotARecordBoundary", func(t *testing.T, segs []string, end wal.Position) string {
			return fmt.Sprintf("%d:%d", end.Segment, end.Offset-3)
		}, 40, 1},
		{"InsideHeader", func(t *testing.T, segs []string, end wal.Position) string { return "1:3" }, 40, 1},
		{"Malformed", func(t *testing.T, segs []string, end wal.Position) string { return "1-8" }, 40, 1},
		{"MissingSegment", func(t *testing.T, segs []string, end wal.Position) string {
			if err := os.Remove(segs[1]); err != nil {
				t.Fatal(err)
			}
			return "2:8"
		}, -1, 1},
		{"DrainedSegmentsDeleted", func(t *testing.T, segs []string, end wal.Position) string {
			// The operator deleted the drained segment files but the
			// checkpoint stayed; new records were then written.
			return fmt.Sprintf("%d:8", end.Segment+1)
		}, 40, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openWAL(t, dir, 600)
			appendN(t, w, 0, 40)
			end := w.Synced()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			segs := segments(t, dir)
			perSeg := countPerSegment(t, segs)
			content := tc.checkpoint(t, segs, end)
			if tc.name != "Missing" {
				if err := os.WriteFile(filepath.Join(dir, "checkpoint"), []byte(content+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w = openWAL(t, dir, 600)
			defer mustClose(t, w)
			r := w.NewReader(w.Committed())
			defer mustClose(t, r)
			n := 0
			for {
				_, _, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				var ce *wal.CorruptionError
				if errors.As(err, &ce) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			want := tc.survive
			if want < 0 {
				want = 40 - perSeg[1]
			}
			if n != want {
				t.Fatalf("%d records readable from Committed %s, want %d", n, w.Committed(), want)
			}
			if got := w.CheckpointResets(); got != tc.resets {
				t.Fatalf("CheckpointResets = %d, want %d", got, tc.resets)
			}
		})
	}
}

// segments returns the segment files in dir, oldest first.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// recInfo locates record i of a test spool: its segment file (0 = oldest)
// and byte range.
type recInfo struct {
	file       int
	start, end int64
}

// TestCorruption damages a closed spool in different ways and checks exactly
// which records survive a reopen, how the loss is reported, and that bytes
// cut from the newest segment are kept in "<segment>.broken". The reader
// resynchronises after damage, so only damaged records are lost.
func TestCorruption(t *testing.T) {
	type damageFunc func(t *testing.T, segs []string, lay []recInfo) (lost []int)
	// newestMid returns a record in the middle of the newest segment.
	newestMid := func(t *testing.T, segs []string, lay []recInfo) int {
		for i, r := range lay {
			if r.file == len(segs)-1 {
				if i+3 >= len(lay) {
					t.Fatal("the newest segment holds too few records for this case")
				}
				return i + 1
			}
		}
		t.Fatal("no record in the newest segment")
		return 0
	}
	lastOf := func(lay []recInfo, file int) int {
		k := -1
		for i, r := range lay {
			if r.file == file {
				k = i
			}
		}
		return k
	}
	flip := func(t *testing.T, path string, off int64) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[off] ^= 0x10
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		damage damageFunc
		// corruptErrs is how many corruption errors the reader reports, and
		// reported the sum of their Records.
		corruptErrs, reported int
		// broken: bytes are cut from the newest segment and kept aside.
		broken bool
	}{
		{"TornLastRecord", func(t *testing.T, segs []string, lay []recInfo) []int {
			truncateBy(t, segs[len(segs)-1], 5)
			return []int{len(lay) - 1}
		}, 0, 0, true},
		{"TornFrameHeader", func(t *testing.T, segs []string, lay []recInfo) []int {
			appendBytes(t, segs[len(segs)-1], []byte{1, 2, 3})
			return nil
		}, 0, 0, true},
		{"ZeroFilledTail", func(t *testing.T, segs []string, lay []recInfo) []int {
			appendBytes(t, segs[len(segs)-1], make([]byte, 4096))
			return nil
		}, 0, 0, true},
		{"BadChecksumAtEndOfNewestSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			flipLastByte(t, segs[len(segs)-1])
			return []int{len(lay) - 1} // indistinguishable from a torn tail
		}, 0, 0, true},
		{"FlipInNewestSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			k := newestMid(t, segs, lay)
			flip(t, segs[lay[k].file], lay[k].start+10)
			return []int{k}
		}, 1, 1, false},
		{"BadLengthInNewestSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			k := newestMid(t, segs, lay)
			writeAt(t, segs[lay[k].file], lay[k].start, []byte{0xff, 0xff, 0xff, 0x7f})
			return []int{k}
		}, 1, 1, false},
		{"ZeroedBlockInNewestSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			k := newestMid(t, segs, lay)
			writeAt(t, segs[lay[k].file], lay[k].start+4, make([]byte, lay[k+1].end-2-lay[k].start-4))
			return []int{k, k + 1}
		}, 1, 1, false}, // one damaged region: at least one record (two in fact)
		{"BadMagicInNewestSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			writeAt(t, segs[len(segs)-1], 0, []byte("XXXXXX"))
			return nil
		}, 1, 0, false},
		{"BadChecksumInOlderSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			flipLastByte(t, segs[0])
			return []int{lastOf(lay, 0)}
		}, 1, 1, false},
		{"FlipInOlderSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			flip(t, segs[0], lay[3].start+9)
			return []int{3}
		}, 1, 1, false},
		{"BadLengthInOlderSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			// The first record's length field.
			writeAt(t, segs[0], 8, []byte{0xff, 0xff, 0xff, 0x7f})
			return []int{0}
		}, 1, 1, false},
		{"ZeroedBlockInOlderSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			writeAt(t, segs[0], lay[5].start+4, make([]byte, lay[6].end-2-lay[5].start-4))
			return []int{5, 6}
		}, 1, 1, false},
		{"TruncatedOlderSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			truncateBy(t, segs[0], 3)
			return []int{lastOf(lay, 0)}
		}, 1, 1, false},
		{"MissingSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			if err := os.Remove(segs[1]); err != nil {
				t.Fatal(err)
			}
			var lost []int
			for i, r := range lay {
				if r.file == 1 {
					lost = append(lost, i)
				}
			}
			return lost
		}, 1, 0, false}, // how many a missing file held is unknown
		{"BadMagicInOlderSegment", func(t *testing.T, segs []string, lay []recInfo) []int {
			writeAt(t, segs[0], 0, []byte("XXXXXX"))
			return nil // a bad header costs no record
		}, 1, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openWAL(t, dir, 600)
			var lay []recInfo
			var all []string
			prev := wal.Position{}
			for i := range 40 {
				pos, err := w.Append(context.Background(), rec(i))
				if err != nil {
					t.Fatal(err)
				}
				start := prev.Offset
				if pos.Segment != prev.Segment {
					start = 8
				}
				lay = append(lay, recInfo{file: pos.Segment - 1, start: start, end: pos.Offset})
				all = append(all, string(rec(i)))
				prev = pos
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			segs := segments(t, dir)
			// Drop the empty trailing segment so the last one holds records.
			last := segs[len(segs)-1]
			if fi, _ := os.Stat(last); fi.Size() == 8 {
				if err := os.Remove(last); err != nil {
					t.Fatal(err)
				}
				segs = segs[:len(segs)-1]
			}
			lost := tc.damage(t, segs, lay)
			var want []string
			for i, r := range all {
				if !slices.Contains(lost, i) {
					want = append(want, r)
				}
			}
			w, err := wal.Open(dir, wal.Options{SegmentSize: 600})
			if err != nil {
				t.Fatalf("Open after damage must succeed: %v", err)
			}
			defer mustClose(t, w)
			got, errs := readAll(t, w, true)
			if !slices.Equal(got, want) {
				t.Fatalf("%d records survive, want %d (lost %v); errs %v\ngot  %q\nwant %q", len(got), len(want), lost, errs, got, want)
			}
			if len(errs) != tc.corruptErrs {
				t.Fatalf("%d corruption errors (%v), want %d", len(errs), errs, tc.corruptErrs)
			}
			reported := 0
			for _, err := range errs {
				var ce *wal.CorruptionError
				errors.As(err, &ce)
				reported += ce.Records
			}
			if reported != tc.reported {
				t.Fatalf("corruption errors report %d records lost, want %d (%+v)", reported, tc.reported, errs)
			}
			_, berr := os.Stat(segs[len(segs)-1] + ".broken")
			if tc.broken != (berr == nil) {
				t.Fatalf("torn tail copy exists = %v, want %v", berr == nil, tc.broken)
			}
			// The spool stays writable after repair.
			if _, err := w.Append(context.Background(), []byte("after")); err != nil {
				t.Fatalf("append after repair: %v", err)
			}
		})
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, f)
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func countPerSegment(t *testing.T, segs []string) []int {
	t.Helper()
	out := make([]int, len(segs))
	for i, s := range segs {
		tmp := t.TempDir()
		b, _ := os.ReadFile(s)
		if err := os.WriteFile(filepath.Join(tmp, filepath.Base(s)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		w := openWAL(t, tmp, 600)
		got, _ := readAll(t, w, false)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		out[i] = len(got)
	}
	return out
}

func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-n); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func flipLastByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReaderFollowsAppends: a reader that has caught up with the active
// segment reads the records appended after that.
func TestReaderFollowsAppends(t *testing.T) {
	w := openWAL(t, t.TempDir(), 0)
	defer mustClose(t, w)
	r := w.NewReader(w.Committed())
	defer mustClose(t, r)
	for i := range 3 {
		if _, err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
		b, _, err := r.Next()
		if err != nil || string(b) != string(rec(i)) {
			t.Fatalf("record %d: %q, %v", i, b, err)
		}
		if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("after record %d: %v, want io.EOF", i, err)
		}
	}
}
