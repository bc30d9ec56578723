package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Accounts and sessions live in the collections Better Auth's MongoDB
// adapter uses, in the same database as the events, shaped as it stores
// them, so that a seed database keeps working:
//
//	user:    {_id: ObjectId, name, email, emailVerified, image, role,
//	          createdAt: Date, updatedAt: Date}
//	account: {_id: ObjectId, accountId: string (the user id), providerId:
//	          "credential", userId: ObjectId, password: "saltHex:keyHex",
//	          createdAt, updatedAt}
//	session: {_id: ObjectId, token, userId: ObjectId, expiresAt, createdAt,
//	          updatedAt, ipAddress, userAgent}
//
// Ids are returned as 24-character hex strings. Unique indexes on
// user.email and session.token enforce uniqueness; they are created
// (idempotently) before the writes that rely on them. A user and its
// account are two inserts: if the second fails the first is undone.
const (
	collUser    = "user"
	collAccount = "account"
	collSession = "session"
)

var _ cairn.AuthStore = (*Store)(nil)

func (s *Store) authColl(name string) *mongo.Collection {
	return s.client.Database(s.cfg.Database).Collection(name)
}

// ensureAuthIndexes creates the auth collections' indexes; creating an
// index that exists is a no-op.
func (s *Store) ensureAuthIndexes(ctx context.Context) error {
	for coll, models := range map[string][]mongo.IndexModel{
		collUser: {
			{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true).SetName("cairn_email_unique")},
			{Keys: bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("cairn_created")},
		},
		collAccount: {{Keys: bson.D{{Key: "userId", Value: 1}}, Options: options.Index().SetName("cairn_userId")}},
		collSession: {
			{Keys: bson.D{{Key: "token", Value: 1}}, Options: options.Index().SetUnique(true).SetName("cairn_token_unique")},
			{Keys: bson.D{{Key: "userId", Value: 1}}, Options: options.Index().SetName("cairn_userId")},
		},
	} {
		for _, m := range models {
			// One at a time: FerretDB fails on multi-index createIndexes.
			_, err := s.authColl(coll).Indexes().CreateOne(ctx, m)
			switch code := serverCode(err); {
			case err == nil, code == codeIndexOptions, code == codeIndexKeySpecs:
				// Created, or the same keys exist under another name.
			case duplicateCodes[code]:
				return &cairn.Error{Code: cairn.EINTERNAL, Message: "Duplicate accounts in MongoDB.",
					Err: fmt.Errorf("create unique index on %s (the collection holds duplicates; remove them): %w", coll, err)}
			default:
				return storeError("create "+coll+" indexes", err)
			}
		}
	}
	return nil
}

// userDoc is a user document as Better Auth's MongoDB adapter writes it.
type userDoc struct {
	ID            bson.ObjectID `bson:"_id"`
	Name          string        `bson:"name"`
	Email         string        `bson:"email"`
	EmailVerified bool          `bson:"emailVerified"`
	Image         *string       `bson:"image"`
	Role          string        `bson:"role,omitempty"`
	CreatedAt     time.Time     `bson:"createdAt"`
	UpdatedAt     time.Time     `bson:"updatedAt"`
}

func (d *userDoc) user() *cairn.User {
	u := &cairn.User{ID: d.ID.Hex(), Name: d.Name, Email: d.Email, EmailVerified: d.EmailVerified, Role: d.Role,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if d.Image != nil {
		u.Image = *d.Image
	}
	return u
}

type accountDoc struct {
	ID         bson.ObjectID `bson:"_id"`
	AccountID  string        `bson:"accountId"`
	ProviderID string        `bson:"providerId"`
	UserID     bson.ObjectID `bson:"userId"`
	Password   string        `bson:"password,omitempty"`
	CreatedAt  time.Time     `bson:"createdAt"`
	UpdatedAt  time.Time     `bson:"updatedAt"`
}

type sessionDoc struct {
	ID        bson.ObjectID `bson:"_id"`
	Token     string        `bson:"token"`
	UserID    bson.ObjectID `bson:"userId"`
	ExpiresAt time.Time     `bson:"expiresAt"`
	CreatedAt time.Time     `bson:"createdAt"`
	UpdatedAt time.Time     `bson:"updatedAt"`
	IPAddress string        `bson:"ipAddress"`
	UserAgent string        `bson:"userAgent"`
}

func (d *sessionDoc) session() *cairn.Session {
	return &cairn.Session{ID: d.ID.Hex(), Token: d.Token, UserID: d.UserID.Hex(), ExpiresAt: d.ExpiresAt.UTC(),
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), IPAddress: d.IPAddress, UserAgent: d.UserAgent}
}

