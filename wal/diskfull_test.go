package wal_test

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/wal"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and
// unmounts it at cleanup. Where mounting is impossible (not root, no
// mount(8)) the test is skipped, but under CI=true it fails.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+itoa(size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := "cannot mount a small tmpfs for the disk-full test (needs root and mount(8)): " + err.Error() + " " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fillDisk writes a file in dir until the filesystem is full, and returns
// its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, f)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill disk: %v", err)
			}
			break
		}
	}
	// Fill the last partial block too.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// TestDiskFull fills the spool's filesystem, and checks that appends fail
// with an error naming the segment (not a temporary file), that the spool
// recovers by itself once space is back — without losing or damaging any
// acknowledged record — and that Close after a failure succeeds.
func TestDiskFull(t *testing.T) {
	ctx := t.Context()
	for _, tt := range []struct {
		name    string
		recover bool // free the space again before closing
	}{{"Recovers", true}, {"CloseWhileFailed", false}} {
		t.Run(tt.name, func(t *testing.T) {
			mnt := mountTmpfs(t, 4<<20)
			w, err := wal.Open(filepath.Join(mnt, "spool"), wal.Options{SegmentSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() { // before the unmount
				if !closed {
					_ = w.Close()
				}
			})
			want := appendN(t, w, 0, 20) //nolint:contextcheck // appendN appends with t.Context()
			filler := fillDisk(t, mnt)
			var failErr error
			big := make([]byte, 128<<10)
			for i := 0; i < 100 && failErr == nil; i++ {
				_, failErr = w.Append(ctx, big)
				if failErr == nil {
					want = append(want, string(big))
				}
			}
			if failErr == nil {
				t.Fatal("appends to a full disk kept succeeding")
			}
			if !errors.Is(failErr, syscall.ENOSPC) {
				t.Errorf("append error %v, want ENOSPC", failErr)
			}
			if strings.Contains(failErr.Error(), ".tmp") || !strings.Contains(failErr.Error(), ".seg") {
				t.Errorf("append error %q should name the segment file, not a temporary file", failErr)
			}
			if w.Err() == nil {
				t.Error("Err() is nil after a failed append")
			}
			// A reader following the spool reads up to the failure (its
			// buffer may take in the unacknowledged bytes after it).
			live := w.NewReader(wal.Position{})
			defer mustClose(t, live)
			liveGot := follow(t, live, nil)
			if !tt.recover {
				closed = true
				if err := w.Close(); err != nil {
					t.Errorf("Close after a spool failure: %v, want nil (nothing acknowledged is lost)", err)
				}
				return
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			// Poll: the spool retries on the next append and in the
			// background, at most every second.
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := w.Append(ctx, rec(1000))
				if err == nil {
					want = append(want, string(rec(1000)))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("spool did not recover after space came back: %v", err)
				}
				time.Sleep(50 * time.Millisecond) // poll interval, not a wait for an event
			}
			if err := w.Err(); err != nil {
				t.Errorf("Err() = %v after recovery, want nil", err)
			}
			want = append(want, appendN(t, w, 1001, 5)...) //nolint:contextcheck // appendN appends with t.Context()
			if liveGot = follow(t, live, liveGot); !slices.Equal(liveGot, want) {
				t.Errorf("a reader open across the failure read %d records, want %d", len(liveGot), len(want))
			}
			got, errs := readAll(t, w, true)
			if len(errs) > 0 {
				t.Errorf("reading after recovery reported damage: %v", errs)
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %d records after recovery, want %d (every acknowledged record, in order)", len(got), len(want))
			}
			closed = true
			if err := w.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			// Reopen: the abandoned segment and the fresh one read cleanly.
			w2 := openWAL(t, filepath.Join(mnt, "spool"), 1<<20)
			defer mustClose(t, w2)
			got, errs = readAll(t, w2, true)
			if len(errs) > 0 || !slices.Equal(got, want) {
				t.Errorf("after reopen: %d records (want %d), damage %v", len(got), len(want), errs)
			}
		})
	}
}

// follow reads r to its current end, appending the records to got; any
// damage reported fails the test.
func follow(t *testing.T, r *wal.Reader, got []string) []string {
	t.Helper()
	for {
		b, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Errorf("reader: %v", err)
			continue
		}
		got = append(got, string(b))
	}
}
