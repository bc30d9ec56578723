package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// Retention (Options.Retention, CAIRN_RETENTION) deletes events whose
// receivedAt is older than the retention.
//
// Pebble has no index on receivedAt and none is added: a purge pass is a
// full scan of the 'u' keys, in batches of Options.PurgeBatch keys with a
// pause of Options.PurgePause between batches, so its I/O is bounded and
// paced, every Options.PurgeInterval. A receivedAt index would cost every
// insert one more key (and its compaction) to make a rare background job
// cheaper; the full scan costs inserts nothing. Each batch is read and
// deleted under the insert lock, so the event count (CountEvents) stays
// exact and no event inserted meanwhile is deleted by mistake; the lock is
// held for one batch only.
//
// For each expired event the batch deletes its 'u' key and its dedup 'e'
// key: keeping 'e' keys would keep a dangling key per deleted event
// forever (the store would never shrink). The consequence, as with
// MongoDB's TTL index (whose _id is the eventId): an event re-delivered
// after its retention is stored again, and deleted by the next pass. A
// user whose whole key range lies in one batch and is expired is removed
// with one DeleteRange instead of a tombstone per event.
//
// Retention deletes events only, as on MongoDB: tracked-user records
// ('I' 't', with their first/last seen and event counts), their session
// keys and identity links stay.

// DefaultPurgeInterval is the time between purge passes when
// Options.PurgeInterval is zero (or the retention, if shorter).
const DefaultPurgeInterval = time.Minute

// DefaultPurgeBatch is the number of keys a purge batch reads when
// Options.PurgeBatch is zero.
const DefaultPurgeBatch = 1000

// DefaultPurgePause is the pause between purge batches when
// Options.PurgePause is zero.
const DefaultPurgePause = 10 * time.Millisecond

