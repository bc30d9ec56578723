package mongo

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// InsertRaw inserts the events' documents with one unordered insertMany
// and nothing else (no erasure check, no identity or insight updates, no
// duplicate handling): the ceiling `cairn bench` measures InsertEvents
// against (issue 14's target 5), on the same collection and indexes.
func (s *Store) InsertRaw(ctx context.Context, events []cairn.Event) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	docs := make([]any, len(events))
	for i := range events {
		doc, err := eventDocument(&events[i])
		if err != nil {
			return fmt.Errorf("encode event %s: %w", events[i].EventID, err)
		}
		docs[i] = bson.Raw(doc)
	}
	if _, err := s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
		return storeError("insert raw", err)
	}
	return nil
}

// DropDatabase drops the store's whole database (the scratch databases of
// `cairn bench`).
func (s *Store) DropDatabase(ctx context.Context) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if err := s.coll.Database().Drop(ctx); err != nil {
		return storeError("drop database", err)
	}
	return nil
}
