// Package pebble is Cairn's embedded event store, built on CockroachDB's
// Pebble LSM engine. It is the zero-setup default: everything lives in one
// directory (CAIRN_DATA_DIR/store).
//
// # On-disk layout
//
// All keys start with a one-byte prefix naming their kind:
//
//	'u' uvarint(len(userId)) userId  bigendian(^occurredAtMs)  desc(eventId)  → binary event (cairn.Event.AppendBinary)
//	'e' eventId                                                             → the 'u' key of that event (dedup index)
//	'm' "count"                                                             → bigendian(uint64) number of stored events
//	'A' …                                                                   → accounts and sessions (auth.go)
//	'S' …                                                                   → sources and their write keys (sources.go)
//	'I' 'a' anonymousId                                                     → link: varint(occurredAtMs) string(eventId) userId
//	'I' 'm' userId                                                          → uvarint(n) n × string(anonymousId): the ids merged into userId, sorted
//	'I' 't' userId                                                          → tracked-user record (identity.go)
//	'I' 's' uvarint(len(userId)) userId sessionId                           → "" (userId's distinct sessions)
//	'I' 'x' userId                                                          → varint(erasedAtMs): erasure marker (erase.go)
//	'N' …                                                                   → insight aggregates: hour counters, day user sketches (insights.go)
//
// An erased event's 'e' key stays, with an empty value (a tombstone, so
// that a re-delivered erased event is a duplicate forever; erase.go).
//
// desc(id) is every byte of id complemented, then 0xFF, so that ascending key
// order is eventId descending (eventIds never contain 0x00). A user's events
// therefore lie in one contiguous key range, newest first, ties broken by
// eventId descending — a journey page is a single forward range scan. The
// length prefix keeps users that are prefixes of each other apart. Bloom
// filters on every level make the dedup lookups of new eventIds cheap.
//
// # Identity links and tracked users
//
// InsertEvents writes, in the same batch as the new events (so they are
// exactly as durable, and a duplicate never touches them): for each newly
// stored event with a link (cairn.Event.LinkCandidate), the anonymous id's
// winning link 'I' 'a' — the earliest (occurredAt, eventId) one, see
// cairn's identity rules — and its entry in the winning user's list 'I' 'm'
// (moved when an earlier link arrives late); and for each user of the
// batch one read-modify-write of its record 'I' 't' (first/last seen,
// event and session counts, traits with the (occurredAt, eventId) that set
// each), plus one 'I' 's' key per new distinct session, which is what
// makes the session count exact. The reads of a batch go through one
// iterator in key order, like the dedup lookups; a user without a record
// needs no session lookups, and neither does a session among the few the
// record keeps as recent (each of which has its 'I' 's' key). The records
// and erasure markers of the users seen last are also kept in memory
// (usercache.go, Options.UserCacheSize), exactly as stored, so that a user
// who keeps sending costs no reads at all. The record is
//
//	version(1) varint(firstMs) varint(lastMs) uvarint(events) uvarint(sessions)
//	uvarint(n) n × (string(key) string(JSON value) varint(ms) string(eventId))
//	uvarint(r) r × string(recent sessionId)            (r ≤ 4)
//
// with strings as uvarint(len) bytes and traits sorted by key.
//
// A merged journey is a k-way merge (a heap) of one bounded range scan per
// id — the user's and each id of its 'I' 'm' list, at most
// cairn.MaxMergedIDs of them, the smallest in byte order. Every id's keys
// end with the same time-then-descending-eventId suffix, so comparing
// suffixes orders events across ids exactly as within one. A user without
// merged ids costs one point lookup (answered by the bloom filters) more
// than the single range scan it always was.
//
// With Options.DeferSync (what Cairn uses), event batches are committed
// without an fsync of Pebble's own WAL: the spool already holds a durable
// copy of every event, so paying a second fsync per batch buys nothing. The
// pipeline calls Sync (one WAL fsync covering every earlier batch) before it
// advances its checkpoint and trims the spool, so a crash can lose only
// store writes whose events are still in the spool and are replayed.
// Without DeferSync every batch is committed with pebble.Sync.
//
// Pebble's own WAL stays on. Disabling it (DisableWAL, Sync = a memtable
// flush, the spool trimmed behind what is flushed) was measured for issue
// 14: the unsynced WAL writes plus one fsync per second cost under the
// noise of the insert path (BenchmarkInsertEventsDeferSync's cpu-ns/event
// with and without: 12.1 and 12.8 µs, 3 runs each, see BENCHMARKS.md),
// which is memtable inserts, the identity lookups, and the flushes and
// compactions of every key; and without the WAL every write that is not
// an event batch (accounts, sessions, sources, erasure) would need its
// own memtable flush to stay durable. Not worth it.
//
// Options.MaxCompactions bounds Pebble's concurrent compactions (2 by
// default). Each is a CPU-bound goroutine: on 2 cores, one compaction
// served single events better right after a burst (in four of five a/b
// pairs, 3,692 against 2,786 req/s served at 5,000 on average), but it
// stored a sustained batched load at 0.6× the rate of two (two a b b a
// pairs: 19–24k against 31–37k events/s including the backlog's drain;
// BENCHMARKS.md). Throughput comes first, so the default stays 2;
// CAIRN_STORE_COMPACTIONS=1 trades it for tail latency.
//
// Checkpoint (backup.go) writes a consistent copy of the open store to a new
// directory, for online backups (`cairn backup`); the copy opens with Open.
//
// Insight aggregates (insights.go) — per-hour counters and per-day user
// sketches under 'N' — are written in the same batch as the new events,
// for them only, like the identity records.
//
// With Options.Retention, a background loop deletes events whose receivedAt
// is older (retention.go): a paced full scan in small batches, no time index.
//
// To look inside without Go, use `cairn export` (JSON lines).
package pebble

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

