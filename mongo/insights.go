package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/cairn-dev/cairn"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Insights (cairn.InsightStore). After its insertMany, InsertEvents updates
// two collections for the events it newly inserted (never for duplicates):
//
//	insightCounts: {_id: "<hourMs>|<type>|<sourceId>", hour: Date, type, sourceId, count: long}
//	insightUsers:  {_id: "<dayMs>|<writer>", day: Date, writer, sketch: binary}
//
// Counters are one bulk of upserts with $inc per (hour, type, source)
// touched by the batch: commutative, so any number of writer processes
// sharing the database (issue 13) add up exactly. A sketch (HyperLogLog,
// 2^16 registers) is read, updated and replaced only by the Store that
// owns it: each Store has its own writer id (a random UUID chosen at Open)
// and serializes its own sketch updates, so no two processes ever write
// the same document, and UniqueUsers merges the sketches of every writer
// for each day at query time. A restarted process uses a new writer id:
// days written before and after have one more document each.
//
// Funnels, retention and top values (package insights) read
// ScanInsightEvents: one find on occurredAt (and type), grouped by userId
// in memory; persons are resolved with one read of the identity links.
//
// As with identity (identity.go), these writes follow the insertMany: if
// the server is lost between the two, the retried batch's events are
// duplicates and their aggregates are not counted. Erasure and retention
// remove events, so scanned insights no longer see them; counters and
// sketches (no event data, only counts and hashed user ids) are kept.
const (
	collInsightCounts = "insightCounts"
	collInsightUsers  = "insightUsers"
)

var _ cairn.InsightStore = (*Store)(nil)

// insightWriter is the per-Store state of the sketch updates.
type insightWriter struct {
	once sync.Once
	id   string
	mu   sync.Mutex // serializes this Store's sketch read-modify-writes
}

func (w *insightWriter) writerID() string {
	w.once.Do(func() { w.id = uuid.NewString() })
	return w.id
}

func newSketch() *hyperloglog.Sketch { return hyperloglog.New16() }

const (
	hourMs = int64(time.Hour / time.Millisecond)
	dayMs  = 24 * hourMs
)

func floorTo(ms, unit int64) int64 {
	q := ms / unit
	if ms%unit != 0 && ms < 0 {
		q--
	}
	return q * unit
}

// applyInsights updates the aggregates for the newly inserted events.
func (s *Store) applyInsights(ctx context.Context, evs []*cairn.Event) error {
	if len(evs) == 0 {
		return nil
	}
	type counter struct {
		hour     int64
		typ, src string
	}
	counts := map[counter]int64{}
	days := map[int64][]string{}
	for _, e := range evs {
		ms := e.OccurredAt.UnixMilli()
		counts[counter{floorTo(ms, hourMs), e.Type, e.SourceID}]++
		d := floorTo(ms, dayMs)
		days[d] = append(days[d], e.UserID)
	}
	models := make([]mongo.WriteModel, 0, len(counts))
	for c, n := range counts {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: strconv.FormatInt(c.hour, 10) + "|" + c.typ + "|" + c.src}}).
			SetUpdate(bson.D{
				{Key: "$inc", Value: bson.D{{Key: "count", Value: n}}},
				{Key: "$setOnInsert", Value: bson.D{{Key: "hour", Value: bson.DateTime(c.hour)}, {Key: "type", Value: c.typ}, {Key: "sourceId", Value: c.src}}},
			}).SetUpsert(true))
	}
	if _, err := s.bulkWrite(ctx, s.collection(collInsightCounts), models); err != nil {
		return storeError("update insight counters", err)
	}
	w := &s.insights
	writer := w.writerID()
	w.mu.Lock()
	defer w.mu.Unlock()
	users := s.collection(collInsightUsers)
	for d, ids := range days {
		id := strconv.FormatInt(d, 10) + "|" + writer
		sk := newSketch()
		var doc struct {
			Sketch []byte `bson:"sketch"`
		}
		err := users.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
		switch {
		case err == nil:
			if err := sk.UnmarshalBinary(doc.Sketch); err != nil {
				return fmt.Errorf("user sketch %s: %w", id, err)
			}
		case !errors.Is(err, mongo.ErrNoDocuments):
			return storeError("read user sketch", err)
		}
		for _, u := range ids {
			sk.Insert([]byte(u))
		}
		enc, err := sk.MarshalBinary()
		if err != nil {
			return fmt.Errorf("encode user sketch: %w", err)
		}
		_, err = users.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "_id", Value: id}, {Key: "day", Value: bson.DateTime(d)}, {Key: "writer", Value: writer},
				{Key: "sketch", Value: bson.Binary{Data: enc}}},
			options.Replace().SetUpsert(true))
		if err != nil {
			return storeError("write user sketch", err)
		}
	}
	return nil
}

