package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// BackupFunc receives one file of a spool backup: its name inside the spool
// directory, its exact size, and its bytes (exactly size of them).
type BackupFunc func(name string, size int64, r io.Reader) error

// Backup copies a consistent view of the running spool, for an online
// backup: it calls fn first for the checkpoint file (the Committed position,
// as Commit writes it), then for every segment from the one holding that
// position to the active one, oldest first, each up to its last synced
// record. Segments wholly before the committed position are left out (their
// records are stored elsewhere).
//
// The view is taken at one instant: the committed position and the synced
// end are read together, and every segment file is opened before Backup
// returns to its caller's first fn call, so a Commit that deletes segments
// meanwhile cannot take them away (an open file stays readable on Unix).
// Every record synced before Backup was called is in the copy unless it was
// committed (stored elsewhere) first. A spool directory made of the copied
// files opens with Open and replays from the checkpoint; appends continue
// undisturbed while the copy is read.
func (w *WAL) Backup(fn BackupFunc) error {
	type part struct {
		seg  int
		size int64
		f    *os.File
	}
	var parts []part
	defer func() {
		for _, p := range parts {
			p.f.Close() //nolint:errcheck // segment files opened read-only for the copy
		}
	}()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	committed := w.committed
	if committed.Segment < w.first {
		committed = Position{Segment: w.first, Offset: headerSize}
	}
	synced := w.synced
	for s := committed.Segment; s <= synced.Segment; s++ {
		size, ok := w.segBytes[s]
		if !ok {
			continue // a gap: the copy has the same gap, reported the same way
		}
		if s == synced.Segment {
			size = synced.Offset
		}
		f, err := os.Open(w.segPath(s))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			w.mu.Unlock()
			return fmt.Errorf("backup: open segment %d: %w", s, err)
		}
		parts = append(parts, part{seg: s, size: size, f: f})
	}
	w.mu.Unlock()

	cp := committed.String() + "\n"
	if err := fn(checkpointName, int64(len(cp)), strings.NewReader(cp)); err != nil {
		return err
	}
	for _, p := range parts {
		name := filepath.Base(w.segPath(p.seg))
		if err := fn(name, p.size, io.NewSectionReader(p.f, 0, p.size)); err != nil {
			return err
		}
	}
	return nil
}
