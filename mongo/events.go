package mongo

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// InsertEvents stores events with one unordered insertMany. Duplicate-key
// errors count as duplicates; documents the server can never accept are
// returned in Rejected; any other failure returns an error (EUNAVAILABLE when
// the server cannot be reached) and the call may be retried as a whole. See
// cairn.EventStore.
func (s *Store) InsertEvents(ctx context.Context, events []cairn.Event) (cairn.InsertResult, error) {
	var res cairn.InsertResult
	if s.ctx.Err() != nil {
		return res, cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	// Erased events and events of erased users received before their
	// erasure are duplicates (erase.go).
	skip, err := s.erased(ctx, events)
	if err != nil {
		return res, err
	}
	docs := make([]any, 0, len(events))
	origin := make([]int, 0, len(events)) // docs[i] is events[origin[i]]
	for i := range events {
		e := &events[i]
		if e.EventID == "" {
			res.Rejected = append(res.Rejected, cairn.RejectedEvent{Event: *e, Reason: "missing eventId"})
			continue
		}
		if skip[i] {
			res.Duplicates++
			continue
		}
		doc, err := eventDocument(e)
		if err != nil {
			if errors.Is(err, errPermanent) {
				res.Rejected = append(res.Rejected, cairn.RejectedEvent{Event: *e, Reason: err.Error()})
				continue
			}
			return cairn.InsertResult{}, &cairn.Error{Code: cairn.EINTERNAL, Message: "Cannot encode event.", Err: fmt.Errorf("encode event %s: %w", e.EventID, err)}
		}
		docs = append(docs, bson.Raw(doc))
		origin = append(origin, i)
	}
	if len(docs) == 0 {
		return res, nil
	}

	_, err = s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		res.Inserted = len(docs)
		inserted := make([]*cairn.Event, len(origin))
		for i, o := range origin {
			inserted[i] = &events[o]
		}
		if res.LinkConflicts, err = s.applyIdentity(ctx, inserted); err != nil {
			return cairn.InsertResult{}, err
		}
		if err := s.applyInsights(ctx, inserted); err != nil {
			return cairn.InsertResult{}, err
		}
		return res, nil
	}
	out, ok := classifyInsertError(err)
	if !ok {
		return cairn.InsertResult{}, storeError("insert events", err)
	}
	for _, w := range out {
		if w.index < 0 || w.index >= len(origin) {
			return cairn.InsertResult{}, storeError("insert events", fmt.Errorf("write error for unknown index %d: %w", w.index, err))
		}
	}
	var retry []string
	for _, w := range out {
		ev := &events[origin[w.index]]
		switch w.outcome {
		case outcomeDuplicate:
			res.Duplicates++
		case outcomePermanent:
			res.Rejected = append(res.Rejected, cairn.RejectedEvent{Event: *ev, Reason: w.reason})
		default:
			retry = append(retry, ev.EventID+": "+w.reason)
		}
	}
	if len(retry) > 0 {
		s.log.Warn("insert failed for some events; the batch will be retried", "failed", len(retry), "first", retry[0])
		return cairn.InsertResult{}, storeError("insert events", err)
	}
	res.Inserted = len(docs) - len(out)
	failed := make(map[int]bool, len(out))
	for _, w := range out {
		failed[w.index] = true
	}
	inserted := make([]*cairn.Event, 0, res.Inserted)
	for i, o := range origin {
		if !failed[i] {
			inserted = append(inserted, &events[o])
		}
	}
	if res.LinkConflicts, err = s.applyIdentity(ctx, inserted); err != nil {
		return cairn.InsertResult{}, err
	}
	if err := s.applyInsights(ctx, inserted); err != nil {
		return cairn.InsertResult{}, err
	}
	return res, nil
}

// docOutcome is what happened to one document of a failed insertMany.
type docOutcome struct {
	index   int // in the inserted slice
	outcome writeOutcome
	reason  string
}

// classifyInsertError sorts the per-document errors of an unordered
// insertMany. ok is false when err is not a plain set of write errors
// (network, write concern, ...): then the whole call must be retried.
func classifyInsertError(err error) (out []docOutcome, ok bool) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, false
	}
	for _, we := range bwe.WriteErrors {
		out = append(out, docOutcome{
			index:   we.Index,
			outcome: classifyWrite(we.Code),
			reason:  fmt.Sprintf("MongoDB rejected the document (code %d): %s", we.Code, we.Message),
		})
	}
	return out, true
}

