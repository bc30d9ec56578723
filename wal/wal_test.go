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

func rec(i int) []byte {
	return []byte(fmt.Sprintf("record-%04d-%s", i, bytes.Repeat([]byte{'x'}, i%50)))
}

// readAll returns every record readable from the start, stopping at the
// first corruption error (returned) unless skip is set.
func readAll(t *testing.T, w *wal.WAL, skip bool) ([]string, []error) {
	t.Helper()
	r := w.NewReader(wal.Position{})
	defer r.Close()
	var out []string
	var errs []error
	for {
		b, _, err := r.Next()
		if err == io.EOF {
			return out, errs
		}
		var ce *wal.CorruptionError
		if errors.As(err, &ce) {
			errs = append(errs, err)
			if !skip {
				return out, errs
			}
			r.SkipSegment()
			continue
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
		if _, err := w.Append(context.Background(), rec(i)); err != nil {
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
	defer w.Close()
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
	defer w.Close()
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
	w.Close()
	if _, err := w.Append(context.Background(), []byte("x")); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	w2 := openWAL(t, t.TempDir(), 0)
	defer w2.Close()
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
	r.Close()
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
	w.Close()
	// The checkpoint survives a reopen and a reader resumes after record 59.
	w = openWAL(t, dir, 1024)
	defer w.Close()
	if got := w.Committed(); got != mid {
		t.Fatalf("after reopen Committed = %s, want %s", got, mid)
	}
	r = w.NewReader(w.Committed())
	defer r.Close()
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
			w.Close()
			segs := segments(t, dir)
			perSeg := countPerSegment(t, dir, segs)
			content := tc.checkpoint(t, segs, end)
			if tc.name != "Missing" {
				if err := os.WriteFile(filepath.Join(dir, "checkpoint"), []byte(content+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w = openWAL(t, dir, 600)
			defer w.Close()
			r := w.NewReader(w.Committed())
			defer r.Close()
			n := 0
			for {
				_, _, err := r.Next()
				if err == io.EOF {
					break
				}
				var ce *wal.CorruptionError
				if errors.As(err, &ce) {
					r.SkipSegment()
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

// TestCorruption damages a closed spool in different ways and checks which
// records survive a reopen.
func TestCorruption(t *testing.T) {
	cases := []struct {
		name string
		// damage changes the files; segs are the segment paths, oldest first.
		damage func(t *testing.T, segs []string)
		// survive is the number of records readable (skipping damaged segments).
		survive func(perSeg []int) int
		// corruptErrs is how many corruption errors the reader reports.
		corruptErrs int
	}{
		{"TornLastRecord", func(t *testing.T, segs []string) {
			truncateBy(t, segs[len(segs)-1], 5)
		}, func(p []int) int { return sum(p) - 1 }, 0},
		{"TornFrameHeader", func(t *testing.T, segs []string) {
			last := segs[len(segs)-1]
			fi, _ := os.Stat(last)
			appendBytes(t, last, []byte{1, 2, 3})
			_ = fi
		}, func(p []int) int { return sum(p) }, 0},
		{"ZeroFilledTail", func(t *testing.T, segs []string) {
			appendBytes(t, segs[len(segs)-1], make([]byte, 4096))
		}, func(p []int) int { return sum(p) }, 0},
		{"BadChecksumInLastSegment", func(t *testing.T, segs []string) {
			flipLastByte(t, segs[len(segs)-1])
		}, func(p []int) int { return sum(p) - 1 }, 0},
		{"BadChecksumInOlderSegment", func(t *testing.T, segs []string) {
			flipLastByte(t, segs[0])
		}, func(p []int) int { return sum(p) - 1 }, 1},
		{"BadLengthInOlderSegment", func(t *testing.T, segs []string) {
			f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// The first record's length field.
			f.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f}, 8)
		}, func(p []int) int { return sum(p) - p[0] }, 1},
		{"TruncatedOlderSegment", func(t *testing.T, segs []string) {
			truncateBy(t, segs[0], 3)
		}, func(p []int) int { return sum(p) - 1 }, 1},
		{"MissingSegment", func(t *testing.T, segs []string) {
			if err := os.Remove(segs[1]); err != nil {
				t.Fatal(err)
			}
		}, func(p []int) int { return sum(p) - p[1] }, 1},
		{"BadMagic", func(t *testing.T, segs []string) {
			f, _ := os.OpenFile(segs[0], os.O_RDWR, 0)
			f.WriteAt([]byte("XXXXXX"), 0)
			f.Close()
		}, func(p []int) int { return sum(p) - p[0] }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openWAL(t, dir, 600)
			appendN(t, w, 0, 40)
			w.Close()
			segs := segments(t, dir)
			// Drop the empty trailing segment so the last one holds records.
			last := segs[len(segs)-1]
			if fi, _ := os.Stat(last); fi.Size() == 8 {
				os.Remove(last)
				segs = segs[:len(segs)-1]
			}
			perSeg := countPerSegment(t, dir, segs)
			tc.damage(t, segs)
			w, err := wal.Open(dir, wal.Options{SegmentSize: 600})
			if err != nil {
				t.Fatalf("Open after damage must succeed: %v", err)
			}
			defer w.Close()
			got, errs := readAll(t, w, true)
			if want := tc.survive(perSeg); len(got) != want {
				t.Fatalf("%d records survive, want %d (per segment %v, errs %v)", len(got), want, perSeg, errs)
			}
			if len(errs) != tc.corruptErrs {
				t.Fatalf("%d corruption errors (%v), want %d", len(errs), errs, tc.corruptErrs)
			}
			// Survivors are intact and in order.
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("records out of order: %q after %q", got[i], got[i-1])
				}
			}
			// The spool stays writable after repair.
			if _, err := w.Append(context.Background(), []byte("after")); err != nil {
				t.Fatalf("append after repair: %v", err)
			}
		})
	}
}

func countPerSegment(t *testing.T, dir string, segs []string) []int {
	t.Helper()
	out := make([]int, len(segs))
	for i, s := range segs {
		tmp := t.TempDir()
		b, _ := os.ReadFile(s)
		os.WriteFile(filepath.Join(tmp, filepath.Base(s)), b, 0o644)
		w := openWAL(t, tmp, 600)
		got, _ := readAll(t, w, false)
		w.Close()
		out[i] = len(got)
	}
	return out
}

func sum(p []int) int {
	n := 0
	for _, v := range p {
		n += v
	}
	return n
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
	f.Write(b)
	f.Close()
}

func flipLastByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	os.WriteFile(path, b, 0o644)
}
