package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/mongo"
	"github.com/cairn-dev/cairn/mongo/mongotest"
	"github.com/cairn-dev/cairn/storetest"
	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

var base = time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// open opens a Store on a fresh database of srv.
func open(t *testing.T, srv *mongotest.Server, cfg mongo.Config) *mongo.Store {
	t.Helper()
	if cfg.URI == "" {
		cfg.URI = srv.DatabaseURI(mongotest.DatabaseName(t))
	}
	s, err := mongo.Open(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

// closeStore closes s and fails the test if closing fails.
func closeStore(t *testing.T, s *mongo.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
}

// disconnect closes a driver client and fails the test if that fails.
func disconnect(t *testing.T, c *driver.Client) {
	t.Helper()
	if err := c.Disconnect(context.Background()); err != nil {
		t.Errorf("disconnect: %v", err)
	}
}

// rawCollection returns a driver handle on the store's collection.
func rawCollection(t *testing.T, srv *mongotest.Server, s *mongo.Store) *driver.Collection {
	t.Helper()
	c, err := driver.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { disconnect(t, c) })
	return c.Database(s.Database()).Collection("events")
}

// openFresh opens a store on a new database of srv, named for the test.
func openFresh(t *testing.T, srv *mongotest.Server) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(t.Context(), mongo.Config{URI: srv.DatabaseURI(mongotest.DatabaseName(t))}, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := mongotest.Start(t)
	storetest.RunEventStore(t, func(t *testing.T) cairn.EventStore {
		return openFresh(t, srv)
	})
}

func TestTrackedUsersConformance(t *testing.T) {
	srv := mongotest.Start(t)
	storetest.RunTrackedUsers(t, func(t *testing.T) storetest.IdentityStore {
		return openFresh(t, srv)
	})
}

func insert(t *testing.T, s *mongo.Store, evs ...cairn.Event) cairn.InsertResult {
	t.Helper()
	res, err := s.InsertEvents(t.Context(), evs)
	if err != nil {
		t.Fatalf("InsertEvents: %v", err)
	}
	return res
}

func event(id, payload string) cairn.Event {
	return cairn.Event{EventID: id, UserID: "u1", SessionID: "s1", Type: "page_view",
		Payload: json.RawMessage(payload), OccurredAt: base, ReceivedAt: base.Add(time.Second)}
}

func TestDocumentShapeAndTypes(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	payload := `{"s":"héllo \"q\" \u0001","i":42,"neg":-7,"big":9007199254740993,"f":1.5,"exp":1e-7,"t":true,"nil":null,"arr":[1,"two",{"three":3}],"obj":{"k":{"deep":[]}}}`
	if res := insert(t, s, event("e1", payload)); res.Inserted != 1 {
		t.Fatalf("insert: %+v", res)
	}
	coll := rawCollection(t, srv, s)
	var raw bson.Raw
	if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "e1"}}).Decode(&raw); err != nil {
		t.Fatalf("find raw: %v", err)
	}
	for _, c := range []struct {
		path []string
		want bson.Type
	}{
		{[]string{"_id"}, bson.TypeString},
		{[]string{"userId"}, bson.TypeString},
		{[]string{"occurredAt"}, bson.TypeDateTime},
		{[]string{"receivedAt"}, bson.TypeDateTime},
		{[]string{"payload"}, bson.TypeEmbeddedDocument},
		{[]string{"payload", "i"}, bson.TypeInt32},
		{[]string{"payload", "big"}, bson.TypeInt64},
		{[]string{"payload", "f"}, bson.TypeDouble},
		{[]string{"payload", "t"}, bson.TypeBoolean},
		{[]string{"payload", "nil"}, bson.TypeNull},
		{[]string{"payload", "arr"}, bson.TypeArray},
		{[]string{"payload", "obj", "k"}, bson.TypeEmbeddedDocument},
	} {
		v, err := raw.LookupErr(c.path...)
		if err != nil {
			t.Errorf("%v: %v", c.path, err)
		} else if v.Type != c.want {
			t.Errorf("%v: BSON type %v, want %v", c.path, v.Type, c.want)
		}
	}
	if got := raw.Lookup("occurredAt").Time(); !got.Equal(base) {
		t.Errorf("occurredAt = %v, want %v", got, base)
	}
	page, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: "u1", Limit: 10})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("journey: %v, %+v", err, page)
	}
	// Numbers keep their exact digits (int64 beyond 2^53 included).
	want := `{"s":"héllo \"q\" \u0001","i":42,"neg":-7,"big":9007199254740993,"f":1.5,"exp":1e-7,"t":true,"nil":null,"arr":[1,"two",{"three":3}],"obj":{"k":{"deep":[]}}}`
	if got := string(page.Events[0].Payload); got != want {
		t.Errorf("payload round trip:\n got %s\nwant %s", got, want)
	}
}

