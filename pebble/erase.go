package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// Erasure (cairn.Eraser). EraseUser keeps, for every erased event, its
// dedup key 'e' eventId with an empty value (a tombstone: a re-delivered
// event is a duplicate, forever), and for every erased id an erasure marker
//
//	'I' 'x' userId → varint(erasedAtMs)
//
// which InsertEvents reads for the users of each batch (one more sorted
// lookup, answered by the bloom filters for the users never erased): an
// event of a marked id received at or before the marker is skipped as a
// duplicate. Markers are kept forever too; both are a few bytes per
// erased event and id.
//
// EraseUser holds the write lock and commits, with an fsync each: the
// markers first, then the events in chunks of eraseChunk (tombstones,
// deletes of the journey keys and the new event count), then the derived
// data (tracked-user and session records, the merged list, the links of
// the merged ids). A call that fails half-way leaves a consistent store
// and, retried, finishes the erasure (the merged list goes last, so the
// retry still finds the merged ids).

const kindErased = 'x' // userId → varint(erasedAt ms)

// eraseChunk is the most events one commit of EraseUser removes.
const eraseChunk = 10000

var _ cairn.Eraser = (*Store)(nil)

// EraseUser erases userID's events and derived data. See cairn.Eraser.
func (s *Store) EraseUser(ctx context.Context, userID string, now time.Time) (cairn.EraseResult, error) {
	res := cairn.EraseResult{AnonymousIDs: []string{}}
	if userID == "" {
		return res, cairn.Errorf(cairn.EINVALID, "userId must not be empty")
	}
	if err := s.checkOpen(); err != nil {
		return res, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	merged, err := s.mergedIDs(userID, 0)
	if err != nil {
		return res, err
	}
	ids := append([]string{userID}, merged...)
	defer func() {
		for _, id := range ids {
			s.users.drop(id) // whatever was committed, read it again
		}
	}()

	batch := s.db.NewBatch()
	defer func() { batch.Close() }() //nolint:errcheck // Batch.Close only releases memory
	marker := binary.AppendVarint(nil, now.UnixMilli())
	for _, id := range ids {
		if err := batch.Set(identityKey(kindErased, id), marker, nil); err != nil {
			return res, fmt.Errorf("batch set: %w", err)
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return res, fmt.Errorf("commit erasure markers: %w", err)
	}

	for _, id := range ids {
		n, err := s.eraseEvents(ctx, id)
		res.Events += n
		if err != nil {
			return res, err
		}
	}

	batch.Close() //nolint:errcheck // Batch.Close only releases memory
	batch = s.db.NewBatch()
	for _, id := range ids {
		if err := batch.Delete(identityKey(kindTracked, id), nil); err != nil {
			return res, fmt.Errorf("batch delete: %w", err)
		}
		sess := userScopedKey(kindSession, id, "")
		if err := batch.DeleteRange(sess, prefixEnd(sess), nil); err != nil {
			return res, fmt.Errorf("batch delete: %w", err)
		}
	}
	for _, anon := range merged {
		if err := batch.Delete(identityKey(kindLink, anon), nil); err != nil {
			return res, fmt.Errorf("batch delete: %w", err)
		}
	}
	if err := batch.Delete(identityKey(kindMerged, userID), nil); err != nil {
		return res, fmt.Errorf("batch delete: %w", err)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return res, fmt.Errorf("commit erasure: %w", err)
	}
	res.AnonymousIDs = append(res.AnonymousIDs, merged...)
	s.log.Info("erased tracked user", "user_id", userID, "events", res.Events, "anonymous_ids", len(merged))
	return res, nil
}

// eraseEvents removes the events stored under id, leaving tombstones, in
// commits of at most eraseChunk events. Callers hold writeMu.
func (s *Store) eraseEvents(ctx context.Context, id string) (int64, error) {
	prefix := userPrefix(nil, id)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("erase iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases it
	var total int64
	batch := s.db.NewBatch()
	defer func() { batch.Close() }() //nolint:errcheck // Batch.Close only releases memory
	n := 0
	commit := func() error {
		if n == 0 {
			return nil
		}
		newCount := max(s.count.Load()-int64(n), 0)
		if err := batch.Set(countKey, binary.BigEndian.AppendUint64(nil, uint64(newCount)), nil); err != nil {
			return fmt.Errorf("batch set: %w", err)
		}
		if err := batch.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("commit erased events: %w", err)
		}
		s.count.Store(newCount)
		total += int64(n)
		n = 0
		batch.Close() //nolint:errcheck // Batch.Close only releases memory
		batch = s.db.NewBatch()
		return nil
	}
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()
		eventID, err := keyEventID(key, len(prefix))
		if err != nil {
			return total, err
		}
		if err := batch.Set(idKey(nil, eventID), nil, nil); err != nil {
			return total, fmt.Errorf("batch set: %w", err)
		}
		if err := batch.Delete(key, nil); err != nil {
			return total, fmt.Errorf("batch delete: %w", err)
		}
		if n++; n == eraseChunk {
			if err := commit(); err != nil {
				return total, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return total, fmt.Errorf("erase scan: %w", err)
	}
	return total, commit()
}

// keyEventID returns the eventId of a journey key whose user prefix is
// skip bytes long: the complemented bytes before the final 0xFF.
func keyEventID(key []byte, skip int) (string, error) {
	if len(key) < skip+8+1 || key[len(key)-1] != 0xFF {
		return "", fmt.Errorf("bad journey key %q", key)
	}
	desc := key[skip+8 : len(key)-1]
	id := make([]byte, len(desc))
	for i, c := range desc {
		id[i] = ^c
	}
	return string(id), nil
}

// erasureMarkers returns the erasure time of each of users that has a
// marker, from the user cache where it has them. Callers hold writeMu.
func (s *Store) erasureMarkers(ctx context.Context, users []string) (map[string]time.Time, error) {
	var out map[string]time.Time
	mark := func(user string, ms int64) {
		if out == nil {
			out = map[string]time.Time{}
		}
		out[user] = msTime(ms)
	}
	keys := make([][]byte, 0, len(users))
	missed := make([]string, 0, len(users))
	for _, u := range users {
		if c, ok := s.users.get(u); ok {
			if c.hasMarker {
				mark(u, c.erased)
			}
			continue
		}
		missed = append(missed, u)
		keys = append(keys, identityKey(kindErased, u))
	}
	vals, err := s.lookup(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		if v == nil {
			continue
		}
		ms, k := binary.Varint(v)
		if k <= 0 {
			return nil, fmt.Errorf("erasure marker of %q: %w", missed[i], errBadRecord)
		}
		mark(missed[i], ms)
	}
	return out, nil
}
