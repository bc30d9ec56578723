package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/cairn-dev/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// Insights (cairn.InsightStore). InsertEvents maintains, in the same batch
// as the newly stored events and only for them (so a duplicate, a replay
// or a re-delivery never changes them), two aggregates under prefix 'N':
//
//	'N' 'h' be64(hour ^ 1<<63) string(type) sourceId  → be64 number of events of that hour, type and source
//	'N' 'u' be64(day ^ 1<<63)                         → be64(its estimate) HyperLogLog sketch (2^16 registers) of that day's userIds
//	'N' 'v' be64(day ^ 1<<63) be64(seq)               → a delta of that sketch (see addUserSketches)
//
// where hour and day count whole hours and days since the Unix epoch
// (occurredAt, UTC). Each batch accumulates its counts and user ids per key
// in memory, then does one read-modify-write per touched counter and writes
// one small sketch delta per touched day — a handful of keys per batch. Trends sum hour counters into day, week or month
// buckets (a 90-day range is a few thousand keys in one range scan);
// unique users merge day sketches into weeks and months.
//
// Funnels, retention and top values are computed by package insights from
// ScanInsightEvents: per user, one seek to the range's newest event and a
// forward read to its oldest (keys hold occurredAt descending), then one
// seek past the user.
//
// Erasure and retention delete events, and so they leave every scanned
// insight (funnels, retention, top values). The precomputed counters and
// sketches are kept: they hold no event, only per-hour counts and hashed
// user ids, so trends and unique users still count erased and expired
// events for the hours and days they happened in.
const prefixInsight = 'N'

const (
	kindHourCount = 'h'
	kindDayUsers  = 'u'
)

var _ cairn.InsightStore = (*Store)(nil)

func orderedInt(n int64) uint64 { return uint64(n) ^ 1<<63 }

func hourCountKey(hour int64, typ, sourceID string) []byte {
	b := make([]byte, 0, 2+8+1+len(typ)+len(sourceID))
	b = binary.BigEndian.AppendUint64(append(b, prefixInsight, kindHourCount), orderedInt(hour))
	b = appendString(b, typ)
	return append(b, sourceID...)
}

func dayUsersKey(day int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixInsight, kindDayUsers}, orderedInt(day))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func hourOf(ms int64) int64 { return floorDiv(ms, 3600_000) }
func dayOf(ms int64) int64  { return floorDiv(ms, 86400_000) }

type hourCounter struct {
	hour     int64
	typ      string
	sourceID string
}

// addInsights adds the aggregates of the newly stored events to batch and
// returns the function to call once the batch is committed (it installs
// the updated cached sketches; without it, they are loaded again). Callers hold writeMu (the read-modify-writes
// rely on it).
func (s *Store) addInsights(batch *pebble.Batch, inserted []*cairn.Event) (func(), error) {
	if s.opts.NoInsightAggregates {
		return func() {}, nil
	}
	counts := make(map[hourCounter]uint64, 8)
	days := make(map[int64][]string, 2)
	for _, e := range inserted {
		ms := e.OccurredAt.UnixMilli()
		counts[hourCounter{hourOf(ms), e.Type, e.SourceID}]++
		d := dayOf(ms)
		days[d] = append(days[d], e.UserID)
	}
	for c, n := range counts {
		key := hourCountKey(c.hour, c.typ, c.sourceID)
		v, err := s.get(key)
		if err != nil {
			return nil, err
		}
		if len(v) == 8 {
			n += binary.BigEndian.Uint64(v)
		}
		if err := batch.Set(key, binary.BigEndian.AppendUint64(nil, n), nil); err != nil {
			return nil, fmt.Errorf("batch set: %w", err)
		}
	}
	return s.addUserSketches(batch, days)
}

// Day user sketches are written as deltas: each batch adds, per day it
// touches, a small (sparse) sketch of its users only,
//
//	'N' 'v' be64(day ^ 1<<63) be64(seq) → HyperLogLog sketch of one batch's userIds of that day
//
// and the union — base 'N' 'u' plus every delta — is the day's sketch. A
// day's full sketch (64 KiB once dense) is rewritten, replacing its deltas
// in the same batch, only every maxSketchDeltas batches, or when the
// stream has moved on to a later day; so a batch writes a few KiB of
// sketches rather than 64 KiB. The store keeps each recently touched
// day's union in memory (under writeMu), loaded from its keys on first
// touch.
const kindDayDelta = 'v'

// maxSketchDeltas is the most deltas a day keeps before its full sketch is
// rewritten.
const maxSketchDeltas = 32

// daySketch is a cached day: the union of its base and deltas.
type daySketch struct {
	sk       *hyperloglog.Sketch
	deltas   int    // delta keys stored: seqs firstSeq … nextSeq-1
	firstSeq uint64 // seq of the oldest stored delta
	nextSeq  uint64 // seq of the next delta
}

