package pebble

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Checkpoint writes a consistent copy of the open store to dir, which must
// not exist yet and should be on the same file system as the store (Pebble
// hard-links the immutable table files, so the copy costs little space and
// time). It first syncs the store (see Sync), so every earlier InsertEvents
// is in the copy, then takes Pebble's checkpoint with its WAL flushed into
// a table. The store keeps serving reads meanwhile; InsertEvents and Close
// wait for the checkpoint (it hard-links files, so it is short), which keeps
// Close from pulling the database from under it. dir opens with Open like
// any store directory.
func (s *Store) Checkpoint(ctx context.Context, dir string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.Sync(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("pebble checkpoint: %w", err)
	}
	return nil
}
