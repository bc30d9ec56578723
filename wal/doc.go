// Package wal is Cairn's write-ahead spool: the local, fsynced log that makes
// "202 Accepted" mean durable.
//
// # Why hand-written
//
// The spool is Cairn's core guarantee, so it is written here rather than
// taken from a library: Prometheus's wlog skips per-write fsync and accepts
// losing the tail, and general-purpose embedded databases add a second copy
// and their own write path. This package does exactly one thing — append
// records, fsync them in groups, and hand them back in order — and can be
// reasoned about in full.
//
// # On-disk format
//
// A spool is a directory of numbered segment files, "00000001.seg",
// "00000002.seg", …, written strictly in order. Every segment starts with an
// 8-byte header:
//
//	magic "CRNWAL" (6 bytes) | version (2 bytes, big endian, = 1)
//
// followed by records, each framed as
//
//	length (uint32 LE) | CRC-32C of data (uint32 LE) | data (length bytes)
//
// A record never spans two segments, so a torn write can only damage the
// tail of the newest segment. Lengths are 1..MaxRecordSize; a zero length
// (the zero-fill a crash can leave) is never a valid record.
//
// # Durability
//
// Append returns only after the record's bytes are fdatasync'ed. Appends that
// arrive while a sync is in progress are written and synced together by the
// next one (group commit, as etcd does), so concurrent requests share fsyncs.
// New segments are created under a temporary name, synced, renamed, and the
// directory synced; removals sync the directory too.
//
// # Recovery
//
// A valid record is a frame whose length is sane, whose data lies inside
// the segment, and whose CRC-32C matches. Damage never costs more than the
// damaged bytes:
//
//   - Resynchronisation. After a bad record (bad checksum, bad or zero
//     length, short data) a Reader scans forward byte by byte for the next
//     valid frame and resumes there, so only the damaged record is lost. It
//     reports the damage once as a *CorruptionError (segment, offset, where
//     it resumed, bytes and records lost — exact when the damaged record's
//     length was intact, otherwise a lower bound) and then continues. To keep
//     the scan of random garbage cheap, a candidate longer than 64 KiB must
//     also be followed by the end of the data or something that can follow a
//     record; a valid long record directly followed by a second damaged
//     length is therefore skipped too (it stays on disk).
//   - Bad segment header. A damaged magic or version is reported (no record
//     lost) and the records after it are read as usual.
//   - Missing segment. A gap in the numbering is reported and skipped.
//   - Torn tail. Open scans the newest segment the same way. Damage with no
//     valid record after it is a torn tail (a crash mid-write, or damage in
//     the last record, which cannot be told apart): its bytes are copied to
//     "<segment>.broken" (synced, as etcd does) and the segment truncated
//     after its last valid record, logged at WARN. Damage followed by valid
//     records is corruption in the middle: it is logged and kept in place,
//     and readers step over it — bytes holding valid records are never cut.
//     The ".broken" copy is deleted with its segment.
//
// Open then starts a fresh segment, so older segments are immutable.
//
// # Write failures (disk full, I/O errors)
//
// After a failed write or fsync the state of the active segment is unknown
// (the kernel may have dropped dirty pages), so nothing more is written to
// it: every append waiting in that group commit gets the error (none of
// them was acknowledged), Err reports it, and further appends are refused
// with it. At most every RetryInterval (one second by default) — on the
// next append, or by itself when none comes — the spool tries to recover:
// it abandons the segment, cutting it back to its last synced record (best
// effort; its synced records stay readable, and the Reader moves on to the
// next segment at its end), creates a fresh segment (header written and
// fsynced, renamed, directory fsynced), and only then clears the failure;
// the group that triggered it is written and fsynced there before any
// append is acknowledged. A failed attempt leaves the spool failed until the
// next. The first failure is logged at ERROR, repeats at most every 30
// seconds at WARN with their count, the recovery at INFO. Close after a
// failure discards only unacknowledged bytes and returns nil. Errors name
// the segment file (never its temporary name).
//
// # Checkpoint
//
// The spool also keeps its committed position: Commit(pos) records that
// every record before pos is stored elsewhere, writes "segment:offset\n" to
// the file "checkpoint" in the spool directory (through "checkpoint.tmp" and
// a rename, without fsync: losing it only means replaying stored records),
// and deletes the segments wholly before pos. Committed returns it. Open
// validates the checkpoint against the segments on disk: one that is
// malformed, names a segment past the newest or one that is missing, or an
// offset that is not the end of the header or of a valid record in its
// segment (a corrupted digit, drained segments deleted by hand) is logged at
// ERROR with what was found, counted (CheckpointResets), and discarded — the
// spool is replayed from its oldest record, which is safe because stores
// ignore events they already have. Temporary files (*.tmp) are removed by
// Open.
//
// # Backup
//
// Backup hands out a consistent copy of the running spool, file by file, for
// an online backup: the committed position first (as a checkpoint file),
// then every segment from the one holding it to the active one, oldest
// first, the active one only up to its last synced record. The committed
// position, the synced end and the open segment files are taken together
// under the spool's lock, so a Commit that deletes segments meanwhile cannot
// take them away, and appends go on while the copy is read. A directory made
// of the copied files opens with Open and replays every record synced before
// the backup and not yet committed. (Cairn copies the spool before the store:
// see cmd/cairn/backup.go for why that order makes the pair consistent.)
package wal
