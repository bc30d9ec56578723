package mongo

import (
	"context"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Erasure (cairn.Eraser). What must survive an erasure lives in one more
// collection of the events' database:
//
//	erasures: {_id: "e:" eventId}                 an erased event (tombstone)
//	          {_id: "u:" userId, erasedAt: Date}  an erased id (marker)
//
// InsertEvents reads it, by _id, for the eventIds and userIds of each batch
// (one more query per batch): an event whose id has a tombstone, or whose
// user has a marker and that was received at or before it, is skipped as a
// duplicate. Nothing expires these documents (the retention TTL index is on
// the events collection only): they hold as long as the collection is kept.
//
// EraseUser writes the markers first, then, in chunks of eraseChunk events,
// the tombstones and the deletes of the events, then deletes the derived
// documents (trackedUsers, trackedSessions, the identityLinks naming the
// user and those of its merged ids). A call that fails half-way is safe to
// retry: the links, which name the merged ids, go last.
const collErasures = "erasures"

// eraseChunk is the most events one round of EraseUser removes.
const eraseChunk = 10000

var _ cairn.Eraser = (*Store)(nil)

func tombstoneID(eventID string) string { return "e:" + eventID }
func markerID(userID string) string     { return "u:" + userID }

// EraseUser erases userID's events and derived data. See cairn.Eraser.
func (s *Store) EraseUser(ctx context.Context, userID string, now time.Time) (cairn.EraseResult, error) {
	res := cairn.EraseResult{AnonymousIDs: []string{}}
	if userID == "" {
		return res, cairn.Errorf(cairn.EINVALID, "userId must not be empty")
	}
	if s.ctx.Err() != nil {
		return res, cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	m, err := s.mergedIDs(ctx, []string{userID}, 0)
	if err != nil {
		return res, err
	}
	merged := m[userID]
	ids := append([]string{userID}, merged...)

	erasures := s.collection(collErasures)
	at := now.UTC().Truncate(time.Millisecond)
	models := make([]mongo.WriteModel, 0, len(ids))
	for _, id := range ids {
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: markerID(id)}}).
			SetReplacement(bson.D{{Key: "_id", Value: markerID(id)}, {Key: "erasedAt", Value: at}}).SetUpsert(true))
	}
	if _, err := s.bulkWrite(ctx, erasures, models); err != nil {
		return res, storeError("write erasure markers", err)
	}

	for {
		n, err := s.eraseChunk(ctx, ids)
		res.Events += n
		if err != nil {
			return res, err
		}
		if n == 0 {
			break
		}
	}

	inIDs := bson.D{{Key: "$in", Value: ids}}
	if _, err := s.collection(collTracked).DeleteMany(ctx, bson.D{{Key: "_id", Value: inIDs}}); err != nil {
		return res, storeError("erase tracked users", err)
	}
	if _, err := s.collection(collSessions).DeleteMany(ctx, bson.D{{Key: "userId", Value: inIDs}}); err != nil {
		return res, storeError("erase tracked sessions", err)
	}
	if len(merged) > 0 {
		if _, err := s.collection(collLinks).DeleteMany(ctx, bson.D{{Key: "anonymousId", Value: bson.D{{Key: "$in", Value: merged}}}}); err != nil {
			return res, storeError("erase identity links", err)
		}
	}
	if _, err := s.collection(collLinks).DeleteMany(ctx, bson.D{{Key: "userId", Value: userID}}); err != nil {
		return res, storeError("erase identity links", err)
	}
	res.AnonymousIDs = append(res.AnonymousIDs, merged...)
	s.log.Info("erased tracked user", "user_id", userID, "events", res.Events, "anonymous_ids", len(merged))
	return res, nil
}

// eraseChunk tombstones and deletes up to eraseChunk events of ids and
// returns how many it deleted (0 when none are left).
func (s *Store) eraseChunk(ctx context.Context, ids []string) (int64, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "userId", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(eraseChunk).SetBatchSize(eraseChunk))
	if err != nil {
		return 0, storeError("find events to erase", err)
	}
	var eventIDs []string
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup("_id").StringValueOK(); ok {
			eventIDs = append(eventIDs, id)
		}
	}
	err = cur.Err()
	cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor, which the server also times out
	if err != nil {
		return 0, storeError("find events to erase", err)
	}
	if len(eventIDs) == 0 {
		return 0, nil
	}
	docs := make([]any, len(eventIDs))
	for i, id := range eventIDs {
		docs[i] = bson.D{{Key: "_id", Value: tombstoneID(id)}}
	}
	if _, err := s.collection(collErasures).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
		out, ok := classifyInsertError(err)
		if !ok {
			return 0, storeError("write erased event ids", err)
		}
		for _, w := range out {
			if w.outcome != outcomeDuplicate { // tombstones of an earlier, interrupted call
				return 0, storeError("write erased event ids", err)
			}
		}
	}
	del, err := s.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: eventIDs}}}})
	if err != nil {
		return 0, storeError("erase events", err)
	}
	return del.DeletedCount, nil
}

// erased returns the indexes of the events that must not be stored: those
// with a tombstone, and those of a marked user received at or before its
// marker. Events without an eventId are ignored.
func (s *Store) erased(ctx context.Context, events []cairn.Event) (map[int]bool, error) {
	keys := make([]string, 0, len(events)+4)
	users := map[string]bool{}
	for i := range events {
		e := &events[i]
		if e.EventID == "" {
			continue
		}
		keys = append(keys, tombstoneID(e.EventID))
		if !users[e.UserID] {
			users[e.UserID] = true
			keys = append(keys, markerID(e.UserID))
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	cur, err := s.collection(collErasures).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
	if err != nil {
		return nil, storeError("read erasures", err)
	}
	defer cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor, which the server also times out
	tombs := map[string]bool{}
	markers := map[string]time.Time{}
	for cur.Next(ctx) {
		id, _ := cur.Current.Lookup("_id").StringValueOK()
		if ev, ok := strings.CutPrefix(id, "e:"); ok {
			tombs[ev] = true
		} else if user, ok := strings.CutPrefix(id, "u:"); ok {
			if t, ok := cur.Current.Lookup("erasedAt").TimeOK(); ok {
				markers[user] = t
			}
		}
	}
	if err := cur.Err(); err != nil {
		return nil, storeError("read erasures", err)
	}
	if len(tombs) == 0 && len(markers) == 0 {
		return nil, nil
	}
	out := map[int]bool{}
	for i := range events {
		e := &events[i]
		if e.EventID == "" {
			continue
		}
		if t, ok := markers[e.UserID]; tombs[e.EventID] || ok && cairn.ErasedBefore(e, t) {
			out[i] = true
		}
	}
	return out, nil
}
