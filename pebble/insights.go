package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
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
//	'N' 'u' be64(day ^ 1<<63)                         → HyperLogLog sketch (2^16 registers) of that day's userIds
//
// where hour and day count whole hours and days since the Unix epoch
// (occurredAt, UTC). Each batch accumulates its counts and user ids per key
// in memory, then does one read-modify-write per touched key — a handful
// of keys per batch. Trends sum hour counters into day, week or month
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

// addInsights adds the aggregates of the newly stored events to batch.
// Callers hold writeMu (the read-modify-writes rely on it).
func (s *Store) addInsights(batch *pebble.Batch, inserted []*cairn.Event) error {
	if s.opts.NoInsightAggregates {
		return nil
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
			return err
		}
		if len(v) == 8 {
			n += binary.BigEndian.Uint64(v)
		}
		if err := batch.Set(key, binary.BigEndian.AppendUint64(nil, n), nil); err != nil {
			return fmt.Errorf("batch set: %w", err)
		}
	}
	for d, users := range days {
		key := dayUsersKey(d)
		v, err := s.get(key)
		if err != nil {
			return err
		}
		sk := newSketch()
		if v != nil {
			if err := sk.UnmarshalBinary(v); err != nil {
				return fmt.Errorf("day %d user sketch: %w", d, err)
			}
		}
		for _, u := range users {
			sk.Insert([]byte(u))
		}
		enc, err := sk.MarshalBinary()
		if err != nil {
			return fmt.Errorf("encode user sketch: %w", err)
		}
		if err := batch.Set(key, enc, nil); err != nil {
			return fmt.Errorf("batch set: %w", err)
		}
	}
	return nil
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
	start := buckets[0]
	end := q.Interval.Next(buckets[len(buckets)-1])
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: dayUsersKey(dayOf(start.UnixMilli())), UpperBound: dayUsersKey(dayOf(end.UnixMilli()))})
	if err != nil {
		return nil, fmt.Errorf("users iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases it
	sketches := make([]*hyperloglog.Sketch, len(buckets))
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 10 {
			return nil, fmt.Errorf("bad users key %q", k)
		}
		day := int64(binary.BigEndian.Uint64(k[2:]) ^ 1<<63)
		idx := q.Interval.Index(q.From, time.UnixMilli(day*86400_000))
		if idx < 0 || idx >= len(buckets) {
			continue
		}
		sk := newSketch()
		if err := sk.UnmarshalBinary(it.Value()); err != nil {
			return nil, fmt.Errorf("day %d user sketch: %w", day, err)
		}
		if sketches[idx] == nil {
			sketches[idx] = sk
		} else if err := sketches[idx].Merge(sk); err != nil {
			return nil, fmt.Errorf("merge user sketches: %w", err)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("users scan: %w", err)
	}
	return UsersFromSketches(q.Interval, buckets, sketches), nil
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
	fromMs, toMs := sc.From.UnixMilli(), sc.To.UnixMilli()
	var events []cairn.Event
	var seek []byte
	for ok := it.First(); ok; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := userPrefixLen(it.Key())
		if err != nil {
			return err
		}
		prefix := bytes.Clone(it.Key()[:n])
		userID := string(prefix[len(prefix)-int(binaryUvarintLen(prefix)):])
		seek = appendTimeKey(append(seek[:0], prefix...), toMs)
		events = events[:0]
		for ok = it.SeekGE(seek); ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
			k := it.Key()
			ms := int64(^binary.BigEndian.Uint64(k[n : n+8]))
			if ms < fromMs {
				break
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return fmt.Errorf("insight read: %w", err)
			}
			var e cairn.Event
			if _, err := e.DecodeBinary(v); err != nil {
				return fmt.Errorf("decode event at %q: %w", k, err)
			}
			if sc.Wants(e.Type) {
				events = append(events, e)
			}
		}
		if len(events) > 0 {
			slices.Reverse(events)
			person, err := s.LinkedUser(ctx, userID)
			if err != nil {
				return err
			}
			if person == "" {
				person = userID
			}
			if err := fn(person, events); err != nil {
				return err
			}
		}
		if end := prefixEnd(prefix); end != nil {
			ok = it.SeekGE(end)
		} else {
			ok = false
		}
	}
	return it.Error()
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