// Payload keys with "." or a leading "$" are accepted by MongoDB 5+ but not
// by FerretDB or older servers: Cairn stores them escaped on every server
// and journeys return them unchanged.
func TestSpecialPayloadKeys(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	payload := `{"a.b":1,"$set":{"x.y":2},"%p":3,"50%":4,"n\u0000l":5,"plain":{"$in":[{".":"."}]}}`
	if res := insert(t, s, event("k1", payload)); res.Inserted != 1 || len(res.Rejected) != 0 {
		t.Fatalf("insert: %+v", res)
	}
	coll := rawCollection(t, srv, s)
	var raw bson.Raw
	if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "k1"}}).Decode(&raw); err != nil {
		t.Fatalf("find raw: %v", err)
	}
	for _, key := range []string{"%a%2Eb", "%%24set", "%%25p", "50%", "%n%00l"} {
		if _, err := raw.LookupErr("payload", key); err != nil {
			t.Errorf("stored payload has no key %q: %s", key, raw.Lookup("payload"))
		}
	}
	page, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: "u1", Limit: 10})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("journey: %v, %+v", err, page)
	}
	if got := string(page.Events[0].Payload); got != payload {
		t.Errorf("payload round trip:\n got %s\nwant %s", got, payload)
	}
}

func TestPermanentRejections(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	huge := `{"blob":"` + strings.Repeat("x", 17<<20) + `"}`
	deep := strings.Repeat(`{"a":`, 150) + "1" + strings.Repeat("}", 150)
	res := insert(t, s, event("ok-1", `{}`), event("huge", huge), event("deep", deep), event("", `{}`), event("ok-2", `{"a":1}`))
	if res.Inserted != 2 || len(res.Rejected) != 3 {
		t.Fatalf("got %d inserted, %d rejected, want 2 and 3: %+v", res.Inserted, len(res.Rejected), res.Rejected)
	}
	reasons := map[string]string{}
	for _, r := range res.Rejected {
		reasons[r.Event.EventID] = r.Reason
	}
	for id, want := range map[string]string{"huge": "16 MiB", "deep": "deeper", "": "missing eventId"} {
		if !strings.Contains(reasons[id], want) {
			t.Errorf("reason for %q = %q, want it to mention %q", id, reasons[id], want)
		}
	}
	if n, err := s.CountEvents(t.Context()); err != nil || n != 2 {
		t.Errorf("CountEvents = %d, %v; want 2", n, err)
	}
}