const (
	prefixUser  = 'u'
	prefixEvent = 'e'
	prefixMeta  = 'm'
)

var countKey = []byte{prefixMeta, 'c', 'o', 'u', 'n', 't'}

// Store is an EventStore backed by a Pebble database.
type Store struct {
	db  *pebble.DB
	log *slog.Logger

	writeMu sync.Mutex // serializes InsertEvents: dedup check + write must be atomic
	count   atomic.Int64
	closed  atomic.Bool
	commit  *pebble.WriteOptions // pebble.Sync, or pebble.NoSync with DeferSync
	opts    Options

	sketches map[int64]*daySketch // insights.go: cached day user sketches, under writeMu
	users    *userCache           // usercache.go: tracked-user records and erasure markers, under writeMu

	stopPurge context.CancelFunc // nil without retention
	purgeDone chan struct{}      // closed when the purge loop has returned
}

var (
	_ cairn.EventStore     = (*Store)(nil)
	_ cairn.DeferredSyncer = (*Store)(nil)
)

// DefaultCacheSize is the block cache size used when Options.CacheSize is
// zero.
const DefaultCacheSize = 128 << 20

// DefaultMaxCompactions is the number of concurrent compactions used when
// Options.MaxCompactions is zero (see the package doc for the trade-off).
const DefaultMaxCompactions = 2

// Options configure the store.
type Options struct {
	// CacheSize is the block cache size in bytes (DefaultCacheSize if zero). Index
	// and filter blocks must stay cached for the dedup lookups of new
	// eventIds to be cheap: at 400k stored events, 64 MiB halves insert
	// throughput (pebble BenchmarkInsertEventsFilled).
	CacheSize int64
	// Logger receives Pebble's log messages.
	Logger *slog.Logger
	// DeferSync commits event batches without an fsync; call Sync to make
	// them durable (see the package doc).
	DeferSync bool
	// MaxCompactions bounds Pebble's concurrent compactions
	// (DefaultMaxCompactions if zero). Each compaction keeps a core busy:
	// on a small machine, every one past the first takes CPU from the
	// request handlers and the spool's fsyncs (see the package doc).
	MaxCompactions int
	// Retention, when positive, makes the store delete events whose
	// receivedAt is older, in a background loop (retention.go); 0 keeps
	// them forever.
	Retention time.Duration
	// PurgeInterval is the time between purge passes: 0 means
	// DefaultPurgeInterval, or the retention if shorter.
	PurgeInterval time.Duration
	// PurgeBatch is the number of event keys one purge step reads (and at
	// most deletes) under the insert lock; 0 means DefaultPurgeBatch.
	PurgeBatch int
	// PurgePause is the pause between purge steps; 0 means
	// DefaultPurgePause.
	PurgePause time.Duration
	// Now is the purge loop's clock; nil means time.Now.
	Now func() time.Time
	// UserCacheSize is the memory budget in bytes of the cache of the
	// tracked-user records and erasure markers of the users seen last
	// (usercache.go): DefaultUserCacheSize if zero, no cache if negative.
	UserCacheSize int
	// NoInsightAggregates skips maintaining the insight aggregates at
	// ingest (insights.go); only `cairn bench` sets it, to measure their cost.
	NoInsightAggregates bool
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxCompactions <= 0 {
		opts.MaxCompactions = DefaultMaxCompactions
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	po := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                32 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, opts.MaxCompactions },
		Logger:                      pebbleLogger{opts.Logger},
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		if i < 3 {
			// The upper levels are rewritten soon by compactions: compressing
			// them costs CPU (snappy was ~10% of Cairn's CPU at 100k events/s)
			// for little lasting gain. The lower levels, holding nearly all
			// the data, stay compressed.
			po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
		}
	}
	if opts.Retention < 0 {
		return nil, fmt.Errorf("open pebble store %s: negative retention %s", dir, opts.Retention)
	}
	opts.retentionDefaults()
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open pebble store %s: %w", dir, err)
	}
	if opts.UserCacheSize == 0 {
		opts.UserCacheSize = DefaultUserCacheSize
	}
	s := &Store{db: db, log: opts.Logger, commit: pebble.Sync, opts: opts, users: newUserCache(max(0, opts.UserCacheSize))}
	if opts.DeferSync {
		s.commit = pebble.NoSync
	}
	v, closer, err := db.Get(countKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, errors.Join(fmt.Errorf("read event count: %w", err), db.Close())
	default:
		if len(v) == 8 {
			s.count.Store(int64(binary.BigEndian.Uint64(v)))
		}
		closer.Close() //nolint:errcheck // the closer releases the value buffer of a successful Get; it has no error to report
	}
	if opts.Retention > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopPurge, s.purgeDone = cancel, make(chan struct{})
		s.log.Info("retention by periodic scan", "retention", opts.Retention.String(), "interval", opts.PurgeInterval.String())
		go s.purgeLoop(ctx)
	}
	return s, nil
}

