package pebble

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// Accounts and sessions live under keys starting with 'A':
//
//	'A' 'u' userId                    → user (JSON)
//	'A' 'e' email                     → userId (unique email index)
//	'A' 'c' be64(createdAtMs^1<<63) userId → "" (users oldest first)
//	'A' 'a' userId 0x00 providerId    → account (JSON)
//	'A' 's' token                     → session (JSON)
//	'A' 'S' userId 0x00 token         → "" (sessions of a user)
//
// Ids and tokens are 32 characters of [A-Za-z0-9], as Better Auth makes
// them. Times are stored as Unix milliseconds. Writes that must check
// uniqueness first (a user's email, a session's token) hold writeMu, as
// InsertEvents does for event ids, and every write is committed with
// pebble.Sync.

const prefixAuth = 'A'

var _ cairn.AuthStore = (*Store)(nil)

func authKey(kind byte, parts ...string) []byte {
	k := []byte{prefixAuth, kind}
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

type userRecord struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"emailVerified"`
	Image         string `json:"image,omitempty"`
	Role          string `json:"role,omitempty"`
	CreatedAt     int64  `json:"createdAt"`
	UpdatedAt     int64  `json:"updatedAt"`
}

type accountRecord struct {
	ID         string `json:"id"`
	AccountID  string `json:"accountId"`
	ProviderID string `json:"providerId"`
	UserID     string `json:"userId"`
	Password   string `json:"password,omitempty"`
	CreatedAt  int64  `json:"createdAt"`
	UpdatedAt  int64  `json:"updatedAt"`
}

type sessionRecord struct {
	ID        string `json:"id"`
	Token     string `json:"token"`
	UserID    string `json:"userId"`
	ExpiresAt int64  `json:"expiresAt"`
	CreatedAt int64  `json:"createdAt"`
	UpdatedAt int64  `json:"updatedAt"`
	IPAddress string `json:"ipAddress,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
}

func ms(t time.Time) int64       { return t.UnixMilli() }
func fromMS(v int64) time.Time   { return time.UnixMilli(v).UTC() }
func notFound(what string) error { return cairn.Errorf(cairn.ENOTFOUND, "%s not found", what) }
func internal(op string, err error) error {
	return &cairn.Error{Code: cairn.EINTERNAL, Message: "Internal error.", Err: fmt.Errorf("%s: %w", op, err)}
}

// getJSON reads key into v; it returns ENOTFOUND as notFound(what).
func (s *Store) getJSON(key []byte, v any, what string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	b, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return notFound(what)
	} else if err != nil {
		return internal("read "+what, err)
	}
	defer closer.Close() //nolint:errcheck // the closer releases the value buffer of a successful Get; it has no error to report
	if err := json.Unmarshal(b, v); err != nil {
		return internal("decode "+what, err)
	}
	return nil
}

func (s *Store) exists(key []byte) (bool, error) {
	_, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, internal("read key", err)
	}
	closer.Close() //nolint:errcheck // the closer releases the value buffer of a successful Get; it has no error to report
	return true, nil
}

func setJSON(b *pebble.Batch, key []byte, v any) error {
	enc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(key, enc, nil)
}

func (r *userRecord) user() *cairn.User {
	return &cairn.User{ID: r.ID, Name: r.Name, Email: r.Email, EmailVerified: r.EmailVerified, Image: r.Image,
		Role: r.Role, CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt)}
}

func userRecordOf(u *cairn.User) *userRecord {
	return &userRecord{ID: u.ID, Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified, Image: u.Image,
		Role: u.Role, CreatedAt: ms(u.CreatedAt), UpdatedAt: ms(u.UpdatedAt)}
}

