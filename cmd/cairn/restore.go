package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// restoredEntries are what `cairn restore` puts into the data directory
// (and, with --force, replaces).
var restoredEntries = []string{"spool", "store", secretFile}

// runRestore is `cairn restore --from DIR [--data-dir D] [--force]`: it puts
// a backup written by `cairn backup` in place as the data of a stopped
// server. The target must be empty (apart from the lock file) unless
// --force, which replaces its spool, store and development secret. The
// first start afterwards replays the backup's spool into the store.
func runRestore(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var from string
	var force bool
	cfg, err := loadConfig("restore", args, os.Getenv, ".env", stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "the backup directory written by cairn backup (required)")
		fs.BoolVar(&force, "force", false, "replace the spool, store and auth secret of a non-empty data dir")
	})
	if err != nil {
		return err
	}
	if from == "" {
		return &configError{"--from DIR is required"}
	}
	if cfg.MongoURI != "" {
		return &configError{"cairn restore restores the embedded store; with MONGODB_URI set, restore MongoDB with mongorestore (see docs/deployment.md, Backups)"}
	}
	m, err := readBackupManifest(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w (stop the server first: restore replaces its data)", err)
	}
	defer lock.Close() //nolint:errcheck // releasing the lock; the process exits next
	entries, err := os.ReadDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("read data dir: %w", err)
	}
	var present []string
	for _, e := range entries {
		if e.Name() != "cairn.lock" {
			present = append(present, e.Name())
		}
	}
	if len(present) > 0 && !force {
		return fmt.Errorf("data dir %s is not empty (%d entries, e.g. %s): restore into an empty directory, or pass --force to replace its spool, store and auth secret",
			cfg.DataDir, len(present), present[0])
	}
	// Copy into a temporary directory first, then swap the entries in.
	tmp, err := os.MkdirTemp(cfg.DataDir, "restore-*.tmp")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }() // best-effort cleanup of the scratch dir
	for _, name := range restoredEntries {
		if err := copyTree(filepath.Join(from, name), filepath.Join(tmp, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore %s: %w", name, err)
		} else if err != nil && name != secretFile {
			return fmt.Errorf("restore: the backup has no %s", name)
		}
	}
	if err := syncTree(tmp); err != nil {
		return err
	}
	for _, name := range restoredEntries {
		if err := os.RemoveAll(filepath.Join(cfg.DataDir, name)); err != nil {
			return fmt.Errorf("restore: remove the old %s: %w", name, err)
		}
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(cfg.DataDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore %s: %w", name, err)
		}
	}
	if err := syncDirPath(cfg.DataDir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored the backup of %s into %s; the next start replays its spool from %s\n",
		m.CreatedAt.Format(time.RFC3339), cfg.DataDir, m.SpoolCheckpoint)
	return nil
}

// readBackupManifest checks that dir holds a complete backup.
func readBackupManifest(dir string) (*backupManifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, backupManifestName))
	if err != nil {
		return nil, fmt.Errorf("%s is not a complete cairn backup (no %s): %w", dir, backupManifestName, err)
	}
	var m backupManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: unsupported backup: %w", filepath.Join(dir, backupManifestName), err)
	} else if m.Format != backupFormat {
		return nil, fmt.Errorf("%s: unsupported backup (format %d)", filepath.Join(dir, backupManifestName), m.Format)
	}
	return &m, nil
}

// copyTree copies the file or directory src to dst (which must not exist),
// fsyncing every file.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close() //nolint:errcheck // opened read-only; read errors are returned by writeFileSynced
		return writeFileSynced(target, f, info.Mode().Perm())
	})
}