func TestSeedDocumentsRead(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	coll := rawCollection(t, srv, s)
	oid := bson.NewObjectID()
	_, err := coll.InsertMany(t.Context(), []any{
		// Mongoose-style: ObjectId _id, eventId field, __v.
		bson.D{{Key: "_id", Value: oid}, {Key: "eventId", Value: "uuid-old-1"}, {Key: "userId", Value: "seed"},
			{Key: "sessionId", Value: "s"}, {Key: "type", Value: "purchase"},
			{Key: "payload", Value: bson.D{{Key: "amount", Value: 999.5}, {Key: "at", Value: bson.NewDateTimeFromTime(base)}, {Key: "ref", Value: oid}}},
			{Key: "occurredAt", Value: bson.NewDateTimeFromTime(base)}, {Key: "receivedAt", Value: bson.NewDateTimeFromTime(base)}, {Key: "__v", Value: 0}},
		// String _id, no receivedAt.
		bson.D{{Key: "_id", Value: "uuid-old-2"}, {Key: "userId", Value: "seed"}, {Key: "sessionId", Value: "s"},
			{Key: "type", Value: "page_view"}, {Key: "payload", Value: bson.D{{Key: "url", Value: "/"}}},
			{Key: "occurredAt", Value: bson.NewDateTimeFromTime(base.Add(time.Minute))}},
	})
	if err != nil {
		t.Fatalf("insert seed documents: %v", err)
	}
	page, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: "seed", Limit: 10})
	if err != nil {
		t.Fatalf("journey: %v", err)
	}
	if len(page.Events) != 2 || page.Events[0].EventID != "uuid-old-2" || page.Events[1].EventID != "uuid-old-1" {
		t.Fatalf("journey = %+v", page.Events)
	}
	wantPayload := fmt.Sprintf(`{"amount":999.5,"at":"2025-12-15T10:30:00.000Z","ref":"%s"}`, oid.Hex())
	if got := string(page.Events[1].Payload); got != wantPayload {
		t.Errorf("payload = %s, want %s", got, wantPayload)
	}
	if !page.Events[0].ReceivedAt.Equal(base.Add(time.Minute)) {
		t.Errorf("missing receivedAt should default to occurredAt, got %v", page.Events[0].ReceivedAt)
	}
}

func TestIndexes(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	// Opening twice is idempotent.
	s2, err := mongo.Open(t.Context(), mongo.Config{URI: srv.DatabaseURI(s.Database())}, testLogger(t))
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	t.Cleanup(func() { closeStore(t, s2) })
	waitIndex(t, rawCollection(t, srv, s), mongo.JourneyIndexName, "userId:1,occurredAt:-1,_id:-1")
}

// waitIndex polls until coll has the named index with the given key.
func waitIndex(t *testing.T, coll *driver.Collection, name, key string) {
	t.Helper()
	waitFor(t, "index "+name+" created", func() (bool, string) {
		specs, err := coll.Indexes().ListSpecifications(t.Context())
		if err != nil {
			return false, fmt.Sprintf("list indexes: %v", err)
		}
		for _, sp := range specs {
			if sp.Name == name {
				if got := keysString(sp.KeysDocument); got != key {
					t.Fatalf("index %s keys = %s, want %s", name, got, key)
				}
				return true, ""
			}
		}
		return false, fmt.Sprintf("specs %v", specs)
	})
}

// waitFor polls cond until it reports done, failing the test after 30s with
// the last detail cond gave. It polls on a ticker rather than sleeping a fixed
// time, so a condition that holds early ends the wait early.
func waitFor(t *testing.T, what string, cond func() (done bool, detail string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done, detail := cond()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within 30s (last: %s)", what, detail)
		case <-tick.C:
		}
	}
}

// keysString renders an index key document as "field:dir,...".
func keysString(keys bson.Raw) string {
	elems, _ := keys.Elements()
	parts := make([]string, len(elems))
	for i, el := range elems {
		n, _ := el.Value().AsInt64OK()
		parts[i] = fmt.Sprintf("%s:%d", el.Key(), n)
	}
	return strings.Join(parts, ",")
}

// FerretDB has no TTL indexes: the store falls back to a periodic delete.
func TestRetentionFallback(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{Retention: time.Hour, PurgeInterval: 50 * time.Millisecond})
	now := time.Now().UTC().Truncate(time.Millisecond)
	old, fresh := event("old", `{}`), event("fresh", `{}`)
	old.ReceivedAt = now.Add(-2 * time.Hour)
	fresh.ReceivedAt = now
	insert(t, s, old, fresh)
	waitFor(t, "expired event deleted", func() (bool, string) {
		page, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: "u1", Limit: 10})
		if err != nil {
			t.Fatalf("journey: %v", err)
		}
		if len(page.Events) == 1 && page.Events[0].EventID != "fresh" {
			t.Fatalf("retention deleted the wrong event: %+v", page.Events)
		}
		return len(page.Events) == 1, fmt.Sprintf("%d events", len(page.Events))
	})
}

