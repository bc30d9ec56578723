package main

// Online backup of the embedded store: the cairn.Backuper behind
// POST /api/backup, and `cairn backup`, the client that fetches and unpacks
// one (restore.go puts it back).
//
// # Consistency
//
// An event acknowledged by a 202 is in the spool (synced), and later in the
// store; the spool's checkpoint says up to where the store holds every
// event (the pipeline syncs the store before it commits). The backup copies
// the spool FIRST — its committed position, then every segment from the one
// holding it to the active one, the active one only up to its last synced
// record (wal.WAL.Backup takes that view at one instant) — and THEN takes a
// Pebble checkpoint after a store Sync (pebble.Store.Checkpoint). So every
// event acknowledged before the backup began is either after the copied
// checkpoint, and then in the spool copy, or before it, and then already
// durable in the store when the Pebble checkpoint is taken. On the first
// start after a restore the spool copy is replayed into the store, which
// skips events it already has (eventId dedup), so nothing is lost or
// doubled. Events acknowledged while the backup runs may or may not be in
// it.
//
// # Archive
//
// A tar stream of regular files:
//
//	spool/checkpoint, spool/00000007.seg, …   the spool view, in that order
//	store/…                                   the Pebble checkpoint
//	auth-secret                               the development secret, when present
//	backup.json                               last: format, time, spool checkpoint, file count
//
// backup.json comes last, so an archive cut short (the server aborts the
// response when the backup fails after it began) is recognisably
// incomplete; `cairn backup` refuses it. The dead-letter file is not part of
// the backup.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/wal"
)

// backupManifestName is the archive's last entry.
const backupManifestName = "backup.json"

// backupFormat is the version of the archive layout.
const backupFormat = 1

// backupManifest is backup.json.
type backupManifest struct {
	Format          int       `json:"format"`
	CreatedAt       time.Time `json:"createdAt"`
	SpoolCheckpoint string    `json:"spoolCheckpoint"`
	Files           int       `json:"files"`
}

// onlineBackup backs up the embedded store while the server runs.
type onlineBackup struct {
	dataDir string
	spool   *wal.WAL
	store   *pebble.Store
	mu      sync.Mutex // held for the duration of a backup: one at a time
}

var _ cairn.Backuper = (*onlineBackup)(nil)

// newBackuper returns the online backup of the server's data, or nil when
// the store is not the embedded one (MongoDB: POST /api/backup then answers
// 501 pointing at mongodump).
func newBackuper(dataDir string, store cairn.EventStore, spool *wal.WAL) cairn.Backuper {
	ps, ok := store.(*pebble.Store)
	if !ok {
		return nil
	}
	return &onlineBackup{dataDir: dataDir, spool: spool, store: ps}
}