// ensureInsightIndexes creates the indexes of the insight collections
// (idempotent). The events get no occurredAt index: it would cost every
// insert, and the scans read most of a range anyway.
func (s *Store) ensureInsightIndexes(ctx context.Context) error {
	for _, ix := range []struct {
		coll, field, name string
	}{
		{collInsightCounts, "hour", "cairn_insight_hour"},
		{collInsightUsers, "day", "cairn_insight_day"},
	} {
		_, err := s.collection(ix.coll).Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: ix.field, Value: 1}}, Options: options.Index().SetName(ix.name)})
		if code := serverCode(err); err != nil && code != codeIndexOptions && code != codeIndexKeySpecs {
			return storeError("create insight indexes", err)
		}
	}
	return nil
}

func (s *Store) checkInsightsOpen() error {
	if s.ctx.Err() != nil {
		return cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	return nil
}

// Trends sums the hour counters of q's range. See cairn.InsightStore.
func (s *Store) Trends(ctx context.Context, q cairn.TrendsQuery) (*cairn.Trends, error) {
	if err := s.checkInsightsOpen(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	start := q.Interval.Truncate(q.From)
	end := q.Interval.Next(q.Interval.Truncate(q.To))
	filter := bson.D{{Key: "hour", Value: bson.D{{Key: "$gte", Value: bson.DateTime(start.UnixMilli())}, {Key: "$lt", Value: bson.DateTime(end.UnixMilli())}}}}
	if q.SourceID != "" {
		filter = append(filter, bson.E{Key: "sourceId", Value: q.SourceID})
	}
	if len(q.Types) > 0 {
		filter = append(filter, bson.E{Key: "type", Value: bson.D{{Key: "$in", Value: q.Types}}})
	}
	cur, err := s.collection(collInsightCounts).Find(ctx, filter, options.Find().SetBatchSize(10000))
	if err != nil {
		return nil, storeError("read insight counters", err)
	}
	defer cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor
	nb := q.Interval.Index(q.From, q.To) + 1
	counts := map[string][]int64{}
	for cur.Next(ctx) {
		var doc struct {
			Hour  time.Time `bson:"hour"`
			Type  string    `bson:"type"`
			Count int64     `bson:"count"`
		}
		if err := cur.Decode(&doc); err != nil {
			return nil, storeError("decode insight counter", err)
		}
		i := q.Interval.Index(q.From, doc.Hour)
		if i < 0 || i >= nb {
			continue
		}
		if counts[doc.Type] == nil {
			counts[doc.Type] = make([]int64, nb)
		}
		counts[doc.Type][i] += doc.Count
	}
	if err := cur.Err(); err != nil {
		return nil, storeError("read insight counters", err)
	}
	return cairn.NewTrends(q, counts), nil
}

// UniqueUsers merges every writer's day sketches per bucket. See
// cairn.InsightStore.
func (s *Store) UniqueUsers(ctx context.Context, q cairn.UsersQuery) (*cairn.UniqueUsers, error) {
	if err := s.checkInsightsOpen(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	buckets := q.Interval.Buckets(q.From, q.To)
	end := q.Interval.Next(buckets[len(buckets)-1])
	cur, err := s.collection(collInsightUsers).Find(ctx, bson.D{{Key: "day", Value: bson.D{
		{Key: "$gte", Value: bson.DateTime(buckets[0].UnixMilli())}, {Key: "$lt", Value: bson.DateTime(end.UnixMilli())}}}})
	if err != nil {
		return nil, storeError("read user sketches", err)
	}
	defer cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor
	sketches := make([]*hyperloglog.Sketch, len(buckets))
	for cur.Next(ctx) {
		var doc struct {
			Day    time.Time `bson:"day"`
			Sketch []byte    `bson:"sketch"`
		}
		if err := cur.Decode(&doc); err != nil {
			return nil, storeError("decode user sketch", err)
		}
		i := q.Interval.Index(q.From, doc.Day)
		if i < 0 || i >= len(buckets) {
			continue
		}
		sk := newSketch()
		if err := sk.UnmarshalBinary(doc.Sketch); err != nil {
			return nil, fmt.Errorf("user sketch of %s: %w", doc.Day, err)
		}
		if sketches[i] == nil {
			sketches[i] = sk
		} else if err := sketches[i].Merge(sk); err != nil {
			return nil, fmt.Errorf("merge user sketches: %w", err)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, storeError("read user sketches", err)
	}
	u := &cairn.UniqueUsers{Interval: q.Interval, RelativeError: cairn.HLLRelativeError, Points: make([]cairn.UsersPoint, len(buckets))}
	for i, b := range buckets {
		u.Points[i].T = b
		if sketches[i] != nil {
			u.Points[i].Users = int64(sketches[i].Estimate())
		}
	}
	return u, nil
}

// ScanInsightEvents reads the events of sc's range, grouped by userId in
// memory. See cairn.InsightStore.
func (s *Store) ScanInsightEvents(ctx context.Context, sc cairn.InsightScan, fn func(person string, events []cairn.Event) error) error {
	if err := s.checkInsightsOpen(); err != nil {
		return err
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	filter := bson.D{{Key: "occurredAt", Value: bson.D{
		{Key: "$gte", Value: bson.DateTime(sc.From.UnixMilli())}, {Key: "$lte", Value: bson.DateTime(sc.To.UnixMilli())}}}}
	if len(sc.Types) > 0 {
		filter = append(filter, bson.E{Key: "type", Value: bson.D{{Key: "$in", Value: sc.Types}}})
	}
	fo := options.Find().SetBatchSize(5000)
	if sc.Minimal {
		fo.SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "userId", Value: 1}, {Key: "type", Value: 1}, {Key: "occurredAt", Value: 1}})
	}
	cur, err := s.coll.Find(ctx, filter, fo)
	if err != nil {
		return storeError("scan events", err)
	}
	defer cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor
	byUser := map[string][]cairn.Event{}
	for cur.Next(ctx) {
		e, err := decodeEvent(cur.Current)
		if err != nil {
			return storeError("scan events", err)
		}
		byUser[e.UserID] = append(byUser[e.UserID], e)
	}
	if err := cur.Err(); err != nil {
		return storeError("scan events", err)
	}
	ids := make([]string, 0, len(byUser))
	for id := range byUser {
		ids = append(ids, id)
	}
	persons := make(map[string]string)
	for i := 0; i < len(ids); i += 1000 {
		w, err := s.winners(ctx, slices.Clone(ids[i:min(i+1000, len(ids))]))
		if err != nil {
			return err
		}
		for k, v := range w {
			persons[k] = v
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		evs := byUser[id]
		slices.SortFunc(evs, func(a, b cairn.Event) int {
			return cairn.CompareEventKey(a.OccurredAt, a.EventID, b.OccurredAt, b.EventID)
		})
		person := persons[id]
		if person == "" {
			person = id
		}
		if err := fn(person, evs); err != nil {
			return err
		}
	}
	return nil
}
