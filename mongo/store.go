// Package mongo is Cairn's MongoDB event store, for users of the Node seed
// who run MongoDB (standalone, replica set or Atlas). It uses the official
// driver, go.mongodb.org/mongo-driver/v2.
//
// # Documents
//
// Events live in one collection (default "events" in the URI's database,
// default "martech"), one document per event, shaped as the seed's:
//
//	{_id: eventId (string), userId, sessionId, type,
//	 payload: {...} (sub-document, JSON types preserved),
//	 occurredAt: Date, receivedAt: Date}
//
// _id gives dedup: InsertEvents is an unordered insertMany in which a
// duplicate-key error (11000) for a document means "already stored". Any
// other failure fails the call, so the pipeline retries it with backoff,
// except errors that can never succeed for that document (too large, invalid
// field name, ...) which are returned in InsertResult.Rejected for the
// dead-letter file. Documents written by the seed read leniently (an
// "eventId" field, an ObjectId _id, extra fields).
//
// Payload keys containing "." or a NUL byte, or starting with "$" or "%",
// are stored escaped (see escapeKey) so the same event is accepted by every
// MongoDB-wire server; journeys unescape them.
//
// # Indexes
//
// Open creates, idempotently and in the background (retrying until the
// server answers): {userId: 1, occurredAt: -1, _id: -1}, which serves
// journey queries (filter on userId and the occurredAt range, sort by the
// index order, limit) as an IXSCAN with no in-memory sort; and, when
// Retention is set, a TTL index on receivedAt. A server without TTL indexes
// (FerretDB answers NotImplemented) gets a periodic deleteMany instead.
//
// # Insights
//
// Trends and unique users come from aggregates InsertEvents updates after
// its insertMany for the newly inserted events only (insights.go):
// per-(hour, type, source) counters updated with $inc (commutative, so
// several writer processes sharing the database add up exactly), and
// HyperLogLog sketches kept as one document per (day, writer instance),
// each written only by the Store that owns it and merged at query time, so
// concurrent writers never race on a sketch. Funnels, retention and top
// values scan the events (package insights).
//
// # Availability
//
// Open never fails because the server is unreachable: the driver connects
// lazily and reconnects by itself, and every operation returns a
// cairn.EUNAVAILABLE error until the server is back.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Defaults for Config.
const (
	DefaultDatabase      = "martech"
	DefaultCollection    = "events"
	DefaultWriteConcern  = "majority"
	DefaultOpTimeout     = 30 * time.Second
	DefaultPurgeInterval = time.Minute

	// defaultServerSelection bounds how long an operation waits for a usable
	// server when the URI does not say (the driver's own default is 30 s).
	defaultServerSelection = 5 * time.Second
	defaultConnectTimeout  = 5 * time.Second
)

// Index names created by Open.
const (
	JourneyIndexName   = "cairn_journey"
	RetentionIndexName = "cairn_retention_ttl"
)

// Config configures a Store.
type Config struct {
	// URI is the MongoDB connection string (mongodb:// or mongodb+srv://).
	// Its options (replicaSet, tls, authSource, timeouts, pool sizes, w, ...)
	// are respected.
	URI string
	// Database overrides the URI's database; empty means the URI path, or
	// DefaultDatabase when the URI has none.
	Database string
	// Collection is the events collection; empty means DefaultCollection.
	Collection string
	// WriteConcern is "majority" or a number of members (1, 2, ...), as
	// ParseWriteConcern accepts. It overrides the URI's w; empty keeps the
	// URI's w, or "majority" when the URI has none. 0 (unacknowledged) is
	// refused: a 202 promises the event is stored.
	WriteConcern string
	// Retention deletes events whose receivedAt is older; 0 keeps them.
	Retention time.Duration
	// PurgeInterval is how often expired events are deleted when the server
	// has no TTL indexes; 0 means DefaultPurgeInterval.
	PurgeInterval time.Duration
	// OpTimeout bounds each operation whose context has no deadline; 0 means
	// DefaultOpTimeout.
	OpTimeout time.Duration
}

// Store is a cairn.EventStore kept in a MongoDB collection, and a
// cairn.TrackedUserStore (identity.go).
type Store struct {
	client *mongo.Client
	coll   *mongo.Collection
	cfg    Config
	log    *slog.Logger

	ctx       context.Context // canceled by Close; bounds background work
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	insights insightWriter // sketch updates (insights.go)

	mu          sync.Mutex
	indexed     bool // journey index created
	ttlIndex    bool // the TTL index does retention
	serverKnown bool // isFerretDB has asked the server (bulk.go)
	ferretDB    bool // the server is FerretDB
}

var _ cairn.EventStore = (*Store)(nil)

