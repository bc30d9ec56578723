package wal_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-dev/cairn/wal"
)

// backupTo copies w's backup into dir, file by file, and returns the names.
func backupTo(t *testing.T, w *wal.WAL, dir string) []string {
	t.Helper()
	var names []string
	err := w.Backup(func(name string, size int64, r io.Reader) error {
		names = append(names, name)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		n, err := io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n != size {
			t.Errorf("%s: copied %d bytes, announced %d", name, n, size)
		}
		return err
	})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return names
}

// readFrom returns the records from w's committed position on.
func readFrom(t *testing.T, w *wal.WAL) []string {
	t.Helper()
	r := w.NewReader(w.Committed())
	defer mustClose(t, r)
	var out []string
	for {
		b, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, string(b))
	}
}

func TestBackup(t *testing.T) {
	for _, tc := range []struct {
		name      string
		committed int // records committed before the backup
	}{
		{"NothingCommitted", 0},
		{"PartCommitted", 70},
		{"AllCommitted", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := openWAL(t, t.TempDir(), 1024)
			defer mustClose(t, w)
			want := appendN(t, w, 0, 100)
			if tc.committed > 0 {
				r := w.NewReader(wal.Position{})
				var pos wal.Position
				for range tc.committed {
					_, p, err := r.Next()
					if err != nil {
						t.Fatal(err)
					}
					pos = p
				}
				mustClose(t, r)
				if err := w.Commit(pos); err != nil {
					t.Fatal(err)
				}
			}
			out := t.TempDir()
			names := backupTo(t, w, out)
			if len(names) == 0 || names[0] != "checkpoint" {
				t.Fatalf("backup files %v: want the checkpoint first", names)
			}
			if !slices.IsSorted(names[1:]) {
				t.Errorf("segments %v not oldest first", names[1:])
			}
			c := openWAL(t, out, 1024)
			defer mustClose(t, c)
			if got := readFrom(t, c); !slices.Equal(got, want[tc.committed:]) {
				t.Errorf("the copy replays %d records, want %d (records %d..99)", len(got), len(want)-tc.committed, tc.committed)
			}
			if n := c.CheckpointResets(); n != 0 {
				t.Errorf("the copy's checkpoint was discarded (%d resets)", n)
			}
		})
	}
}

// TestBackupWhileAppending checks that a backup taken during appends and
// commits holds every record synced (and not committed) before it began,
// and only whole records.
func TestBackupWhileAppending(t *testing.T) {
	w := openWAL(t, t.TempDir(), 4096)
	defer mustClose(t, w)
	before := appendN(t, w, 0, 200)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // appends and commits behind the backup's back
		defer wg.Done()
		r := w.NewReader(wal.Position{})
		defer mustClose(t, r)
		read := 0
		for i := 200; !stop.Load() && i < 5000; i++ {
			if _, err := w.Append(context.Background(), rec(i)); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
			if i%50 == 0 && read < 150 {
				// Commit up to the first 150 records: the rest must stay.
				for range 10 {
					_, p, err := r.Next()
					if err != nil {
						break
					}
					read++
					if err := w.Commit(p); err != nil {
						t.Errorf("Commit: %v", err)
						return
					}
				}
			}
		}
	}()
	out := t.TempDir()
	backupTo(t, w, out)
	stop.Store(true)
	wg.Wait()

	c := openWAL(t, out, 4096)
	defer mustClose(t, c)
	got := readFrom(t, c)
	// got must be a run of consecutive records starting at or before
	// record 150 and reaching at least record 199.
	idx := slices.Index(before, got[0])
	if idx < 0 || idx > 150 {
		t.Fatalf("the copy starts at %q", got[0])
	}
	for i, s := range got {
		if s != string(rec(idx+i)) {
			t.Fatalf("record %d of the copy is %q, want %q", i, s, rec(idx+i))
		}
	}
	if len(got)+idx < len(before) {
		t.Errorf("the copy ends at record %d, before the last record synced before the backup (199)", len(got)+idx-1)
	}
}

func TestBackupClosed(t *testing.T) {
	w := openWAL(t, t.TempDir(), 1024)
	mustClose(t, w)
	if err := w.Backup(func(string, int64, io.Reader) error { return nil }); !errors.Is(err, wal.ErrClosed) {
		t.Errorf("Backup after Close: %v, want ErrClosed", err)
	}
}