// Backup implements cairn.Backuper (see the file comment for what it writes
// and why it is consistent).
func (b *onlineBackup) Backup(ctx context.Context, w io.Writer) error {
	if !b.mu.TryLock() {
		return cairn.Errorf(cairn.ECONFLICT, "A backup is already running; try again when it has finished.")
	}
	defer b.mu.Unlock()
	if err := b.store.Ping(ctx); err != nil {
		return err
	}
	// Checkpoints left by a backup that was interrupted by a crash.
	if stale, _ := filepath.Glob(filepath.Join(b.dataDir, "backup-*.tmp")); len(stale) > 0 {
		for _, d := range stale {
			_ = os.RemoveAll(d) // best effort: a leftover only takes space
		}
	}
	tmp, err := os.MkdirTemp(b.dataDir, "backup-*.tmp")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }() // best-effort cleanup of the scratch dir

	tw := tar.NewWriter(w)
	now := time.Now().UTC()
	m := backupManifest{Format: backupFormat, CreatedAt: now.Truncate(time.Millisecond)}
	add := func(name string, size int64, mode int64, r io.Reader) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: mode, ModTime: now, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("backup %s: %w", name, err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("backup %s: %w", name, err)
		}
		m.Files++
		return nil
	}

	// 1. The spool, first.
	err = b.spool.Backup(func(name string, size int64, r io.Reader) error {
		if name == "checkpoint" {
			data, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			m.SpoolCheckpoint = strings.TrimSpace(string(data))
			r = strings.NewReader(string(data))
		}
		return add("spool/"+name, size, 0o644, r)
	})
	if err != nil {
		return fmt.Errorf("backup spool: %w", err)
	}
	// 2. Then the store, after a sync.
	cp := filepath.Join(tmp, "store")
	if err := b.store.Checkpoint(ctx, cp); err != nil {
		return fmt.Errorf("backup store: %w", err)
	}
	err = filepath.WalkDir(cp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(cp, p)
		if err != nil {
			return err
		}
		return addFile(add, "store/"+filepath.ToSlash(rel), p)
	})
	if err != nil {
		return fmt.Errorf("backup store: %w", err)
	}
	// 3. The development secret, so sessions and cookies stay valid.
	if secret := filepath.Join(b.dataDir, secretFile); fileExists(secret) {
		if err := addFile(add, secretFile, secret); err != nil {
			return err
		}
	}
	// 4. The manifest, last.
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	body = append(body, '\n')
	if err := add(backupManifestName, int64(len(body)), 0o644, strings.NewReader(string(body))); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// addFile adds the file at p to the archive as name.
func addFile(add func(name string, size, mode int64, r io.Reader) error, name, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // opened read-only; read errors are returned by add
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return add(name, fi.Size(), int64(fi.Mode().Perm()), io.LimitReader(f, fi.Size()))
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// runBackup is `cairn backup --url URL --out DIR`: it asks a running Cairn
// for an online backup (POST /api/backup, as an admin) and unpacks it into
// DIR, which must not exist or be empty.
func runBackup(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("cairn backup", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	port := strings.TrimSpace(os.Getenv("PORT"))
	if port == "" {
		port = "3000"
	}
	base := fset.String("url", "http://127.0.0.1:"+port, "base URL of the running Cairn")
	out := fset.String("out", "", "directory to write the backup to; must not exist or be empty (required)")
	token := fset.String("token", "", "an admin's session token (default: env CAIRN_TOKEN)")
	email := fset.String("email", "", "sign in as this admin instead of a token (password prompted, or the first line of stdin)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "Usage: cairn backup --out DIR [--url URL] [--token T | --email E]\n\nFlags:")
			fset.SetOutput(stderr)
			fset.PrintDefaults()
			return err
		}
		return &configError{err.Error()}
	}
	if fset.NArg() > 0 {
		return &configError{fmt.Sprintf("unexpected argument %q", fset.Arg(0))}
	}
	if *out == "" {
		return &configError{"--out DIR is required"}
	}
	if *token == "" {
		*token = os.Getenv("CAIRN_TOKEN")
	}
	if *token == "" && *email == "" {
		return &configError{"give an admin's session token (--token or CAIRN_TOKEN) or --email to sign in"}
	}
	if err := checkEmptyDir(*out); err != nil {
		return err
	}
	baseURL := strings.TrimSuffix(*base, "/")
	client := &http.Client{}
	if *token == "" {
		password, err := readPassword(stdin, stderr, false)
		if err != nil {
			return err
		}
		if *token, err = signIn(ctx, client, baseURL, *email, password); err != nil {
			return err
		}
		defer signOut(context.WithoutCancel(ctx), client, baseURL, *token)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/backup", nil)
	if err != nil {
		return &configError{fmt.Sprintf("invalid --url: %v", err)}
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close() //nolint:errcheck // response body: read errors are reported by the reads
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("backup refused: %s", responseError(resp))
	}
	m, files, err := unpackBackup(resp.Body, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of %s written to %s (%d files, spool checkpoint %s)\n",
		m.CreatedAt.Format(time.RFC3339), *out, files, m.SpoolCheckpoint)
	return nil
}

// checkEmptyDir accepts a directory that does not exist or is empty.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty: back up into a new or empty directory", dir)
	}
	return nil
}