func TestOpenRejectsBadSettings(t *testing.T) {
	for name, cfg := range map[string]mongo.Config{
		"EmptyURI":      {},
		"BadScheme":     {URI: "http://localhost"},
		"W0InURI":       {URI: "mongodb://127.0.0.1:1/db?w=0"},
		"W0Setting":     {URI: "mongodb://127.0.0.1:1/db", WriteConcern: "0"},
		"NegRetention":  {URI: "mongodb://127.0.0.1:1/db", Retention: -time.Hour},
		"BadURIOptions": {URI: "mongodb://127.0.0.1:1/db?connectTimeoutMS=abc"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := mongo.Open(t.Context(), cfg, nil)
			if err == nil {
				closeStore(t, s)
				t.Fatalf("Open(%+v) succeeded, want an error", cfg)
			}
		})
	}
}

func TestParseWriteConcern(t *testing.T) {
	for in, want := range map[string]any{"majority": "majority", "Majority": "majority", "1": 1, "3": 3} {
		wc, err := mongo.ParseWriteConcern(in)
		if err != nil || wc.W != want {
			t.Errorf("ParseWriteConcern(%q) = %v, %v; want W=%v", in, wc, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "all", "dc-east"} {
		if _, err := mongo.ParseWriteConcern(in); err == nil {
			t.Errorf("ParseWriteConcern(%q) succeeded, want an error", in)
		}
	}
}

// With nothing listening, Open still succeeds; operations fail with
// EUNAVAILABLE (retryable) until the server appears.
func TestUnreachableAtStart(t *testing.T) {
	srv := mongotest.Start(t)
	uri := srv.DatabaseURI("late") + "?serverSelectionTimeoutMS=300"
	srv.Stop()
	s, err := mongo.Open(t.Context(), mongo.Config{URI: uri}, testLogger(t))
	if err != nil {
		t.Fatalf("Open with the server down: %v", err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	if err := s.Ping(t.Context()); cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
		t.Fatalf("Ping = %v, want EUNAVAILABLE", err)
	}
	if _, err := s.InsertEvents(t.Context(), []cairn.Event{event("late-1", `{}`)}); cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
		t.Fatalf("InsertEvents = %v, want EUNAVAILABLE", err)
	}
	if _, err := s.Journey(t.Context(), cairn.JourneyQuery{UserID: "u1", Limit: 1}); cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
		t.Fatalf("Journey = %v, want EUNAVAILABLE", err)
	}
	srv.Restart()
	waitPing(t, s)
	if res := insert(t, s, event("late-1", `{}`)); res.Inserted != 1 {
		t.Fatalf("insert after start: %+v", res)
	}
	// The indexes are created in the background once the server answers.
	waitIndex(t, rawCollection(t, srv, s), mongo.JourneyIndexName, "userId:1,occurredAt:-1,_id:-1")
}

func waitPing(t *testing.T, s *mongo.Store) {
	t.Helper()
	waitFor(t, "store reachable", func() (bool, string) {
		err := s.Ping(t.Context())
		return err == nil, fmt.Sprint(err)
	})
}

// The server stops and comes back: the store reports EUNAVAILABLE meanwhile,
// then works again on the same data with no duplicate from the retry.
func TestServerRestart(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{URI: srv.DatabaseURI("restart") + "?serverSelectionTimeoutMS=300"})
	insert(t, s, event("r-1", `{}`))
	srv.Stop()
	if _, err := s.InsertEvents(t.Context(), []cairn.Event{event("r-2", `{}`)}); cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
		t.Fatalf("InsertEvents while down = %v, want EUNAVAILABLE", err)
	}
	if err := s.Ping(t.Context()); cairn.ErrorCode(err) != cairn.EUNAVAILABLE {
		t.Fatalf("Ping while down = %v, want EUNAVAILABLE", err)
	}
	srv.Restart()
	waitPing(t, s)
	res := insert(t, s, event("r-1", `{}`), event("r-2", `{}`))
	if res.Inserted != 1 || res.Duplicates != 1 {
		t.Fatalf("retry after restart: %+v, want 1 inserted 1 duplicate", res)
	}
	if n, err := s.CountEvents(t.Context()); err != nil || n != 2 {
		t.Fatalf("CountEvents = %d, %v; want 2", n, err)
	}
}

func TestEraseConformance(t *testing.T) {
	srv := mongotest.Start(t)
	storetest.RunErase(t, func(t *testing.T) storetest.EraseStore {
		return openFresh(t, srv)
	})
}
