package mongo_test

import (
	"testing"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/mongo"
	"github.com/cairn-dev/cairn/mongo/mongotest"
	"github.com/cairn-dev/cairn/storetest"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestSourceConformance(t *testing.T) {
	srv := mongotest.Start(t)
	storetest.RunSourceStore(t, func(t *testing.T) cairn.SourceStore {
		return open(t, srv, mongo.Config{})
	})
}

// TestSourceDocumentShape checks the documents in the sources collection
// (docs/mongodb.md) and its unique write key index.
func TestSourceDocumentShape(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	src := &cairn.Source{Name: "web", Enabled: true, RateLimit: cairn.RateLimit{EventsPerSecond: 1000, Burst: 5000}}
	if err := s.CreateSource(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	db := authDB(t, srv, s)
	raw, err := db.Collection("sources").FindOne(t.Context(), bson.D{{Key: "_id", Value: src.ID}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	for field, typ := range map[string]bson.Type{
		"_id": bson.TypeString, "name": bson.TypeString, "writeKey": bson.TypeString, "enabled": bson.TypeBoolean,
		"rateLimit": bson.TypeEmbeddedDocument, "createdAt": bson.TypeDateTime, "updatedAt": bson.TypeDateTime,
	} {
		if v, err := raw.LookupErr(field); err != nil || v.Type != typ {
			t.Errorf("sources.%s: type %v (%v), want %v", field, v.Type, err, typ)
		}
	}
	if v, err := raw.LookupErr("rateLimit", "burst"); err != nil || v.AsInt64() != 5000 {
		t.Errorf("rateLimit.burst = %v, %v", v, err)
	}
	cur, err := db.Collection("sources").Indexes().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var indexes []bson.M
	if err := cur.All(t.Context(), &indexes); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ix := range indexes {
		if ix["name"] == "cairn_writeKey_unique" && ix["unique"] == true {
			found = true
		}
	}
	if !found {
		t.Errorf("no unique cairn_writeKey_unique index: %v", indexes)
	}
}