// Open connects to the MongoDB deployment described by cfg. It fails only
// for an invalid URI or setting: the connection is made lazily, and indexes
// are created in the background, retried until the server answers. logger
// (nil discards) should already be narrowed to the component.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.URI == "" {
		return nil, errors.New("open mongo: URI is empty")
	}
	opts := options.Client().ApplyURI(cfg.URI)
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("open mongo: invalid URI: %w", redactErr(err, cfg.URI))
	}
	if cfg.Database == "" {
		cfg.Database = uriDatabase(cfg.URI)
	}
	if cfg.Database == "" {
		cfg.Database = DefaultDatabase
	}
	if cfg.Collection == "" {
		cfg.Collection = DefaultCollection
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.PurgeInterval <= 0 {
		cfg.PurgeInterval = DefaultPurgeInterval
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("open mongo: negative retention %s", cfg.Retention)
	}
	switch {
	case cfg.WriteConcern != "":
		wc, err := ParseWriteConcern(cfg.WriteConcern)
		if err != nil {
			return nil, fmt.Errorf("open mongo: %w", err)
		}
		opts.SetWriteConcern(wc)
	case opts.WriteConcern == nil || opts.WriteConcern.W == nil:
		opts.SetWriteConcern(writeconcern.Majority())
	case !opts.WriteConcern.Acknowledged():
		return nil, errors.New("open mongo: the URI asks for w=0 (unacknowledged writes); Cairn needs acknowledged writes")
	}
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(defaultServerSelection)
	}
	if opts.ConnectTimeout == nil {
		opts.SetConnectTimeout(defaultConnectTimeout)
	}
	if opts.AppName == nil {
		opts.SetAppName("cairn")
	}

	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("open mongo: %w", redactErr(err, cfg.URI))
	}
	// Background work (index retries, purges) lives until Close, not until
	// Open's ctx ends: it keeps ctx's values but not its cancellation.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{
		client: client,
		coll:   client.Database(cfg.Database).Collection(cfg.Collection),
		cfg:    cfg,
		log:    logger,
		ctx:    bg,
		cancel: cancel,
	}
	logger.Info("mongo store configured", "database", cfg.Database, "collection", cfg.Collection,
		"write_concern", fmt.Sprint(opts.WriteConcern.W), "retention", cfg.Retention.String())

	// Try the indexes once synchronously (briefly), so a reachable server is
	// ready when Open returns; otherwise keep trying in the background.
	first, cancelFirst := context.WithTimeout(ctx, 2*time.Second)
	err = s.ensureIndexes(first)
	cancelFirst()
	if err != nil {
		logger.Warn("cannot create indexes yet; retrying in the background", "err", err)
	}
	s.wg.Add(1)
	go s.maintain(bg, err == nil)
	return s, nil
}

// ParseWriteConcern parses a write concern setting (CAIRN_MONGO_WRITE_CONCERN):
// "majority" or a number of members ≥ 1. "0" (unacknowledged) is refused, as
// is anything else: a 202 promises the event is stored. It is the one parser
// of the setting; the configuration validates with it.
func ParseWriteConcern(s string) (*writeconcern.WriteConcern, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, errors.New("empty write concern")
	case strings.EqualFold(s, "majority"):
		return writeconcern.Majority(), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("write concern %q: must be majority or an integer ≥ 1 (a 202 promises the event is stored)", s)
	}
	return &writeconcern.WriteConcern{W: n}, nil
}

// uriDatabase returns the database path of a MongoDB URI, without parsing
// hosts (mongodb+srv URIs would need DNS).
func uriDatabase(uri string) string {
	i := strings.Index(uri, "://")
	if i < 0 {
		return ""
	}
	rest := uri[i+3:]
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q]
	}
	// The user info may contain '/' only percent-encoded, so the first '/'
	// after the hosts starts the path.
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return ""
	}
	db, err := url.PathUnescape(rest[j+1:])
	if err != nil {
		return ""
	}
	return db
}

// redactErr replaces the URI's password in err's text.
func redactErr(err error, uri string) error {
	i := strings.Index(uri, "://")
	if i < 0 {
		return err
	}
	hosts := uri[i+3:]
	if j := strings.IndexAny(hosts, "/?"); j >= 0 {
		hosts = hosts[:j]
	}
	at := strings.LastIndexByte(hosts, '@')
	if at < 0 {
		return err
	}
	_, pw, ok := strings.Cut(hosts[:at], ":")
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

// Database returns the database name in use.
func (s *Store) Database() string { return s.cfg.Database }

// opContext bounds ctx by OpTimeout when it has no deadline.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.OpTimeout)
}