// yieldEvery lets other goroutines run every 64th step of the insert
// path's lookup loops (n counts the steps). A 500-event batch is a few
// milliseconds of CPU, and Go preempts a running goroutine only after
// 10 ms: without yielding, request handlers woken by the spool's fsync
// wait behind the batcher for a core right after a burst.
func yieldEvery(n int) {
	if n&63 == 63 {
		runtime.Gosched()
	}
}

// userPrefix returns the key prefix of all of userID's events.
func userPrefix(b []byte, userID string) []byte {
	b = append(b, prefixUser)
	b = binary.AppendUvarint(b, uint64(len(userID)))
	return append(b, userID...)
}

func appendTimeKey(b []byte, ms int64) []byte {
	return binary.BigEndian.AppendUint64(b, ^uint64(ms))
}

func appendDescID(b []byte, id string) []byte {
	for i := 0; i < len(id); i++ {
		b = append(b, ^id[i])
	}
	return append(b, 0xFF)
}

// eventKey returns the journey key of e.
func eventKey(b []byte, e *cairn.Event) []byte {
	b = userPrefix(b, e.UserID)
	b = appendTimeKey(b, e.OccurredAt.UnixMilli())
	return appendDescID(b, e.EventID)
}

func idKey(b []byte, id string) []byte {
	b = append(b, prefixEvent)
	return append(b, id...)
}

// prefixEnd returns the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	return nil
}