func dayDeltaPrefix(day int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixInsight, kindDayDelta}, orderedInt(day))
}

// loadDay reads a day's base and deltas into one sketch.
func (s *Store) loadDay(day int64) (*daySketch, error) {
	ds := &daySketch{sk: newSketch()}
	v, err := s.get(dayUsersKey(day))
	if err != nil {
		return nil, err
	}
	if v != nil {
		if len(v) < 8 {
			return nil, fmt.Errorf("day %d user sketch: %w", day, errBadRecord)
		}
		if err := ds.sk.UnmarshalBinary(v[8:]); err != nil {
			return nil, fmt.Errorf("day %d user sketch: %w", day, err)
		}
	}
	prefix := dayDeltaPrefix(day)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("sketch iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases it
	for ok := it.First(); ok; ok = it.Next() {
		d := newSketch()
		if err := d.UnmarshalBinary(it.Value()); err != nil {
			return nil, fmt.Errorf("day %d user sketch delta: %w", day, err)
		}
		if err := ds.sk.Merge(d); err != nil {
			return nil, fmt.Errorf("merge user sketches: %w", err)
		}
		if k := it.Key(); len(k) == len(prefix)+8 {
			seq := binary.BigEndian.Uint64(k[len(prefix):])
			if ds.deltas == 0 {
				ds.firstSeq = seq
			}
			ds.nextSeq = seq + 1
		}
		ds.deltas++
	}
	if ds.deltas == 0 {
		ds.firstSeq = ds.nextSeq
	}
	return ds, it.Error()
}

// compactDay writes sk as day's base sketch and deletes its deltas
// firstSeq … nextSeq-1 (point deletes: range deletions would slow every
// later read of the memtable).
func compactDay(batch *pebble.Batch, day int64, sk *hyperloglog.Sketch, firstSeq, nextSeq uint64) error {
	enc, err := sk.AppendBinary(binary.BigEndian.AppendUint64(nil, sk.Estimate()))
	if err != nil {
		return fmt.Errorf("encode user sketch: %w", err)
	}
	if err := batch.Set(dayUsersKey(day), enc, nil); err != nil {
		return fmt.Errorf("batch set: %w", err)
	}
	prefix := dayDeltaPrefix(day)
	for seq := firstSeq; seq < nextSeq; seq++ {
		if err := batch.Delete(binary.BigEndian.AppendUint64(prefix, seq), nil); err != nil {
			return fmt.Errorf("batch delete: %w", err)
		}
	}
	return nil
}

// addUserSketches adds each day's users to batch as a delta (or a
// rewritten full sketch), and rewrites the cached days the batch does not
// touch that are older than those it does. Callers hold writeMu.
func (s *Store) addUserSketches(batch *pebble.Batch, days map[int64][]string) (func(), error) {
	next := make(map[int64]*daySketch, len(days))
	var latest int64 = -1 << 62
	for d, users := range days {
		latest = max(latest, d)
		cur := s.sketches[d]
		if cur == nil {
			var err error
			if cur, err = s.loadDay(d); err != nil {
				return nil, err
			}
		}
		// The cached union is updated in place: it leaves the cache until
		// the batch is committed (a failed commit leaves the day to be
		// loaded again from its keys).
		delete(s.sketches, d)
		ds := &daySketch{sk: cur.sk, deltas: cur.deltas + 1, firstSeq: cur.firstSeq, nextSeq: cur.nextSeq + 1}
		delta := newSketch()
		for _, u := range users {
			ds.sk.Insert([]byte(u))
			delta.Insert([]byte(u))
		}
		if ds.deltas >= maxSketchDeltas {
			ds.deltas, ds.firstSeq, ds.nextSeq = 0, cur.nextSeq, cur.nextSeq
			if err := compactDay(batch, d, ds.sk, cur.firstSeq, cur.nextSeq); err != nil {
				return nil, err
			}
		} else {
			enc, err := delta.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("encode user sketch: %w", err)
			}
			if err := batch.Set(binary.BigEndian.AppendUint64(dayDeltaPrefix(d), cur.nextSeq), enc, nil); err != nil {
				return nil, fmt.Errorf("batch set: %w", err)
			}
		}
		next[d] = ds
	}
	var evict []int64
	for d, ds := range s.sketches {
		if _, touched := days[d]; touched || d >= latest {
			continue
		}
		if ds.deltas > 0 {
			if err := compactDay(batch, d, ds.sk, ds.firstSeq, ds.nextSeq); err != nil {
				return nil, err
			}
		}
		evict = append(evict, d)
	}
	return func() {
		if s.sketches == nil {
			s.sketches = make(map[int64]*daySketch)
		}
		for _, d := range evict {
			delete(s.sketches, d)
		}
		maps.Copy(s.sketches, next)
	}, nil
}

