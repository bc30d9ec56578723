package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/mongo/mongotest"
)

// signUpToken signs up an account on p with its own cookie jar (the first
// account is the admin) and returns its bearer token.
func (p *proc) signUpToken(email string) string {
	p.t.Helper()
	status, b := p.newAccount().do("POST", "/api/auth/sign-up/email", `{"name":"Backup","email":"`+email+`","password":"correct-horse-9"}`)
	if status != http.StatusOK {
		p.t.Fatalf("sign-up: %d %s", status, b)
	}
	return decode[struct {
		Token string `json:"token"`
	}](p.t, b).Token
}

// ingester posts batches of events with ids until stopped, recording every
// acknowledged id in order.
type ingester struct {
	mu    sync.Mutex
	acked []string
	sent  map[string]bool
	stop  atomic.Bool
	done  chan struct{}
	fails atomic.Int64
}

func startIngest(url string, users int) *ingester {
	in := &ingester{sent: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		client := &http.Client{Timeout: 30 * time.Second}
		for i := 0; !in.stop.Load(); i++ {
			var body bytes.Buffer
			var ids []string
			body.WriteByte('[')
			for j := range 20 {
				id := fmt.Sprintf("bk-%d-%d", i, j)
				ids = append(ids, id)
				if j > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"eventId":%q,"userId":"bu-%d","sessionId":"s","type":"page_view","payload":{"i":%d}}`, id, (i*20+j)%users, i)
			}
			body.WriteByte(']')
			in.mu.Lock()
			for _, id := range ids {
				in.sent[id] = true
			}
			in.mu.Unlock()
			resp, err := client.Post(url+"/events", "application/json", &body)
			if err != nil {
				in.fails.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body) // load loop: only the status matters
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				in.fails.Add(1)
				continue
			}
			in.mu.Lock()
			in.acked = append(in.acked, ids...)
			in.mu.Unlock()
		}
	}()
	return in
}

func (in *ingester) ackedSoFar() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.acked...)
}

func (in *ingester) finish() {
	in.stop.Store(true)
	<-in.done
}

// TestE2EBackupWhileIngestingAndRestore backs up a running Cairn while
// events stream in, restores the backup into a fresh data dir, starts Cairn
// on it, and checks that every event acknowledged before the backup began
// is there exactly once, and nothing is doubled.
func TestE2EBackupWhileIngestingAndRestore(t *testing.T) {
	const users = 7
	p := startMain(t, "", "CAIRN_FLUSH_INTERVAL=20ms", "CAIRN_FLUSH_SIZE=100", "CAIRN_SPOOL_SEGMENT_SIZE=65536")
	token := p.signUpToken("admin@example.com")
	in := startIngest(p.URL, users)
	t.Cleanup(in.finish)
	waitFor(t, 60*time.Second, "2000 acknowledged events", func() bool { return len(in.ackedSoFar()) >= 2000 })

	before := in.ackedSoFar()
	out := filepath.Join(t.TempDir(), "backup")
	code, output := runCairn(t, "", nil, "backup", "--url", p.URL, "--out", out, "--token", token)
	if code != 0 {
		t.Fatalf("cairn backup: exit %d: %s", code, output)
	}
	// Ingest goes on after the backup; those events may or may not be in it.
	n := len(in.ackedSoFar())
	waitFor(t, 60*time.Second, "more events after the backup", func() bool { return len(in.ackedSoFar()) >= n+200 })
	in.finish()
	if in.fails.Load() > 0 {
		t.Errorf("%d ingest requests failed during the backup", in.fails.Load())
	}
	for _, f := range []string{"backup.json", "spool/checkpoint", "store/MANIFEST-*", secretFile} {
		if m, _ := filepath.Glob(filepath.Join(out, f)); len(m) == 0 {
			t.Errorf("the backup has no %s", f)
		}
	}
	// Restore refuses to touch the data of a running server, even with --force.
	if code, output := runCairn(t, "", nil, "restore", "--from", out, "--data-dir", p.DataDir, "--force"); code == 0 || !strings.Contains(output, "stop the server first") {
		t.Errorf("restore into a running server's data dir: exit %d: %s", code, output)
	}
	p.Stop()

	// A backup directory that is not empty is refused.
	if code, output := runCairn(t, "", nil, "backup", "--url", p.URL, "--out", out, "--token", token); code == 0 || !strings.Contains(output, "not empty") {
		t.Errorf("backup into a non-empty dir: exit %d: %s", code, output)
	}

	fresh := t.TempDir()
	code, output = runCairn(t, "", nil, "restore", "--from", out, "--data-dir", fresh)
	if code != 0 {
		t.Fatalf("cairn restore: exit %d: %s", code, output)
	}
	// Restoring again over the restored data needs --force.
	if code, output := runCairn(t, "", nil, "restore", "--from", out, "--data-dir", fresh); code == 0 || !strings.Contains(output, "--force") {
		t.Errorf("restore into a non-empty dir: exit %d: %s", code, output)
	}
	if code, output := runCairn(t, "", nil, "restore", "--from", out, "--data-dir", fresh, "--force"); code != 0 {
		t.Errorf("restore --force: exit %d: %s", code, output)
	}

	q := startMain(t, fresh, "CAIRN_FLUSH_INTERVAL=20ms")
	q.waitDrained()
	// The restored sessions and secret still accept the admin's token.
	auth := []string{"Authorization", "Bearer " + token}
	seen := map[string]int{}
	for u := range users {
		path := fmt.Sprintf("/users/bu-%d/journey?limit=1000", u)
		for {
			status, _, b := q.do("GET", path, nil, auth...)
			if status != http.StatusOK {
				t.Fatalf("journey: %d %s", status, b)
			}
			j := decode[journeyBody](t, b)
			for _, e := range j.Events {
				seen[e.EventID]++
			}
			if j.NextCursor == nil {
				break
			}
			path = fmt.Sprintf("/users/bu-%d/journey?limit=1000&cursor=%s", u, *j.NextCursor)
		}
	}
	missing := 0
	for _, id := range before {
		if seen[id] != 1 {
			missing++
			if missing <= 5 {
				t.Errorf("event %s acknowledged before the backup is there %d times, want once", id, seen[id])
			}
		}
	}
	for id, n := range seen {
		if n != 1 || !in.sent[id] {
			t.Errorf("event %s is there %d times (sent: %v)", id, n, in.sent[id])
		}
	}
	t.Logf("%d events acknowledged before the backup, %d restored, %d missing", len(before), len(seen), missing)
	if missing > 0 {
		t.Fatalf("%d of %d events acknowledged before the backup are missing or doubled", missing, len(before))
	}
	// The export of the restored server agrees with the journeys.
	status, hdr, b := q.do("GET", "/api/export", nil, auth...)
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s", status, hdr.Get("Content-Type"))
	}
	if lines := bytes.Count(b, []byte{'\n'}); lines != len(seen) {
		t.Errorf("export has %d lines, journeys %d events", lines, len(seen))
	}
}

// TestE2EBackupOfUnflushedEvents backs up a server whose events are still
// only in the spool (no flush yet): the restored server stores them from
// the spool copy.
func TestE2EBackupOfUnflushedEvents(t *testing.T) {
	p := startMain(t, "", "CAIRN_FLUSH_INTERVAL=1h", "CAIRN_FLUSH_SIZE=100000")
	token := p.signUpToken("admin@example.com")
	body := `[{"eventId":"sp1","userId":"su","sessionId":"s","type":"search"},{"eventId":"sp2","userId":"su","sessionId":"s","type":"search"}]`
	if status, _, b := p.do("POST", "/events", []byte(body)); status != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", status, b)
	}
	if ids := p.journeyIDsAs("su", token); len(ids) != 0 {
		t.Fatalf("events stored before any flush: %v", ids)
	}
	out := filepath.Join(t.TempDir(), "backup")
	if code, output := runCairn(t, "", nil, "backup", "--url", p.URL, "--out", out, "--token", token); code != 0 {
		t.Fatalf("cairn backup: exit %d: %s", code, output)
	}
	fresh := t.TempDir()
	if code, output := runCairn(t, "", nil, "restore", "--from", out, "--data-dir", fresh); code != 0 {
		t.Fatalf("cairn restore: exit %d: %s", code, output)
	}
	q := startMain(t, fresh, "CAIRN_FLUSH_INTERVAL=20ms")
	q.waitDrained()
	if ids := q.journeyIDsAs("su", token); strings.Join(ids, ",") != "sp2,sp1" {
		t.Errorf("restored journey %v, want [sp2 sp1]", ids)
	}
}

// journeyIDsAs returns the event ids of a user's first journey page, read
// with a bearer token.
func (p *proc) journeyIDsAs(user, token string) []string {
	p.t.Helper()
	status, _, b := p.do("GET", "/users/"+user+"/journey?limit=1000", nil, "Authorization", "Bearer "+token)
	if status != http.StatusOK {
		p.t.Fatalf("journey: %d %s", status, b)
	}
	var ids []string
	for _, e := range decode[journeyBody](p.t, b).Events {
		ids = append(ids, e.EventID)
	}
	return ids
}

// TestE2EExportWhileRunning checks the online export on a running server:
// filters, gzip, admins only.
func TestE2EExportWhileRunning(t *testing.T) {
	p := startMain(t, "", "CAIRN_FLUSH_INTERVAL=20ms")
	admin := p.signUpToken("admin@example.com")
	member := p.signUpToken("member@example.com")
	body := `[{"eventId":"x1","userId":"ua","sessionId":"s","type":"search","occurredAt":"2025-12-01T10:00:00Z"},
	  {"eventId":"x2","userId":"ua","sessionId":"s","type":"purchase","occurredAt":"2025-12-02T10:00:00Z"},
	  {"eventId":"x3","userId":"ub","sessionId":"s","type":"purchase","occurredAt":"2025-12-03T10:00:00Z"}]`
	if status, _, b := p.do("POST", "/events", []byte(body)); status != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", status, b)
	}
	p.waitDrained()
	exportIDs := func(b []byte) string {
		var ids []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var e struct{ EventID string }
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("export line %q: %v", sc.Bytes(), err)
			}
			ids = append(ids, e.EventID)
		}
		return strings.Join(ids, ",")
	}
	for _, tc := range []struct{ query, want string }{
		{"", "x2,x1,x3"},
		{"?user=ua", "x2,x1"},
		{"?type=purchase", "x2,x3"},
		{"?from=2025-12-02&to=2025-12-03T10:00:00Z", "x2,x3"},
	} {
		status, _, b := p.do("GET", "/api/export"+tc.query, nil, "Authorization", "Bearer "+admin)
		if status != http.StatusOK || exportIDs(b) != tc.want {
			t.Errorf("GET /api/export%s: %d %q, want %q", tc.query, status, exportIDs(b), tc.want)
		}
	}
	// gzip when asked (the transport does not decompress what it did not ask for).
	req, _ := http.NewRequestWithContext(t.Context(), "GET", p.URL+"/api/export", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // response body: read errors are reported by the reads
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || exportIDs(plain) != "x2,x1,x3" {
		t.Errorf("gzip export: %q, %v", plain, err)
	}
	if status, _, b := p.do("GET", "/api/export", nil, "Authorization", "Bearer "+member); status != http.StatusForbidden {
		t.Errorf("a member's export: %d %s, want 403", status, b)
	}
	if status, _, b := p.do("POST", "/api/backup", nil, "Authorization", "Bearer "+member); status != http.StatusForbidden {
		t.Errorf("a member's backup: %d %s, want 403", status, b)
	}
}

// TestE2EBackupWithEmailSignIn signs in with --email and a password on
// stdin, and checks the archive's layout.
func TestE2EBackupWithEmailSignIn(t *testing.T) {
	p := startMain(t, "")
	p.signUpToken("admin@example.com")
	out := filepath.Join(t.TempDir(), "b")
	code, output := runCairn(t, "correct-horse-9\n", nil, "backup", "--url", p.URL, "--out", out, "--email", "admin@example.com")
	if code != 0 || !strings.Contains(output, "written to") {
		t.Fatalf("cairn backup --email: exit %d: %s", code, output)
	}
	if code, output := runCairn(t, "wrong-password\n", nil, "backup", "--url", p.URL, "--out", filepath.Join(t.TempDir(), "c"), "--email", "admin@example.com"); code != 1 || !strings.Contains(output, "sign in: 401") {
		t.Errorf("a wrong password: exit %d: %s", code, output)
	}
	if code, output := runCairn(t, "", nil, "backup", "--url", p.URL, "--out", filepath.Join(t.TempDir(), "d")); code != 2 {
		t.Errorf("no credentials: exit %d: %s, want 2", code, output)
	}
	names := map[string]bool{}
	entries, err := os.ReadDir(filepath.Join(out, "spool"))
	for _, e := range entries {
		names[filepath.Ext(e.Name())] = true
		names[e.Name()] = true
	}
	if err != nil || !names["checkpoint"] || !names[".seg"] {
		t.Errorf("spool copy: %v, %v; want the checkpoint and segments", entries, err)
	}
}

// TestUnpackBackupRefusesIncomplete checks that an archive cut before its
// backup.json is refused and leaves nothing behind.
func TestUnpackBackupRefusesIncomplete(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"spool/checkpoint", "store/MANIFEST-000001"} {
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 3, Mode: 0o644}))
		_, err := tw.Write([]byte("abc"))
		must(err)
	}
	must(tw.Flush())
	cut := buf.Len()
	m, _ := json.Marshal(backupManifest{Format: backupFormat, Files: 2})
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: backupManifestName, Size: int64(len(m)), Mode: 0o644}))
	_, err := tw.Write(m)
	must(err)
	must(tw.Close())

	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"Complete", buf.Bytes(), true},
		{"ErrNoManifest", buf.Bytes()[:cut], false},
		{"ErrCutInManifest", buf.Bytes()[:cut+520], false},
		{"ErrCutInFile", buf.Bytes()[:520], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			_, files, err := unpackBackup(bytes.NewReader(tc.data), dir)
			if tc.ok != (err == nil) {
				t.Fatalf("unpack: %v (files %d), want ok=%v", err, files, tc.ok)
			}
			_, statErr := os.Stat(dir)
			if tc.ok != (statErr == nil) {
				t.Errorf("the output dir exists=%v after ok=%v", statErr == nil, tc.ok)
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".out.partial-*"))
			if len(left) > 0 {
				t.Errorf("left behind %v", left)
			}
		})
	}
}

// TestE2EBackupMongoIs501 checks that with MongoDB the backup endpoint
// points at mongodump, and the online export still works.
func TestE2EBackupMongoIs501(t *testing.T) {
	srv := mongotest.Start(t)
	p := startMain(t, "", "MONGODB_URI="+srv.DatabaseURI(mongotest.DatabaseName(t)), "CAIRN_FLUSH_INTERVAL=50ms")
	token := p.signUpToken("admin@example.com")
	status, _, b := p.do("POST", "/api/backup", nil, "Authorization", "Bearer "+token)
	if e := decode[errorBody](t, b); status != http.StatusNotImplemented || e.Code != "not_implemented" || !strings.Contains(e.Error, "mongodump") {
		t.Errorf("backup with MongoDB: %d %s, want 501 pointing at mongodump", status, b)
	}
	if status, _, b := p.do("POST", "/events", []byte(`{"eventId":"m1","userId":"mu","sessionId":"s","type":"search"}`)); status != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", status, b)
	}
	p.waitDrained()
	if status, _, b := p.do("GET", "/api/export?user=mu", nil, "Authorization", "Bearer "+token); status != http.StatusOK || !bytes.Contains(b, []byte(`"eventId":"m1"`)) {
		t.Errorf("export with MongoDB: %d %s", status, b)
	}
}

// TestBackupRestoreCLI checks the flags and refusals of backup and restore
// that need no server.
func TestBackupRestoreCLI(t *testing.T) {
	notBackup := t.TempDir()
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stderr   string
		notInErr string
	}{
		{"BackupHelp", []string{"backup", "-h"}, 0, "-out", "-flush-size"},
		{"BackupNoOut", []string{"backup", "--token", "t"}, 2, "--out DIR is required", ""},
		{"BackupNoCredentials", []string{"backup", "--out", "x"}, 2, "--token or CAIRN_TOKEN", ""},
		{"BackupStrayArg", []string{"backup", "--out", "x", "now"}, 2, `unexpected argument "now"`, ""},
		{"RestoreHelp", []string{"restore", "-h"}, 0, "-from", "-flush-size"},
		{"RestoreNoFrom", []string{"restore"}, 2, "--from DIR is required", ""},
		{"RestoreNotABackup", []string{"restore", "--from", notBackup, "--data-dir", t.TempDir()}, 1, "not a complete cairn backup", ""},
		{"RestoreMongo", []string{"restore", "--from", notBackup, "--mongodb-uri", "mongodb://127.0.0.1:1/x"}, 2, "mongorestore", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no stray .env, no ./data
			t.Setenv("CAIRN_TOKEN", "")
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, want %d; stderr %q, want %q", code, tc.code, stderr.String(), tc.stderr)
			}
			if tc.notInErr != "" && strings.Contains(stderr.String(), tc.notInErr) {
				t.Errorf("stderr lists %q", tc.notInErr)
			}
		})
	}
}
