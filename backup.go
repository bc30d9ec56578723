package cairn

import (
	"context"
	"io"
)

// Backuper makes an online backup: a consistent copy of a running Cairn's
// data, taken while it keeps ingesting and serving.
type Backuper interface {
	// Backup writes a tar archive of a consistent copy of the data to w.
	// It returns ECONFLICT when another backup is running and
	// EUNAVAILABLE when the data cannot be read (the store is closed),
	// both before anything is written to w; an error after the archive
	// has begun (EINTERNAL, or w's error) means the archive is incomplete.
	Backup(ctx context.Context, w io.Writer) error
}
