package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ferretBulkLimit is the most write models Cairn sends to a FerretDB
// server in one command. FerretDB v1 on its SQLite backend keeps the query
// of every upsert of a command open until the command ends, on a pool of
// 100 connections per database: an update command with more than 100
// upserts waits forever for a connection. (Seen as a writer stalled in
// "record sessions" on a 500-event batch with 141 sessions; FerretDB's
// goroutine dump held 100 open result sets, all from that one command.)
// 32 leaves room for three writers at once. MongoDB gets one command per
// bulk, as before.
const ferretBulkLimit = 32

// bulkWrite runs models on coll, unordered, in one command; on FerretDB in
// commands of at most ferretBulkLimit models, with the results merged
// (UpsertedIDs keyed by the model's index in models).
func (s *Store) bulkWrite(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) (*mongo.BulkWriteResult, error) {
	opts := options.BulkWrite().SetOrdered(false)
	if len(models) <= ferretBulkLimit || !s.isFerretDB(ctx) {
		return coll.BulkWrite(ctx, models, opts)
	}
	out := &mongo.BulkWriteResult{UpsertedIDs: map[int64]any{}, Acknowledged: true}
	for start := 0; start < len(models); start += ferretBulkLimit {
		end := min(start+ferretBulkLimit, len(models))
		res, err := coll.BulkWrite(ctx, models[start:end], opts)
		if err != nil {
			return nil, err
		}
		out.InsertedCount += res.InsertedCount
		out.MatchedCount += res.MatchedCount
		out.ModifiedCount += res.ModifiedCount
		out.DeletedCount += res.DeletedCount
		out.UpsertedCount += res.UpsertedCount
		for i, id := range res.UpsertedIDs {
			out.UpsertedIDs[int64(start)+i] = id
		}
	}
	return out, nil
}

// isFerretDB reports whether the server is FerretDB (its buildInfo has a
// ferretdbVersion), asking once it answers. Until it has answered, it
// says yes: smaller commands are merely slower on MongoDB.
func (s *Store) isFerretDB(ctx context.Context) bool {
	s.mu.Lock()
	known, ferret := s.serverKnown, s.ferretDB
	s.mu.Unlock()
	if known {
		return ferret
	}
	var info bson.M
	if err := s.client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return true
	}
	_, ferret = info["ferretdbVersion"]
	s.mu.Lock()
	s.serverKnown, s.ferretDB = true, ferret
	s.mu.Unlock()
	if ferret {
		s.log.Info("the server is FerretDB: bulk writes split into smaller commands", "max_models", ferretBulkLimit, "ferretdb_version", info["ferretdbVersion"])
	}
	return ferret
}