// unpackBackup writes the archive into a temporary sibling of dir, checks
// that it is complete (backup.json last), and renames it to dir.
func unpackBackup(r io.Reader, dir string) (*backupManifest, int, error) {
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, 0, fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".partial-")
	if err != nil {
		return nil, 0, fmt.Errorf("create the backup directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp) // best-effort cleanup of a partial backup
		}
	}()
	var m *backupManifest
	files := 0
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<20))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("backup incomplete (the server ended it early; see its log): %w", err)
		}
		if m != nil {
			return nil, 0, fmt.Errorf("backup malformed: %q after %s", hdr.Name, backupManifestName)
		}
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || !fs.ValidPath(name) || name == "." {
			return nil, 0, fmt.Errorf("backup malformed: unexpected entry %q", hdr.Name)
		}
		var src io.Reader = tr
		if name == backupManifestName {
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return nil, 0, fmt.Errorf("backup incomplete: %w", err)
			}
			var mm backupManifest
			if err := json.Unmarshal(b, &mm); err != nil {
				return nil, 0, fmt.Errorf("backup malformed: %s: %w", backupManifestName, err)
			}
			if mm.Format != backupFormat || mm.Files != files {
				return nil, 0, fmt.Errorf("backup malformed: %s says format %d, %d files; got %d files", backupManifestName, mm.Format, mm.Files, files)
			}
			m, src = &mm, bytes.NewReader(b)
		}
		if err := writeFileSynced(filepath.Join(tmp, filepath.FromSlash(name)), src, hdr.FileInfo().Mode().Perm()); err != nil {
			return nil, 0, fmt.Errorf("backup incomplete: %w", err)
		}
		files++
	}
	if m == nil {
		return nil, 0, fmt.Errorf("backup incomplete: no %s at its end (the server ended it early; see its log)", backupManifestName)
	}
	if err := syncTree(tmp); err != nil {
		return nil, 0, err
	}
	_ = os.Remove(dir) // an empty directory (checked before) makes way for the rename
	if err := os.Rename(tmp, dir); err != nil {
		return nil, 0, fmt.Errorf("move the backup into %s: %w", dir, err)
	}
	done = true
	if err := syncDirPath(filepath.Dir(dir)); err != nil {
		return nil, 0, err
	}
	return m, files - 1, nil
}

// writeFileSynced writes r to p (creating its directory) and fsyncs it.
func writeFileSynced(p string, r io.Reader, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// syncTree fsyncs every directory under root (files are synced as written).
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDirPath(p)
	})
}

func syncDirPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close() //nolint:errcheck // a directory handle opened for Sync, whose error is returned
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// signIn signs in through the Better Auth route and returns the session
// token.
func signIn(ctx context.Context, client *http.Client, baseURL, email, password string) (string, error) {
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/auth/sign-in/email", strings.NewReader(string(body)))
	if err != nil {
		return "", &configError{fmt.Sprintf("invalid --url: %v", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("sign in: %w", err)
	}
	defer resp.Body.Close() //nolint:errcheck // response body: read errors are reported by the reads
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign in: %s", responseError(resp))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("sign in: no session token in the answer: %w", err)
	} else if out.Token == "" {
		return "", errors.New("sign in: no session token in the answer")
	}
	return out.Token, nil
}

// signOut ends the session signIn started (best effort).
func signOut(ctx context.Context, client *http.Client, baseURL, token string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/auth/sign-out", strings.NewReader("{}"))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close() // best effort: the session expires anyway
	}
}

// responseError describes a failed response: its status and the message of
// its JSON error body (Cairn's "error" or Better Auth's "message").
func responseError(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil {
		if e.Error != "" {
			msg = e.Error
		} else if e.Message != "" {
			msg = e.Message
		}
	}
	return fmt.Sprintf("%d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), msg)
}