// InsertEvents stores events idempotently by EventID. See cairn.EventStore.
func (s *Store) InsertEvents(ctx context.Context, events []cairn.Event) (cairn.InsertResult, error) {
	var res cairn.InsertResult
	if err := s.checkOpen(); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	// Dedup within the batch, then look the candidates up in the store in key
	// order through one iterator: sorted seeks reuse the blocks each level
	// has loaded, which is much cheaper than one Get per event.
	type candidate struct {
		key []byte
		ev  *cairn.Event
	}
	cands := make([]candidate, 0, len(events))
	seen := make(map[string]struct{}, len(events))
	for i := range events {
		e := &events[i]
		if e.EventID == "" {
			res.Rejected = append(res.Rejected, cairn.RejectedEvent{Event: *e, Reason: "missing eventId"})
			continue
		}
		if _, dup := seen[e.EventID]; dup {
			res.Duplicates++
			continue
		}
		seen[e.EventID] = struct{}{}
		cands = append(cands, candidate{key: idKey(nil, e.EventID), ev: e})
	}
	if len(cands) == 0 {
		return res, nil
	}
	// Events of erased ids received before their erasure are duplicates
	// (erase.go).
	users := make([]string, 0, 4)
	seenUser := make(map[string]struct{}, 4)
	for _, c := range cands {
		if _, ok := seenUser[c.ev.UserID]; !ok {
			seenUser[c.ev.UserID] = struct{}{}
			users = append(users, c.ev.UserID)
		}
	}
	markers, err := s.erasureMarkers(ctx, users)
	if err != nil {
		return cairn.InsertResult{}, err
	}
	if len(markers) > 0 {
		kept := cands[:0]
		for _, c := range cands {
			if at, ok := markers[c.ev.UserID]; ok && cairn.ErasedBefore(c.ev, at) {
				res.Duplicates++
				continue
			}
			kept = append(kept, c)
		}
		if cands = kept; len(cands) == 0 {
			return res, nil
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int { return bytes.Compare(a.key, b.key) })
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: cands[0].key, UpperBound: append(bytes.Clone(cands[len(cands)-1].key), 0)})
	if err != nil {
		return cairn.InsertResult{}, fmt.Errorf("dedup iterator: %w", err)
	}
	batch := s.db.NewBatchWithSize(len(cands) * 600)
	defer batch.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	var kbuf, vbuf []byte
	inserted := make([]*cairn.Event, 0, len(cands))
	for n, c := range cands {
		yieldEvery(n)
		if it.SeekPrefixGE(c.key) && bytes.Equal(it.Key(), c.key) {
			res.Duplicates++
			continue
		}
		kbuf = eventKey(kbuf[:0], c.ev)
		vbuf = c.ev.AppendBinary(vbuf[:0])
		if err := batch.Set(kbuf, vbuf, nil); err != nil {
			it.Close() //nolint:errcheck // leaving on the error returned below; the iterator is only released
			return cairn.InsertResult{}, fmt.Errorf("batch set: %w", err)
		}
		if err := batch.Set(c.key, kbuf, nil); err != nil {
			it.Close() //nolint:errcheck // leaving on the error returned below; the iterator is only released
			return cairn.InsertResult{}, fmt.Errorf("batch set: %w", err)
		}
		res.Inserted++
		inserted = append(inserted, c.ev)
	}
	if err := it.Close(); err != nil {
		return cairn.InsertResult{}, fmt.Errorf("dedup lookup: %w", err)
	}
	if res.Inserted == 0 {
		return res, nil
	}
	conflicts, identityCommitted, err := s.addIdentity(ctx, batch, inserted, markers)
	if err != nil {
		return cairn.InsertResult{}, err
	}
	res.LinkConflicts = conflicts
	insightsCommitted, err := s.addInsights(batch, inserted)
	if err != nil {
		return cairn.InsertResult{}, err
	}
	newCount := s.count.Load() + int64(res.Inserted)
	if err := batch.Set(countKey, binary.BigEndian.AppendUint64(nil, uint64(newCount)), nil); err != nil {
		return cairn.InsertResult{}, fmt.Errorf("batch set: %w", err)
	}
	if err := batch.Commit(s.commit); err != nil {
		return cairn.InsertResult{}, fmt.Errorf("commit events: %w", err)
	}
	s.count.Store(newCount)
	identityCommitted()
	insightsCommitted()
	return res, nil
}

// Journey returns a page of a user's events, newest first, merged with
// those of the anonymous ids merged into the user: a k-way merge of one
// range scan per id (at most cairn.MaxMergedIDs of them besides the user).
// A user without merged ids is the single range scan it always was. See
// cairn.EventStore.
func (s *Store) Journey(ctx context.Context, q cairn.JourneyQuery) (*cairn.JourneyPage, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > cairn.MaxJourneyLimit {
		return nil, cairn.Errorf(cairn.EINVALID, "limit must be between 1 and %d", cairn.MaxJourneyLimit)
	}
	var merged []string
	if !q.Unmerged {
		var err error
		if merged, err = s.mergedIDs(q.UserID, cairn.MaxMergedIDs); err != nil {
			return nil, err
		}
	}
	// Room for a full page up to 256 events (a 1000-event page then grows
	// twice, not ten times; a short journey does not pay for 1000).
	page := &cairn.JourneyPage{Events: make([]cairn.Event, 0, min(q.Limit, 256)), MergedIDs: merged}
	ids := append([]string{q.UserID}, merged...)
	var heads mergeHeap
	defer func() {
		for _, h := range heads {
			h.it.Close() //nolint:errcheck // each scan's result is checked with it.Error(); Close only releases it
		}
	}()
	for _, id := range ids {
		prefix := userPrefix(nil, id)
		lower, upper, ok := journeyBounds(prefix, q)
		if !ok {
			continue
		}
		it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return nil, fmt.Errorf("journey iterator: %w", err)
		}
		h := &mergeHead{it: it, skip: len(prefix)}
		if !it.First() {
			err := it.Error()
			it.Close() //nolint:errcheck // an empty scan; its result is it.Error(), checked here
			if err != nil {
				return nil, fmt.Errorf("journey scan: %w", err)
			}
			continue
		}
		heads = append(heads, h)
	}
	heap.Init(&heads)
	for len(heads) > 0 {
		if len(page.Events) == q.Limit {
			last := &page.Events[len(page.Events)-1]
			page.Next = &cairn.Cursor{OccurredAt: last.OccurredAt, EventID: last.EventID}
			break
		}
		h := heads[0]
		v, err := h.it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("journey read: %w", err)
		}
		var e cairn.Event
		if _, err := e.DecodeBinary(v); err != nil {
			return nil, fmt.Errorf("decode event at %q: %w", h.it.Key(), err)
		}
		page.Events = append(page.Events, e)
		if h.it.Next() {
			heap.Fix(&heads, 0)
			continue
		}
		if err := h.it.Error(); err != nil {
			return nil, fmt.Errorf("journey scan: %w", err)
		}
		heap.Pop(&heads)
		h.it.Close() //nolint:errcheck // the scan's result was checked with it.Error() just above
	}
	return page, nil
}

