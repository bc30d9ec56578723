package pebble

import "github.com/cockroachdb/pebble/v2/vfs"

// noPreallocFS is the OS filesystem with file preallocation turned off.
// Pebble preallocates each WAL file to 110 % of the memtable size (35 MiB
// here) when it creates it: on a small volume that reserved space, not
// data, is what fills the disk first and starves Cairn's spool (measured
// on a 64 MiB tmpfs: 36 MB allocated for 0.4 MB of events). Without it a
// WAL file takes the space of what is written to it. Preallocation only
// saves file-size metadata updates on fdatasync, and this store syncs
// its WAL rarely (see Options.DeferSync).
type noPreallocFS struct{ vfs.FS }

func (fs noPreallocFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{f}, nil
}

func (fs noPreallocFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{f}, nil
}

// noPreallocFile ignores Preallocate.
type noPreallocFile struct{ vfs.File }

func (noPreallocFile) Preallocate(offset, length int64) error { return nil }