func notFound(what string) error { return cairn.Errorf(cairn.ENOTFOUND, "%s not found", what) }

// findOne decodes the first document matching filter into v.
func (s *Store) findOne(ctx context.Context, coll string, filter any, v any, what string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	err := s.authColl(coll).FindOne(ctx, filter).Decode(v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return notFound(what)
	}
	return storeError("find "+what, err)
}

// CreateUser inserts the user, then its credential account. See
// cairn.UserStore.
func (s *Store) CreateUser(ctx context.Context, user *cairn.User, account *cairn.Account) error {
	if user.Email == "" {
		return cairn.Errorf(cairn.EINVALID, "email is required")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if err := s.ensureAuthIndexes(ctx); err != nil {
		return err
	}
	u := userDoc{ID: bson.NewObjectID(), Name: user.Name, Email: user.Email, EmailVerified: user.EmailVerified,
		Role: user.Role, CreatedAt: user.CreatedAt, UpdatedAt: user.UpdatedAt}
	if user.Image != "" {
		img := user.Image
		u.Image = &img
	}
	if _, err := s.authColl(collUser).InsertOne(ctx, &u); err != nil {
		if duplicateCodes[serverCode(err)] {
			return cairn.Errorf(cairn.ECONFLICT, "a user with this email exists")
		}
		return storeError("insert user", err)
	}
	a := accountDoc{ID: bson.NewObjectID(), AccountID: u.ID.Hex(), ProviderID: account.ProviderID, UserID: u.ID,
		Password: account.Password, CreatedAt: account.CreatedAt, UpdatedAt: account.UpdatedAt}
	if _, err := s.authColl(collAccount).InsertOne(ctx, &a); err != nil {
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, derr := s.authColl(collUser).DeleteOne(undo, bson.D{{Key: "_id", Value: u.ID}}); derr != nil {
			s.log.Error("undo user insert failed: the user has no credential account", "userId", u.ID.Hex(), "err", derr)
		}
		return storeError("insert account", err)
	}
	user.ID = u.ID.Hex()
	account.ID, account.UserID, account.AccountID = a.ID.Hex(), user.ID, user.ID
	return nil
}

// UserByID returns a user. See cairn.UserStore.
func (s *Store) UserByID(ctx context.Context, id string) (*cairn.User, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, notFound("user")
	}
	var d userDoc
	if err := s.findOne(ctx, collUser, bson.D{{Key: "_id", Value: oid}}, &d, "user"); err != nil {
		return nil, err
	}
	return d.user(), nil
}

// UserByEmail returns the user with that email. See cairn.UserStore.
func (s *Store) UserByEmail(ctx context.Context, email string) (*cairn.User, error) {
	var d userDoc
	if err := s.findOne(ctx, collUser, bson.D{{Key: "email", Value: email}}, &d, "user"); err != nil {
		return nil, err
	}
	return d.user(), nil
}

// HasUsers reports whether any user exists. See cairn.UserStore.
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	var d bson.M
	err := s.findOne(ctx, collUser, bson.D{}, &d, "user")
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}

// ListUsers returns a page of users, oldest first. See cairn.UserStore.
func (s *Store) ListUsers(ctx context.Context, q cairn.UserQuery) (*cairn.UserPage, error) {
	if q.Limit < 1 || q.Limit > cairn.MaxUserListLimit {
		return nil, cairn.Errorf(cairn.EINVALID, "limit must be from 1 to %d", cairn.MaxUserListLimit)
	}
	filter := bson.D{}
	if q.After != nil {
		oid, err := bson.ObjectIDFromHex(q.After.ID)
		if err != nil {
			return nil, cairn.Errorf(cairn.EINVALID, "invalid cursor")
		}
		filter = bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "createdAt", Value: bson.D{{Key: "$gt", Value: q.After.CreatedAt}}}},
			bson.D{{Key: "createdAt", Value: q.After.CreatedAt}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: oid}}}},
		}}}
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	opts := options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(q.Limit) + 1)
	cur, err := s.authColl(collUser).Find(ctx, filter, opts)
	if err != nil {
		return nil, storeError("list users", err)
	}
	var docs []userDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError("list users", err)
	}
	page := &cairn.UserPage{}
	for i := range docs {
		if i == q.Limit {
			last := page.Users[len(page.Users)-1]
			page.Next = &cairn.UserCursor{CreatedAt: last.CreatedAt, ID: last.ID}
			break
		}
		page.Users = append(page.Users, *docs[i].user())
	}
	return page, nil
}