// journeyBounds returns the key range of q's page within one id's events
// (prefix is its userPrefix); ok is false when the range is empty.
func journeyBounds(prefix []byte, q cairn.JourneyQuery) (lower, upper []byte, ok bool) {
	lower = prefix
	if !q.To.IsZero() {
		lower = appendTimeKey(bytes.Clone(prefix), q.To.UnixMilli())
	}
	if q.After != nil {
		after := appendDescID(appendTimeKey(bytes.Clone(prefix), q.After.OccurredAt.UnixMilli()), q.After.EventID)
		after = append(after, 0x00)
		if bytes.Compare(after, lower) > 0 {
			lower = after
		}
	}
	upper = prefixEnd(prefix)
	if !q.From.IsZero() && q.From.UnixMilli() > 0 {
		upper = appendTimeKey(bytes.Clone(prefix), q.From.UnixMilli()-1)
	}
	return lower, upper, bytes.Compare(lower, upper) < 0
}

// mergeHead is one id's scan in a merged journey. Its key without the
// user prefix (time key, then descending eventId) orders events across ids
// exactly as the journey does: eventIds are unique, so there are no ties.
type mergeHead struct {
	it   *pebble.Iterator
	skip int // length of the user prefix
}

func (h *mergeHead) sortKey() []byte { return h.it.Key()[h.skip:] }

// mergeHeap is a min-heap of scans by their current event's sort key.
type mergeHeap []*mergeHead

func (m mergeHeap) Len() int           { return len(m) }
func (m mergeHeap) Less(i, j int) bool { return bytes.Compare(m[i].sortKey(), m[j].sortKey()) < 0 }
func (m mergeHeap) Swap(i, j int)      { m[i], m[j] = m[j], m[i] }
func (m *mergeHeap) Push(x any)        { *m = append(*m, x.(*mergeHead)) }
func (m *mergeHeap) Pop() any {
	old := *m
	h := old[len(old)-1]
	*m = old[:len(old)-1]
	return h
}

// CountEvents returns the number of stored events.
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	return s.count.Load(), nil
}

// ExportEvents calls fn for every event of userID (all users if empty), in
// key order: by user, newest first.
func (s *Store) ExportEvents(ctx context.Context, userID string, fn func(*cairn.Event) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	var lower []byte
	if userID == "" {
		lower = []byte{prefixUser}
	} else {
		lower = userPrefix(nil, userID)
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return fmt.Errorf("export iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases the finished scan
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("export read: %w", err)
		}
		var e cairn.Event
		if _, err := e.DecodeBinary(v); err != nil {
			return fmt.Errorf("decode event at %q: %w", it.Key(), err)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return it.Error()
}

// Sync makes every earlier InsertEvents durable with one fsync of Pebble's
// WAL (its log is sequential, so syncing it now covers all earlier writes).
func (s *Store) Sync(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.commit == pebble.Sync {
		return nil
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync pebble wal: %w", err)
	}
	return nil
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error { return s.checkOpen() }

// Close flushes the memtables to sstables (so the next Open has no log to
// replay) and closes the database.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.stopPurge != nil {
		s.stopPurge()
		<-s.purgeDone
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// Flush the memtables first: Pebble would otherwise replay them from
	// its WAL at the next Open (up to two 32 MiB memtables re-inserted and
	// flushed there: over a second of start-up), a cost better paid at
	// shutdown. A failed flush only leaves that replay to the next Open.
	flushErr := s.db.Flush()
	if flushErr != nil {
		s.log.Warn("flush pebble memtables before close", "err", flushErr)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close pebble store: %w", err)
	}
	return nil
}

// pebbleLogger adapts slog to Pebble's Logger.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