// retentionDefaults fills in the purge options.
func (o *Options) retentionDefaults() {
	if o.PurgeInterval <= 0 {
		o.PurgeInterval = min(DefaultPurgeInterval, o.Retention)
	}
	if o.PurgeBatch <= 0 {
		o.PurgeBatch = DefaultPurgeBatch
	}
	if o.PurgePause <= 0 {
		o.PurgePause = DefaultPurgePause
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// purgeLoop runs a purge pass every PurgeInterval until ctx ends.
func (s *Store) purgeLoop(ctx context.Context) {
	defer close(s.purgeDone)
	t := time.NewTicker(s.opts.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.PurgeExpired(ctx, s.opts.Now().Add(-s.opts.Retention))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn("retention purge failed", "err", err)
		case n > 0:
			s.log.Info("retention purge", "deleted", n)
		}
	}
}

// PurgeExpired deletes every event received before cutoff (and its dedup
// key) in one pass over the store, Options.PurgeBatch keys at a time with
// Options.PurgePause between batches, and returns how many it deleted. It
// works whether or not Options.Retention is set.
func (s *Store) PurgeExpired(ctx context.Context, cutoff time.Time) (int64, error) {
	batchSize, pause := s.opts.PurgeBatch, s.opts.PurgePause
	if batchSize <= 0 {
		batchSize = DefaultPurgeBatch
	}
	var total int64
	from := []byte{prefixUser}
	for from != nil {
		n, next, err := s.purgeBatch(ctx, from, cutoff.UnixMilli(), batchSize)
		total += n
		if err != nil {
			return total, err
		}
		from = next
		if from == nil {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return total, ctx.Err()
		case <-t.C:
		}
	}
	return total, nil
}

// userRun is the part of one user's key range seen by a purge batch.
type userRun struct {
	prefix   []byte
	complete bool     // the run starts at the user's first key and ends at its last
	keys     [][]byte // every 'u' key of the run
	expired  []int    // indexes into keys of the expired events
	eventIDs []string // eventIds of the expired events, parallel to expired
}

// purgeBatch reads at most limit 'u' keys from from (inclusive) under the
// insert lock, deletes the expired ones, and returns the next key to read
// (nil at the end of the events).
func (s *Store) purgeBatch(ctx context.Context, from []byte, cutoffMs int64, limit int) (int64, []byte, error) {
	if err := s.checkOpen(); err != nil {
		return 0, nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.checkOpen(); err != nil {
		return 0, nil, err
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: from, UpperBound: []byte{prefixUser + 1}})
	if err != nil {
		return 0, nil, fmt.Errorf("purge iterator: %w", err)
	}
	var (
		runs []*userRun
		run  *userRun
		next []byte
		seen int
	)
	// A batch that starts at a key other than a user's first cannot see
	// that user's whole range.
	firstIsStart := len(from) == 1
	for ok := it.First(); ok; ok = it.Next() {
		if seen == limit {
			next = bytes.Clone(it.Key())
			break
		}
		seen++
		key := it.Key()
		plen, err := userPrefixLen(key)
		if err != nil {
			it.Close() //nolint:errcheck // leaving on the error returned below; the iterator is only released
			return 0, nil, err
		}
		if run == nil || !bytes.Equal(run.prefix, key[:plen]) {
			run = &userRun{prefix: bytes.Clone(key[:plen]), complete: run != nil || firstIsStart}
			runs = append(runs, run)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close() //nolint:errcheck // leaving on the error returned below; the iterator is only released
			return 0, nil, fmt.Errorf("purge read: %w", err)
		}
		var e cairn.Event
		if _, err := e.DecodeBinary(v); err != nil {
			it.Close() //nolint:errcheck // leaving on the error returned below; the iterator is only released
			return 0, nil, fmt.Errorf("decode event at %q: %w", key, err)
		}
		run.keys = append(run.keys, bytes.Clone(key))
		if e.ReceivedAt.UnixMilli() < cutoffMs {
			run.expired = append(run.expired, len(run.keys)-1)
			run.eventIDs = append(run.eventIDs, e.EventID)
		}
	}
	if err := it.Close(); err != nil {
		return 0, nil, fmt.Errorf("purge scan: %w", err)
	}
	if next != nil && run != nil && bytes.HasPrefix(next, run.prefix) {
		// The batch stopped inside the last user's range.
		if plen, err := userPrefixLen(next); err == nil && plen == len(run.prefix) {
			run.complete = false
		}
	}
	batch := s.db.NewBatch()
	defer batch.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	var deleted int64
	for _, r := range runs {
		if len(r.expired) == 0 {
			continue
		}
		if r.complete && len(r.expired) == len(r.keys) {
			if err := batch.DeleteRange(r.prefix, prefixEnd(r.prefix), nil); err != nil {
				return 0, nil, fmt.Errorf("batch delete range: %w", err)
			}
		} else {
			for _, i := range r.expired {
				if err := batch.Delete(r.keys[i], nil); err != nil {
					return 0, nil, fmt.Errorf("batch delete: %w", err)
				}
			}
		}
		for _, id := range r.eventIDs {
			if err := batch.Delete(idKey(nil, id), nil); err != nil {
				return 0, nil, fmt.Errorf("batch delete: %w", err)
			}
		}
		deleted += int64(len(r.expired))
	}
	if deleted == 0 {
		return 0, next, nil
	}
	newCount := max(s.count.Load()-deleted, 0)
	if err := batch.Set(countKey, binary.BigEndian.AppendUint64(nil, uint64(newCount)), nil); err != nil {
		return 0, nil, fmt.Errorf("batch set: %w", err)
	}
	if err := batch.Commit(s.commit); err != nil {
		return 0, nil, fmt.Errorf("commit purge: %w", err)
	}
	s.count.Store(newCount)
	return deleted, next, nil
}

// userPrefixLen returns the length of the userPrefix that starts key.
func userPrefixLen(key []byte) (int, error) {
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || uint64(len(key)-1-w) < n {
		return 0, fmt.Errorf("malformed event key %q", key)
	}
	return 1 + w + int(n), nil
}
