package mongo_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/mongo"
	"github.com/cairn-dev/cairn/mongo/mongotest"
	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestIdentityDocuments checks the documents and indexes of the identity
// collections (docs/mongodb.md), and that the events keep sourceId and
// anonymousId only when set.
func TestIdentityDocuments(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	link := event("id-1", `{"traits":{"plan":"pro","a.b":1}}`)
	link.Type, link.AnonymousID, link.SourceID = cairn.IdentifyType, "anon-1", "src_1"
	if res := insert(t, s, link, event("id-2", `{}`)); res.Inserted != 2 {
		t.Fatalf("insert: %+v", res)
	}
	c, err := driver.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disconnect(t, c) })
	db := c.Database(s.Database())
	find := func(coll string, id any) bson.Raw {
		t.Helper()
		raw, err := db.Collection(coll).FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Raw()
		if err != nil {
			t.Fatalf("find %s %v: %v", coll, id, err)
		}
		return raw
	}
	ev := find("events", "id-1")
	if v, _ := ev.Lookup("sourceId").StringValueOK(); v != "src_1" {
		t.Errorf("event sourceId = %v", ev.Lookup("sourceId"))
	}
	if v, _ := ev.Lookup("anonymousId").StringValueOK(); v != "anon-1" {
		t.Errorf("event anonymousId = %v", ev.Lookup("anonymousId"))
	}
	plain := find("events", "id-2")
	for _, k := range []string{"sourceId", "anonymousId"} {
		if _, err := plain.LookupErr(k); err == nil {
			t.Errorf("a seed event has %s: %s", k, plain)
		}
	}
	u := find("trackedUsers", "u1")
	if n, _ := u.Lookup("eventCount").AsInt64OK(); n != 2 {
		t.Errorf("eventCount = %v", u.Lookup("eventCount"))
	}
	if d := u.Lookup("firstSeen"); d.Type != bson.TypeDateTime || time.UnixMilli(d.DateTime()).UTC() != base {
		t.Errorf("firstSeen = %v", d)
	}
	plan, _ := u.Lookup("traits", "plan").StringValueOK()
	if want := "0001765794600000 id-1 \"pro\""; plan != want {
		t.Errorf("traits.plan = %q, want %q", plan, want)
	}
	if _, err := u.LookupErr("traits", "%a%2Eb"); err != nil {
		t.Errorf("trait key a.b not stored escaped: %s", u)
	}
	l := find("identityLinks", `["anon-1","u1"]`)
	if a, _ := l.Lookup("anonymousId").StringValueOK(); a != "anon-1" {
		t.Errorf("link %s", l)
	}
	find("trackedSessions", `["u1","s1"]`)
	got, err := s.TrackedUser(t.Context(), "u1")
	if err != nil || string(got.Traits["a.b"]) != "1" || !slices.Equal(got.AnonymousIDs, []string{"anon-1"}) {
		t.Fatalf("TrackedUser = %+v, %v", got, err)
	}

	cur, err := db.Collection("identityLinks").Indexes().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for cur.Next(t.Context()) {
		n, _ := cur.Current.Lookup("name").StringValueOK()
		names = append(names, n)
	}
	if err := cur.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{mongo.LinksUserIndexName, mongo.LinksAnonIndexName} {
		if !slices.Contains(names, want) {
			t.Errorf("identityLinks indexes %v lack %s", names, want)
		}
	}
	if want := json.RawMessage(`"pro"`); len(got.Traits) != 2 || string(got.Traits["plan"]) != string(want) {
		t.Errorf("traits %v", got.Traits)
	}
}