// CreateUser stores a user and its credential account in one batch. See
// cairn.UserStore.
func (s *Store) CreateUser(ctx context.Context, user *cairn.User, account *cairn.Account) error {
	if user.Email == "" {
		return cairn.Errorf(cairn.EINVALID, "email is required")
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	emailKey := authKey('e', user.Email)
	if taken, err := s.exists(emailKey); err != nil {
		return err
	} else if taken {
		return cairn.Errorf(cairn.ECONFLICT, "a user with this email exists")
	}
	u, a := *user, *account
	u.ID = cairn.NewToken()
	a.ID, a.UserID, a.AccountID = cairn.NewToken(), u.ID, u.ID
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	err := setJSON(b, authKey('u', u.ID), userRecordOf(&u))
	if err == nil {
		err = b.Set(emailKey, []byte(u.ID), nil)
	}
	if err == nil {
		err = b.Set(createdKey(u.CreatedAt, u.ID), nil, nil)
	}
	if err == nil {
		err = setJSON(b, authKey('a', u.ID, a.ProviderID), &accountRecord{ID: a.ID, AccountID: a.AccountID,
			ProviderID: a.ProviderID, UserID: a.UserID, Password: a.Password, CreatedAt: ms(a.CreatedAt), UpdatedAt: ms(a.UpdatedAt)})
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return internal("create user", err)
	}
	*user, *account = u, a
	return nil
}

// UserByID returns a user. See cairn.UserStore.
func (s *Store) UserByID(ctx context.Context, id string) (*cairn.User, error) {
	if id == "" {
		return nil, notFound("user")
	}
	var r userRecord
	if err := s.getJSON(authKey('u', id), &r, "user"); err != nil {
		return nil, err
	}
	return r.user(), nil
}

// UserByEmail returns the user with that email. See cairn.UserStore.
func (s *Store) UserByEmail(ctx context.Context, email string) (*cairn.User, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	id, closer, err := s.db.Get(authKey('e', email))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, notFound("user")
	} else if err != nil {
		return nil, internal("read email index", err)
	}
	uid := string(id)
	closer.Close() //nolint:errcheck // the closer releases the value buffer of a successful Get; it has no error to report
	return s.UserByID(ctx, uid)
}

// HasUsers reports whether any user exists. See cairn.UserStore.
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	page, err := s.ListUsers(ctx, cairn.UserQuery{Limit: 1})
	if err != nil {
		return false, err
	}
	return len(page.Users) > 0, nil
}

// createdKey is the key of a user in the oldest-first index.
func createdKey(at time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixAuth, 'c'}, uint64(at.UnixMilli())^1<<63)
	return append(k, id...)
}