// Trends sums the hour counters of q's range. See cairn.InsightStore.
func (s *Store) Trends(ctx context.Context, q cairn.TrendsQuery) (*cairn.Trends, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	start := q.Interval.Truncate(q.From)
	end := q.Interval.Next(q.Interval.Truncate(q.To))
	nb := q.Interval.Index(q.From, q.To) + 1
	lower := binary.BigEndian.AppendUint64([]byte{prefixInsight, kindHourCount}, orderedInt(hourOf(start.UnixMilli())))
	upper := binary.BigEndian.AppendUint64([]byte{prefixInsight, kindHourCount}, orderedInt(hourOf(end.UnixMilli())))
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("trends iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases it
	counts := make(map[string][]int64)
	lastHour, idx := int64(-1<<62), 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 10 {
			return nil, fmt.Errorf("bad trends key %q", k)
		}
		hour := int64(binary.BigEndian.Uint64(k[2:10]) ^ 1<<63)
		typ, src, ok := readString(k[10:])
		if !ok {
			return nil, fmt.Errorf("bad trends key %q", k)
		}
		if q.SourceID != "" && string(src) != q.SourceID || len(q.Types) > 0 && !slices.Contains(q.Types, typ) {
			continue
		}
		v := it.Value()
		if len(v) != 8 {
			return nil, fmt.Errorf("bad trends counter at %q", k)
		}
		if hour != lastHour {
			lastHour = hour
			idx = q.Interval.Index(q.From, time.UnixMilli(hour*3600_000))
		}
		c := counts[typ]
		if c == nil {
			c = make([]int64, nb)
			counts[typ] = c
		}
		if idx >= 0 && idx < nb {
			c[idx] += int64(binary.BigEndian.Uint64(v))
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("trends scan: %w", err)
	}
	return cairn.NewTrends(q, counts), nil
}

// UniqueUsers merges the day sketches of each bucket. See
// cairn.InsightStore.
func (s *Store) UniqueUsers(ctx context.Context, q cairn.UsersQuery) (*cairn.UniqueUsers, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	buckets := q.Interval.Buckets(q.From, q.To)
	first, last := dayOf(buckets[0].UnixMilli()), dayOf(q.Interval.Next(buckets[len(buckets)-1]).UnixMilli())
	bucket := func(day int64) int { return q.Interval.Index(q.From, time.UnixMilli(day*86400_000)) }
	sketches := make([]*hyperloglog.Sketch, len(buckets))
	merge := func(idx int, raw []byte) error {
		sk := newSketch()
		if err := sk.UnmarshalBinary(raw); err != nil {
			return fmt.Errorf("user sketch: %w", err)
		}
		if sketches[idx] == nil {
			sketches[idx] = sk
			return nil
		}
		return sketches[idx].Merge(sk)
	}
	// The deltas, then the bases: a day's sketch is their union. A day
	// bucket whose day has no deltas takes the estimate stored with its
	// base (Estimate costs milliseconds at 2^16 registers).
	withDeltas := map[int64]bool{}
	err := s.scanSketches(ctx, kindDayDelta, first, last, func(day int64, v []byte) error {
		withDeltas[day] = true
		if idx := bucket(day); idx >= 0 && idx < len(buckets) {
			return merge(idx, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	known := make(map[int]int64)
	err = s.scanSketches(ctx, kindDayUsers, first, last, func(day int64, v []byte) error {
		idx := bucket(day)
		if idx < 0 || idx >= len(buckets) {
			return nil
		}
		if len(v) < 8 {
			return fmt.Errorf("day %d user sketch: %w", day, errBadRecord)
		}
		if q.Interval == cairn.IntervalDay && !withDeltas[day] {
			known[idx] = int64(binary.BigEndian.Uint64(v))
			return nil
		}
		return merge(idx, v[8:])
	})
	if err != nil {
		return nil, err
	}
	u := UsersFromSketches(q.Interval, buckets, sketches)
	for idx, n := range known {
		u.Points[idx].Users = n
	}
	return u, nil
}

// scanSketches calls fn with the day and value of every key of kind
// (kindDayUsers or kindDayDelta) for the days [first, last).
func (s *Store) scanSketches(ctx context.Context, kind byte, first, last int64, fn func(day int64, v []byte) error) error {
	lower := binary.BigEndian.AppendUint64([]byte{prefixInsight, kind}, orderedInt(first))
	upper := binary.BigEndian.AppendUint64([]byte{prefixInsight, kind}, orderedInt(last))
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("users iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases it
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 10 {
			return fmt.Errorf("bad users key %q", k)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("users read: %w", err)
		}
		if err := fn(int64(binary.BigEndian.Uint64(k[2:10])^1<<63), v); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("users scan: %w", err)
	}
	return nil
}

// UsersFromSketches builds the answer from one merged sketch per bucket
// (nil for none).
func UsersFromSketches(iv cairn.Interval, buckets []time.Time, sketches []*hyperloglog.Sketch) *cairn.UniqueUsers {
	u := &cairn.UniqueUsers{Interval: iv, RelativeError: cairn.HLLRelativeError, Points: make([]cairn.UsersPoint, len(buckets))}
	for i, b := range buckets {
		u.Points[i].T = b
		if sketches[i] != nil {
			u.Points[i].Users = int64(sketches[i].Estimate())
		}
	}
	return u
}

// ScanInsightEvents reads, user by user, the events of sc's range. See
// cairn.InsightStore.
func (s *Store) ScanInsightEvents(ctx context.Context, sc cairn.InsightScan, fn func(person string, events []cairn.Event) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{prefixUser}, UpperBound: []byte{prefixUser + 1}})
	if err != nil {
		return fmt.Errorf("insight iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases it
	links, err := s.allLinks(ctx)
	if err != nil {
		return err
	}
	fromMs, toMs := sc.From.UnixMilli(), sc.To.UnixMilli()
	var events []cairn.Event
	var prefix []byte // the current user's
	var userID string
	flush := func() error {
		if len(events) == 0 {
			return nil
		}
		slices.Reverse(events)
		person := userID
		if l, ok := links[userID]; ok {
			person = l
		}
		err := fn(person, events)
		events = events[:0]
		return err
	}
	// Keys are read in order; the ones of a user outside the range are
	// stepped over with Next while they are few, and skipped with one seek
	// past maxSkip of them.
	const maxSkip = 16
	skipped := 0
	types := make(map[string]string) // interned event types
	for ok := it.First(); ok; {
		k := it.Key()
		if prefix == nil || !bytes.HasPrefix(k, prefix) {
			if err := flush(); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := userPrefixLen(k)
			if err != nil {
				return err
			}
			prefix = append(prefix[:0], k[:n]...)
			userID = string(prefix[n-int(binaryUvarintLen(prefix)):])
			skipped = 0
		}
		if len(k) < len(prefix)+8 {
			return fmt.Errorf("bad event key %q", k)
		}
		ms := int64(^binary.BigEndian.Uint64(k[len(prefix) : len(prefix)+8]))
		switch {
		case ms > toMs: // newer than the range
			if skipped++; skipped > maxSkip {
				ok, skipped = it.SeekGE(appendTimeKey(bytes.Clone(prefix), toMs)), 0
			} else {
				ok = it.Next()
			}
			continue
		case ms < fromMs: // older: the rest of the user's keys are too
			if skipped++; skipped > maxSkip {
				end := prefixEnd(prefix)
				ok, skipped = end != nil && it.SeekGE(end), 0
			} else {
				ok = it.Next()
			}
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("insight read: %w", err)
		}
		id, typ, ms, tok := cairn.DecodeBinaryKey(v)
		if !tok {
			return fmt.Errorf("decode event at %q: %w", k, cairn.ErrBadEncoding)
		}
		t, known := types[string(typ)]
		if !known {
			t = string(typ)
			types[t] = t
		}
		switch {
		case !sc.Wants(t):
		case sc.Minimal:
			events = append(events, cairn.Event{EventID: string(id), UserID: userID, Type: t, OccurredAt: time.UnixMilli(ms).UTC()})
		default:
			var e cairn.Event
			if _, err := e.DecodeBinary(v); err != nil {
				return fmt.Errorf("decode event at %q: %w", k, err)
			}
			events = append(events, e)
		}
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("insight scan: %w", err)
	}
	return flush()
}

// binaryUvarintLen returns the user id length encoded after the prefix
// byte of a user prefix.
func binaryUvarintLen(prefix []byte) uint64 {
	n, _ := binary.Uvarint(prefix[1:])
	return n
}

// newSketch returns an empty user sketch: HyperLogLog with 2^16 registers
// (standard error cairn.HLLRelativeError), sparse while small.
func newSketch() *hyperloglog.Sketch { return hyperloglog.New16() }

// allLinks returns every anonymous id's winning user: one scan of the link
// keys, so that a scan of many users needs no lookup per user.
func (s *Store) allLinks(ctx context.Context) (map[string]string, error) {
	prefix := []byte{prefixIdentity, kindLink}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("links iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases it
	links := make(map[string]string)
	for ok := it.First(); ok; ok = it.Next() {
		l, err := decodeLink(it.Value())
		if err != nil {
			return nil, fmt.Errorf("link of %q: %w", it.Key()[2:], err)
		}
		links[string(it.Key()[2:])] = l.userID
	}
	return links, it.Error()
}
