package mongo_test

import (
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

func TestAuthConformance(t *testing.T) {
	srv := mongotest.Start(t)
	storetest.TestAuthStore(t, func(t *testing.T) cairn.AuthStore {
		return open(t, srv, mongo.Config{})
	})
}

func authDB(t *testing.T, srv *mongotest.Server, s *mongo.Store) *driver.Database {
	t.Helper()
	c, err := driver.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { disconnect(t, c) })
	return c.Database(s.Database())
}

// TestAuthDocumentShape checks that Cairn writes users, accounts and
// sessions as Better Auth's MongoDB adapter does: ObjectId _id, userId as
// ObjectId, accountId as the user id string, Dates.
func TestAuthDocumentShape(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	now := time.Date(2026, 11, 25, 18, 59, 35, 915_000_000, time.UTC)
	u := &cairn.User{Name: "Alice", Email: "alice@example.com", Role: cairn.RoleAdmin, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(t.Context(), u, &cairn.Account{ProviderID: cairn.ProviderCredential, Password: "aa:bb", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if len(u.ID) != 24 {
		t.Fatalf("user id %q, want 24 hex characters", u.ID)
	}
	sess := &cairn.Session{Token: cairn.NewToken(), UserID: u.ID, ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	db := authDB(t, srv, s)
	uid, _ := bson.ObjectIDFromHex(u.ID)
	check := func(coll string, filter bson.D, want map[string]bson.Type) {
		t.Helper()
		raw, err := db.Collection(coll).FindOne(t.Context(), filter).Raw()
		if err != nil {
			t.Fatalf("%s: %v", coll, err)
		}
		for field, typ := range want {
			v, err := raw.LookupErr(field)
			if err != nil || v.Type != typ {
				t.Errorf("%s.%s: type %v (%v), want %v", coll, field, v.Type, err, typ)
			}
		}
	}
	check("user", bson.D{{Key: "_id", Value: uid}}, map[string]bson.Type{
		"_id": bson.TypeObjectID, "email": bson.TypeString, "emailVerified": bson.TypeBoolean,
		"createdAt": bson.TypeDateTime, "updatedAt": bson.TypeDateTime, "role": bson.TypeString, "image": bson.TypeNull})
	check("account", bson.D{{Key: "userId", Value: uid}}, map[string]bson.Type{
		"_id": bson.TypeObjectID, "userId": bson.TypeObjectID, "accountId": bson.TypeString,
		"providerId": bson.TypeString, "password": bson.TypeString, "createdAt": bson.TypeDateTime})
	check("session", bson.D{{Key: "token", Value: sess.Token}}, map[string]bson.Type{
		"_id": bson.TypeObjectID, "userId": bson.TypeObjectID, "expiresAt": bson.TypeDateTime, "token": bson.TypeString})
}

// TestAuthReadsSeedDocuments inserts a user and account the way the seed's
// Better Auth wrote them (no role, image null) and reads them back.
func TestAuthReadsSeedDocuments(t *testing.T) {
	srv := mongotest.Start(t)
	s := open(t, srv, mongo.Config{})
	db := authDB(t, srv, s)
	uid := bson.NewObjectID()
	at := time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)
	hash := "d6f3f35e70551226a7811f02d33fea26:dcac1c926fb43cb02d3479f4562f49a511c8f55c81f607464de35e2c86604fdf47eb1ad0e9e338e5c47e836499adf93194fae97519d6ded4817c8a1aa6559615"
	if _, err := db.Collection("user").InsertOne(t.Context(), bson.D{{Key: "_id", Value: uid}, {Key: "name", Value: "Alice Example"},
		{Key: "email", Value: "alice@example.com"}, {Key: "emailVerified", Value: false}, {Key: "image", Value: nil},
		{Key: "createdAt", Value: at}, {Key: "updatedAt", Value: at}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("account").InsertOne(t.Context(), bson.D{{Key: "_id", Value: bson.NewObjectID()},
		{Key: "accountId", Value: uid.Hex()}, {Key: "providerId", Value: "credential"}, {Key: "userId", Value: uid},
		{Key: "password", Value: hash}, {Key: "createdAt", Value: at}, {Key: "updatedAt", Value: at}}); err != nil {
		t.Fatal(err)
	}
	u, err := s.UserByEmail(t.Context(), "alice@example.com")
	if err != nil || u.ID != uid.Hex() || u.Role != "" || u.Image != "" || !u.CreatedAt.Equal(at) {
		t.Fatalf("seed user: %+v, %v", u, err)
	}
	a, err := s.CredentialAccount(t.Context(), u.ID)
	if err != nil || a.Password != hash {
		t.Fatalf("seed account: %+v, %v", a, err)
	}
	// A sign-up with the same email is refused by the unique index.
	if err := s.CreateUser(t.Context(), &cairn.User{Email: "alice@example.com"}, &cairn.Account{ProviderID: cairn.ProviderCredential}); cairn.ErrorCode(err) != cairn.ECONFLICT {
		t.Fatalf("duplicate of a seed user: %v, want ECONFLICT", err)
	}
}
