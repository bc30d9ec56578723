package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on dir (created if needed),
// unmounted at cleanup (after the processes the test starts later are
// stopped). Where mounting is impossible (not root, no mount(8)) the test
// is skipped, but under CI=true it fails.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", dir).CombinedOutput()
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
}

// fillDisk writes the file path until its filesystem is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() //nolint:errcheck // the filler file only takes space; a failed close changes nothing
	chunk := make([]byte, 256<<10)
	for _, n := range []int{256 << 10, 4096, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill disk: %v", err)
				}
				break
			}
		}
	}
}

// TestE2EDiskFull runs the binary with its spool on a 64 MiB volume: the
// disk fills, ingest answers 503 (logged once, not per request) and /health
// is degraded; once space is back ingest recovers by itself; SIGTERM while
// the disk is full exits 0; and every acknowledged event is stored after a
// restart. Only the spool is on the small volume: the embedded store
// (Pebble) treats a failed write of its own WAL as fatal, so filling the
// store's volume from outside can crash the process whatever the spool
// does (see docs/operations.md, "Disk full").
func TestE2EDiskFull(t *testing.T) {
	dataDir := t.TempDir()
	spool := filepath.Join(dataDir, "spool")
	mountTmpfs(t, spool, 64<<20)
	filler := filepath.Join(spool, "filler")
	p := startCairn(t, dataDir, "CAIRN_FLUSH_INTERVAL=50ms", "CAIRN_DRAIN_TIMEOUT=2s", "CAIRN_LOG_LEVEL=info")
	var acked []string
	n := 0
	post := func() (int, http.Header) {
		var batch []string
		var ids []string
		for range 20 {
			n++
			id := fmt.Sprintf("df-%05d", n)
			ids = append(ids, id)
			batch = append(batch, fmt.Sprintf(`{"eventId":%q,"userId":"df","sessionId":"s","type":"page_view","payload":{"pad":%q}}`, id, strings.Repeat("p", 200)))
		}
		status, h, b := p.do("POST", "/events", []byte("["+strings.Join(batch, ",")+"]"))
		switch status {
		case http.StatusAccepted:
			acked = append(acked, ids...)
		case http.StatusServiceUnavailable:
			if h.Get("Retry-After") == "" || decode[errorBody](t, b).Code != "unavailable" {
				t.Fatalf("503 without Retry-After or code unavailable: %v %s", h, b)
			}
		default:
			t.Fatalf("POST /events: %d %s", status, b)
		}
		return status, h
	}
	// untilRefused posts until ingest is refused.
	untilRefused := func() {
		t.Helper()
		for range 5000 {
			if status, _ := post(); status == http.StatusServiceUnavailable {
				return
			}
		}
		t.Fatal("ingest still accepted on a full disk")
	}
	for range 20 {
		if status, _ := post(); status != http.StatusAccepted {
			t.Fatalf("ingest refused with the disk not full")
		}
	}
	fillDisk(t, filler)
	untilRefused()
	for range 300 {
		if status, _ := post(); status != http.StatusServiceUnavailable {
			t.Fatal("ingest accepted again while the disk is still full")
		}
	}
	if status, _, b := p.do("GET", "/health", nil); status != http.StatusServiceUnavailable {
		t.Errorf("/health while the spool fails: %d %s, want 503 degraded", status, b)
	}
	if warns := strings.Count(p.Logs(), `"msg":"request refused: unavailable"`); warns > 3 {
		t.Errorf("%d WARN lines for ~300 refused requests, want them rate-limited", warns)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitFor(t, 15*time.Second, "ingest to recover after space came back", func() bool {
		status, _ := post()
		return status == http.StatusAccepted
	})
	t.Logf("ingest recovered %v after space came back", time.Since(freed).Round(time.Millisecond))
	waitFor(t, 15*time.Second, "/health ok again", func() bool {
		status, _, _ := p.do("GET", "/health", nil)
		return status == http.StatusOK
	})

	// Full again, then SIGTERM during the failure: exit 0 (Stop checks).
	fillDisk(t, filler)
	untilRefused()
	p.Stop()

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p.restart()
	p.login()
	p.waitDrained()
	got := p.journeyIDs("df", 1000)
	slices.Sort(got)
	for _, id := range acked {
		if _, found := slices.BinarySearch(got, id); !found {
			t.Errorf("acknowledged event %s is not stored", id)
		}
	}
	if len(got) != len(slices.Compact(slices.Clone(got))) {
		t.Errorf("duplicates among %d stored events", len(got))
	}
	t.Logf("%d events acknowledged, %d stored", len(acked), len(got))
	p.Stop()
}