// maintain retries index creation until it succeeds, then runs the purge
// loop when retention needs it. It stops when ctx (the store's lifetime,
// cancelled by Close) ends.
func (s *Store) maintain(ctx context.Context, indexed bool) {
	defer s.wg.Done()
	backoff := time.Second
	for !indexed {
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.ensureIndexes(opCtx)
		cancel()
		if err == nil {
			s.log.Info("indexes created")
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("cannot create indexes yet", "err", err, "retry_in", backoff.String())
		backoff = min(backoff*2, 30*time.Second)
	}
	s.mu.Lock()
	purge := s.cfg.Retention > 0 && !s.ttlIndex
	s.mu.Unlock()
	if !purge {
		return
	}
	s.log.Info("retention by periodic delete", "retention", s.cfg.Retention.String(), "interval", s.cfg.PurgeInterval.String())
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		opCtx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		n, err := s.PurgeExpired(opCtx, time.Now())
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("retention purge failed", "err", err)
		} else if n > 0 {
			s.log.Info("retention purge", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ensureIndexes creates the journey index and, with retention, the TTL
// index. Both are idempotent.
func (s *Store) ensureIndexes(ctx context.Context) error {
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "userId", Value: 1}, {Key: "occurredAt", Value: -1}, {Key: "_id", Value: -1}},
		Options: options.Index().SetName(JourneyIndexName),
	})
	if err != nil && serverCode(err) != codeIndexOptions && serverCode(err) != codeIndexKeySpecs {
		return storeError("create journey index", err)
	} else if err != nil {
		// The same keys exist under another name: it serves as well.
		s.log.Info("journey index already exists under another name", "err", err)
	}
	if err := s.ensureIdentityIndexes(ctx); err != nil {
		return err
	}
	if err := s.ensureInsightIndexes(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.indexed = true
	s.mu.Unlock()
	if s.cfg.Retention <= 0 {
		s.warnStrayTTL(ctx)
		return nil
	}
	return s.ensureTTL(ctx)
}

// ensureTTL creates (or updates) the TTL index on receivedAt. A server
// without TTL support is logged and left to the periodic purge.
func (s *Store) ensureTTL(ctx context.Context) error {
	secs := int32(min(s.cfg.Retention/time.Second, 1<<31-1))
	if secs < 1 {
		secs = 1
	}
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "receivedAt", Value: 1}},
		Options: options.Index().SetName(RetentionIndexName).SetExpireAfterSeconds(secs),
	})
	switch code := serverCode(err); {
	case err == nil:
		s.setTTL(true)
		return nil
	case code == codeNotImplemented:
		s.log.Warn("server has no TTL indexes (NotImplemented); deleting expired events periodically instead", "err", err)
		s.setTTL(false)
		return nil
	case code == codeIndexOptions || code == codeIndexKeySpecs:
		// Retention changed: update the existing index in place.
		res := s.coll.Database().RunCommand(ctx, bson.D{
			{Key: "collMod", Value: s.cfg.Collection},
			{Key: "index", Value: bson.D{{Key: "keyPattern", Value: bson.D{{Key: "receivedAt", Value: 1}}}, {Key: "expireAfterSeconds", Value: secs}}},
		})
		if err := res.Err(); err != nil {
			s.log.Warn("cannot update the TTL index; deleting expired events periodically instead", "err", err)
			s.setTTL(false)
			return nil
		}
		s.log.Info("TTL index updated", "expire_after_seconds", secs)
		s.setTTL(true)
		return nil
	case isUnavailable(err):
		return storeError("create TTL index", err)
	default:
		s.log.Warn("cannot create the TTL index; deleting expired events periodically instead", "err", err)
		s.setTTL(false)
		return nil
	}
}

func (s *Store) setTTL(v bool) {
	s.mu.Lock()
	s.ttlIndex = v
	s.mu.Unlock()
}

// warnStrayTTL logs when retention is off but a TTL index still deletes
// events (left by an earlier retention setting or by the seed).
func (s *Store) warnStrayTTL(ctx context.Context) {
	cur, err := s.coll.Indexes().List(ctx)
	if err != nil {
		return
	}
	defer cur.Close(ctx) //nolint:errcheck // a best-effort warning scan; Close only kills a server cursor, which the server also times out
	for cur.Next(ctx) {
		name, _ := cur.Current.Lookup("name").StringValueOK()
		if v, err := cur.Current.LookupErr("expireAfterSeconds"); err == nil {
			s.log.Warn("retention is off but a TTL index still deletes old events; drop it to keep them",
				"index", name, "expire_after_seconds", v.String())
		}
	}
}

// PurgeExpired deletes events whose receivedAt is older than the retention
// before now, and returns how many. It does nothing when retention is off.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	if s.cfg.Retention <= 0 {
		return 0, nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "receivedAt", Value: bson.D{{Key: "$lt", Value: now.Add(-s.cfg.Retention)}}}})
	if err != nil {
		return 0, storeError("purge expired events", err)
	}
	return res.DeletedCount, nil
}

// Ping reports whether the primary is reachable: nil or EUNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "MongoDB is unreachable.", Err: fmt.Errorf("ping: %w", err)}
	}
	return nil
}

// CountEvents returns the number of documents in the events collection.
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	n, err := s.coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, storeError("count events", err)
	}
	return n, nil
}

// Close stops background work and disconnects, waiting at most 10 s.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.client.Disconnect(ctx); err != nil {
			s.closeErr = fmt.Errorf("close mongo: %w", err)
		}
	})
	return s.closeErr
}