// SetUserRole changes a user's role. See cairn.UserStore.
func (s *Store) SetUserRole(ctx context.Context, id, role string, now time.Time) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return notFound("user")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	res, err := s.authColl(collUser).UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "role", Value: role}, {Key: "updatedAt", Value: now}}}})
	if err != nil {
		return storeError("set role", err)
	}
	if res.MatchedCount == 0 {
		return notFound("user")
	}
	return nil
}

// CredentialAccount returns the user's credential account. See
// cairn.UserStore.
func (s *Store) CredentialAccount(ctx context.Context, userID string) (*cairn.Account, error) {
	oid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return nil, notFound("account")
	}
	var d accountDoc
	filter := bson.D{{Key: "userId", Value: oid}, {Key: "providerId", Value: cairn.ProviderCredential}}
	if err := s.findOne(ctx, collAccount, filter, &d, "account"); err != nil {
		return nil, err
	}
	return &cairn.Account{ID: d.ID.Hex(), AccountID: d.AccountID, ProviderID: d.ProviderID, UserID: d.UserID.Hex(),
		Password: d.Password, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}, nil
}

// CreateSession inserts a session. See cairn.SessionStore.
func (s *Store) CreateSession(ctx context.Context, sess *cairn.Session) error {
	uid, err := bson.ObjectIDFromHex(sess.UserID)
	if err != nil || sess.Token == "" {
		return cairn.Errorf(cairn.EINVALID, "session needs a token and a valid user id")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if err := s.ensureAuthIndexes(ctx); err != nil {
		return err
	}
	d := sessionDoc{ID: bson.NewObjectID(), Token: sess.Token, UserID: uid, ExpiresAt: sess.ExpiresAt,
		CreatedAt: sess.CreatedAt, UpdatedAt: sess.UpdatedAt, IPAddress: sess.IPAddress, UserAgent: sess.UserAgent}
	if _, err := s.authColl(collSession).InsertOne(ctx, &d); err != nil {
		if duplicateCodes[serverCode(err)] {
			return cairn.Errorf(cairn.ECONFLICT, "session token already in use")
		}
		return storeError("insert session", err)
	}
	sess.ID = d.ID.Hex()
	return nil
}

// SessionByToken returns a session. See cairn.SessionStore.
func (s *Store) SessionByToken(ctx context.Context, token string) (*cairn.Session, error) {
	var d sessionDoc
	if err := s.findOne(ctx, collSession, bson.D{{Key: "token", Value: token}}, &d, "session"); err != nil {
		return nil, err
	}
	return d.session(), nil
}

// ExtendSession updates a session's expiry. See cairn.SessionStore.
func (s *Store) ExtendSession(ctx context.Context, token string, expiresAt, updatedAt time.Time) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	res, err := s.authColl(collSession).UpdateOne(ctx, bson.D{{Key: "token", Value: token}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expiresAt", Value: expiresAt}, {Key: "updatedAt", Value: updatedAt}}}})
	if err != nil {
		return storeError("extend session", err)
	}
	if res.MatchedCount == 0 {
		return notFound("session")
	}
	return nil
}

// DeleteSession removes a session. See cairn.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	_, err := s.authColl(collSession).DeleteOne(ctx, bson.D{{Key: "token", Value: token}})
	return storeError("delete session", err)
}

// DeleteUserSessions removes every session of a user. See
// cairn.SessionStore.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	oid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return 0, nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	res, err := s.authColl(collSession).DeleteMany(ctx, bson.D{{Key: "userId", Value: oid}})
	if err != nil {
		return 0, storeError("delete user sessions", err)
	}
	return int(res.DeletedCount), nil
}