// ListUsers returns a page of users, oldest first. See cairn.UserStore.
func (s *Store) ListUsers(ctx context.Context, q cairn.UserQuery) (*cairn.UserPage, error) {
	if q.Limit < 1 || q.Limit > cairn.MaxUserListLimit {
		return nil, cairn.Errorf(cairn.EINVALID, "limit must be from 1 to %d", cairn.MaxUserListLimit)
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	prefix := []byte{prefixAuth, 'c'}
	lower := prefix
	if q.After != nil {
		lower = append(createdKey(q.After.CreatedAt, q.After.ID), 0) // strictly after
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, internal("list users", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases the finished scan
	page := &cairn.UserPage{}
	for ok := it.First(); ok; ok = it.Next() {
		if len(page.Users) == q.Limit {
			last := page.Users[len(page.Users)-1]
			page.Next = &cairn.UserCursor{CreatedAt: last.CreatedAt, ID: last.ID}
			break
		}
		id := string(it.Key()[len(prefix)+8:])
		u, err := s.UserByID(ctx, id)
		if err != nil {
			return nil, err
		}
		page.Users = append(page.Users, *u)
	}
	if err := it.Error(); err != nil {
		return nil, internal("list users", err)
	}
	return page, nil
}

// SetUserRole changes a user's role. See cairn.UserStore.
func (s *Store) SetUserRole(ctx context.Context, id, role string, now time.Time) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var r userRecord
	if err := s.getJSON(authKey('u', id), &r, "user"); err != nil {
		return err
	}
	r.Role, r.UpdatedAt = role, ms(now)
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	if err := setJSON(b, authKey('u', id), &r); err != nil {
		return internal("set role", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return internal("set role", err)
	}
	return nil
}

// CredentialAccount returns the user's credential account. See
// cairn.UserStore.
func (s *Store) CredentialAccount(ctx context.Context, userID string) (*cairn.Account, error) {
	if userID == "" {
		return nil, notFound("account")
	}
	var r accountRecord
	if err := s.getJSON(authKey('a', userID, cairn.ProviderCredential), &r, "account"); err != nil {
		return nil, err
	}
	return &cairn.Account{ID: r.ID, AccountID: r.AccountID, ProviderID: r.ProviderID, UserID: r.UserID,
		Password: r.Password, CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt)}, nil
}

func (r *sessionRecord) session() *cairn.Session {
	return &cairn.Session{ID: r.ID, Token: r.Token, UserID: r.UserID, ExpiresAt: fromMS(r.ExpiresAt),
		CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt), IPAddress: r.IPAddress, UserAgent: r.UserAgent}
}

// CreateSession stores a session. See cairn.SessionStore.
func (s *Store) CreateSession(ctx context.Context, sess *cairn.Session) error {
	if sess.Token == "" {
		return cairn.Errorf(cairn.EINVALID, "session token is required")
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	key := authKey('s', sess.Token)
	if taken, err := s.exists(key); err != nil {
		return err
	} else if taken {
		return cairn.Errorf(cairn.ECONFLICT, "session token already in use")
	}
	id := cairn.NewToken()
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	err := setJSON(b, key, &sessionRecord{ID: id, Token: sess.Token, UserID: sess.UserID, ExpiresAt: ms(sess.ExpiresAt),
		CreatedAt: ms(sess.CreatedAt), UpdatedAt: ms(sess.UpdatedAt), IPAddress: sess.IPAddress, UserAgent: sess.UserAgent})
	if err == nil {
		err = b.Set(authKey('S', sess.UserID, sess.Token), nil, nil)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return internal("create session", err)
	}
	sess.ID = id
	return nil
}

// SessionByToken returns a session. See cairn.SessionStore.
func (s *Store) SessionByToken(ctx context.Context, token string) (*cairn.Session, error) {
	if token == "" {
		return nil, notFound("session")
	}
	var r sessionRecord
	if err := s.getJSON(authKey('s', token), &r, "session"); err != nil {
		return nil, err
	}
	return r.session(), nil
}

// ExtendSession updates a session's expiry. See cairn.SessionStore.
func (s *Store) ExtendSession(ctx context.Context, token string, expiresAt, updatedAt time.Time) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var r sessionRecord
	if err := s.getJSON(authKey('s', token), &r, "session"); err != nil {
		return err
	}
	r.ExpiresAt, r.UpdatedAt = ms(expiresAt), ms(updatedAt)
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	if err := setJSON(b, authKey('s', token), &r); err != nil {
		return internal("extend session", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return internal("extend session", err)
	}
	return nil
}

// DeleteSession removes a session. See cairn.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	sess, err := s.SessionByToken(ctx, token)
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	err = b.Delete(authKey('s', token), nil)
	if err == nil {
		err = b.Delete(authKey('S', sess.UserID, token), nil)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return internal("delete session", err)
	}
	return nil
}

// DeleteUserSessions removes every session of a user. See
// cairn.SessionStore.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	prefix := append(authKey('S', userID), 0)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, internal("list sessions", err)
	}
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		token := string(it.Key()[len(prefix):])
		if err := b.Delete(authKey('s', token), nil); err != nil {
			it.Close() //nolint:errcheck // leaving on the error returned below; the iterator is only released
			return 0, internal("delete sessions", err)
		}
		if err := b.Delete(append([]byte(nil), it.Key()...), nil); err != nil {
			it.Close() //nolint:errcheck // leaving on the error returned below; the iterator is only released
			return 0, internal("delete sessions", err)
		}
		n++
	}
	if err := it.Close(); err != nil {
		return 0, internal("list sessions", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, internal("delete sessions", err)
	}
	return n, nil
}