// journeySort is the order of the journey index: newest first, ties by _id.
var journeySort = bson.D{{Key: "occurredAt", Value: -1}, {Key: "_id", Value: -1}}

// journeyFilter builds the query for q. Its shape keeps it on the journey
// index {userId: 1, occurredAt: -1, _id: -1}: equality on userId, one
// occurredAt range (the cursor's time caps it from above), and the tie on
// _id as a residual $or.
//
// With merged ids, the equality becomes userId: {$in: [user, ids...]}: the
// server scans one index range per id and merges them in index order
// (SORT_MERGE), still without an in-memory sort.
func journeyFilter(q cairn.JourneyQuery, merged []string) bson.D {
	filter := bson.D{{Key: "userId", Value: q.UserID}}
	if len(merged) > 0 {
		filter = bson.D{{Key: "userId", Value: bson.D{{Key: "$in", Value: append([]string{q.UserID}, merged...)}}}}
	}
	upper := q.To
	if q.After != nil && (upper.IsZero() || q.After.OccurredAt.Before(upper)) {
		upper = q.After.OccurredAt
	}
	var occ bson.D
	if !q.From.IsZero() {
		occ = append(occ, bson.E{Key: "$gte", Value: q.From})
	}
	if !upper.IsZero() {
		occ = append(occ, bson.E{Key: "$lte", Value: upper})
	}
	if len(occ) > 0 {
		filter = append(filter, bson.E{Key: "occurredAt", Value: occ})
	}
	if q.After != nil {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "occurredAt", Value: bson.D{{Key: "$lt", Value: q.After.OccurredAt}}}},
			bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.After.EventID}}}},
		}})
	}
	return filter
}

// Journey returns a page of the user's events, newest first, merged with
// those of the anonymous ids merged into the user (at most
// cairn.MaxMergedIDs). See cairn.EventStore.
func (s *Store) Journey(ctx context.Context, q cairn.JourneyQuery) (*cairn.JourneyPage, error) {
	if q.Limit <= 0 || q.Limit > cairn.MaxJourneyLimit {
		return nil, cairn.Errorf(cairn.EINVALID, "limit must be between 1 and %d", cairn.MaxJourneyLimit)
	}
	if s.ctx.Err() != nil {
		return nil, cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var merged []string
	if !q.Unmerged {
		m, err := s.mergedIDs(ctx, []string{q.UserID}, cairn.MaxMergedIDs)
		if err != nil {
			return nil, err
		}
		merged = m[q.UserID]
	}
	page := &cairn.JourneyPage{Events: []cairn.Event{}, MergedIDs: merged}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return page, nil
	}
	opts := options.Find().SetSort(journeySort).SetLimit(int64(q.Limit) + 1).SetBatchSize(int32(q.Limit) + 1)
	cur, err := s.coll.Find(ctx, journeyFilter(q, merged), opts)
	if err != nil {
		return nil, storeError("journey", err)
	}
	defer cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor, which the server also times out
	for cur.Next(ctx) {
		if len(page.Events) == q.Limit {
			last := &page.Events[len(page.Events)-1]
			page.Next = &cairn.Cursor{OccurredAt: last.OccurredAt, EventID: last.EventID}
			break
		}
		e, err := decodeEvent(cur.Current)
		if err != nil {
			return nil, storeError("journey", err)
		}
		page.Events = append(page.Events, e)
	}
	if err := cur.Err(); err != nil {
		return nil, storeError("journey", err)
	}
	return page, nil
}

// ExportEvents calls fn for every event of userID (every event when userID
// is empty), in no particular order.
func (s *Store) ExportEvents(ctx context.Context, userID string, fn func(*cairn.Event) error) error {
	if s.ctx.Err() != nil {
		return cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	filter := bson.D{}
	if userID != "" {
		filter = bson.D{{Key: "userId", Value: userID}}
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetBatchSize(1000))
	if err != nil {
		return storeError("export", err)
	}
	defer cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor, which the server also times out
	for cur.Next(ctx) {
		e, err := decodeEvent(cur.Current)
		if err != nil {
			return storeError("export", err)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return storeError("export", err)
	}
	return nil
}
