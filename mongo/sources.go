package mongo

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Sources live in the "sources" collection of the events' database:
//
//	sources: {_id: sourceId (string), name, writeKey, enabled,
//	          rateLimit: {eventsPerSecond, burst}, createdAt: Date, updatedAt: Date}
//
// A unique index on writeKey (cairn_writeKey_unique) enforces one source
// per write key, also between concurrent writers; it is created
// (idempotently) before every write that relies on it.
const collSources = "sources"

var _ cairn.SourceStore = (*Store)(nil)

type sourceDoc struct {
	ID        string       `bson:"_id"`
	Name      string       `bson:"name"`
	WriteKey  string       `bson:"writeKey"`
	Enabled   bool         `bson:"enabled"`
	RateLimit rateLimitDoc `bson:"rateLimit"`
	CreatedAt time.Time    `bson:"createdAt"`
	UpdatedAt time.Time    `bson:"updatedAt"`
}

type rateLimitDoc struct {
	EventsPerSecond int `bson:"eventsPerSecond"`
	Burst           int `bson:"burst"`
}

func (d *sourceDoc) source() *cairn.Source {
	return &cairn.Source{ID: d.ID, Name: d.Name, WriteKey: d.WriteKey, Enabled: d.Enabled,
		RateLimit: cairn.RateLimit{EventsPerSecond: d.RateLimit.EventsPerSecond, Burst: d.RateLimit.Burst},
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
}

func (s *Store) sources() *mongo.Collection {
	return s.client.Database(s.cfg.Database).Collection(collSources)
}

// ensureSourceIndexes creates the unique write key index; creating an index
// that exists is a no-op.
func (s *Store) ensureSourceIndexes(ctx context.Context) error {
	_, err := s.sources().Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "writeKey", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("cairn_writeKey_unique"),
	})
	switch code := serverCode(err); {
	case err == nil, code == codeIndexOptions, code == codeIndexKeySpecs:
		return nil
	case duplicateCodes[code]:
		return &cairn.Error{Code: cairn.EINTERNAL, Message: "Duplicate write keys in MongoDB.",
			Err: errors.New("create unique index on sources.writeKey: the collection holds duplicates; remove them")}
	default:
		return storeError("create sources index", err)
	}
}

func msTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// CreateSource inserts a new source. See cairn.SourceStore.
func (s *Store) CreateSource(ctx context.Context, src *cairn.Source) error {
	v := *src
	if err := v.Validate(); err != nil {
		return err
	}
	if v.WriteKey == "" {
		v.WriteKey = cairn.NewWriteKey()
	}
	v.ID = cairn.NewSourceID()
	v.CreatedAt, v.UpdatedAt = msTime(v.CreatedAt), msTime(v.UpdatedAt)
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if err := s.ensureSourceIndexes(ctx); err != nil {
		return err
	}
	d := sourceDoc{ID: v.ID, Name: v.Name, WriteKey: v.WriteKey, Enabled: v.Enabled,
		RateLimit: rateLimitDoc{v.RateLimit.EventsPerSecond, v.RateLimit.Burst}, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
	if _, err := s.sources().InsertOne(ctx, &d); err != nil {
		if duplicateCodes[serverCode(err)] {
			return cairn.Errorf(cairn.ECONFLICT, "a source with this write key exists")
		}
		return storeError("insert source", err)
	}
	*src = v
	return nil
}

func (s *Store) findSource(ctx context.Context, filter bson.D) (*cairn.Source, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var d sourceDoc
	err := s.sources().FindOne(ctx, filter).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("source")
	} else if err != nil {
		return nil, storeError("find source", err)
	}
	return d.source(), nil
}

// Source returns a source by id. See cairn.SourceStore.
func (s *Store) Source(ctx context.Context, id string) (*cairn.Source, error) {
	if id == "" {
		return nil, notFound("source")
	}
	return s.findSource(ctx, bson.D{{Key: "_id", Value: id}})
}

// SourceByWriteKey returns the source with that write key. See
// cairn.SourceStore.
func (s *Store) SourceByWriteKey(ctx context.Context, writeKey string) (*cairn.Source, error) {
	if writeKey == "" {
		return nil, notFound("source")
	}
	return s.findSource(ctx, bson.D{{Key: "writeKey", Value: writeKey}})
}

// ListSources returns every source, oldest first. See cairn.SourceStore.
func (s *Store) ListSources(ctx context.Context) ([]cairn.Source, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	cur, err := s.sources().Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, storeError("list sources", err)
	}
	var docs []sourceDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError("list sources", err)
	}
	list := make([]cairn.Source, 0, len(docs))
	for i := range docs {
		list = append(list, *docs[i].source())
	}
	return list, nil
}

// UpdateSource replaces a source's fields, keeping its createdAt. See
// cairn.SourceStore.
func (s *Store) UpdateSource(ctx context.Context, src *cairn.Source) error {
	v := *src
	if err := v.Validate(); err != nil {
		return err
	}
	if v.WriteKey == "" {
		return cairn.Errorf(cairn.EINVALID, "write key is required")
	}
	if v.ID == "" {
		return notFound("source")
	}
	v.UpdatedAt = msTime(v.UpdatedAt)
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if err := s.ensureSourceIndexes(ctx); err != nil {
		return err
	}
	res, err := s.sources().UpdateOne(ctx, bson.D{{Key: "_id", Value: v.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: v.Name}, {Key: "writeKey", Value: v.WriteKey},
			{Key: "enabled", Value: v.Enabled},
			{Key: "rateLimit", Value: rateLimitDoc{v.RateLimit.EventsPerSecond, v.RateLimit.Burst}},
			{Key: "updatedAt", Value: v.UpdatedAt}}}})
	if err != nil {
		if duplicateCodes[serverCode(err)] || s.writeKeyTaken(ctx, v.WriteKey, v.ID) {
			// FerretDB reports a unique-index violation on update as an
			// InternalError, hence the lookup.
			return cairn.Errorf(cairn.ECONFLICT, "a source with this write key exists")
		}
		return storeError("update source", err)
	}
	if res.MatchedCount == 0 {
		return notFound("source")
	}
	got, err := s.Source(ctx, v.ID)
	if err != nil {
		return err
	}
	*src = *got
	return nil
}

// writeKeyTaken reports whether a source other than id has writeKey.
func (s *Store) writeKeyTaken(ctx context.Context, writeKey, id string) bool {
	other, err := s.SourceByWriteKey(ctx, writeKey)
	return err == nil && other.ID != id
}

// DeleteSource removes a source. See cairn.SourceStore.
func (s *Store) DeleteSource(ctx context.Context, id string) error {
	if id == "" {
		return notFound("source")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	res, err := s.sources().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return storeError("delete source", err)
	}
	if res.DeletedCount == 0 {
		return notFound("source")
	}
	return nil
}
