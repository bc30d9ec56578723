package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Identity links and tracked users live in three collections of the
// events' database, all maintained by InsertEvents for the events it newly
// inserted (never for duplicates):
//
//	identityLinks:   {_id: JSON ["anonymousId","userId"], anonymousId, userId,
//	                  first: "<occurredAtMs, 16 digits> <eventId>"}
//	trackedUsers:    {_id: userId, firstSeen: Date, lastSeen: Date,
//	                  eventCount: long, sessionCount: long,
//	                  traits: {<escaped key>: "<16-digit ms> <eventId> <JSON value>"}}
//	trackedSessions: {_id: JSON ["userId","sessionId"], userId}
//
// Every update is a bulk upsert that is atomic per document and needs no
// read first. identityLinks has one document per (anonymous id, user) pair
// ever linked, whose first is $min-ed to the earliest linking event's sort
// key; the user an anonymous id is merged into is that of its pair with the
// smallest first (the "first link wins" rule, see cairn's identity.go).
// Trait values are $max-ed: the fixed-width sort key in front makes the
// string order the (occurredAt, eventId) order, so the latest value wins.
// A session is new when its trackedSessions upsert inserted the document;
// sessionCount is $inc-ed by the number of new ones.
//
// Indexes: identityLinks {userId: 1} (the ids linked to a user) and
// {anonymousId: 1, first: 1} (an id's winning link); the others are read by
// _id.
//
// Without multi-document transactions (FerretDB and standalone servers
// have none) these writes follow the events' insertMany: if the server is
// lost between the two, the call fails and is retried, its events are then
// duplicates, and their link and tracked-user updates are not made. Events
// and journeys of single ids are unaffected.
const (
	collLinks    = "identityLinks"
	collTracked  = "trackedUsers"
	collSessions = "trackedSessions"

	// LinksUserIndexName and LinksAnonIndexName are the identityLinks indexes.
	LinksUserIndexName = "cairn_links_user"
	LinksAnonIndexName = "cairn_links_anon_first"
)

var _ cairn.TrackedUserStore = (*Store)(nil)

func (s *Store) collection(name string) *mongo.Collection {
	return s.client.Database(s.cfg.Database).Collection(name)
}

// ensureIdentityIndexes creates the identityLinks indexes (idempotent).
func (s *Store) ensureIdentityIndexes(ctx context.Context) error {
	_, err := s.collection(collLinks).Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "userId", Value: 1}}, Options: options.Index().SetName(LinksUserIndexName)},
		{Keys: bson.D{{Key: "anonymousId", Value: 1}, {Key: "first", Value: 1}}, Options: options.Index().SetName(LinksAnonIndexName)},
	})
	if code := serverCode(err); err != nil && code != codeIndexOptions && code != codeIndexKeySpecs {
		return storeError("create identity indexes", err)
	}
	return nil
}

// sortKey is the string whose byte order is the (occurredAt, eventId)
// order: occurredAt (1970–9999) in 16 zero-padded digits of milliseconds, a
// space (below every eventId character), the eventId.
func sortKey(ms int64, eventID string) string {
	return fmt.Sprintf("%016d %s", ms, eventID)
}

func pairID(a, b string) string {
	j, _ := json.Marshal([2]string{a, b}) // strings always marshal
	return string(j)
}

type userAgg struct {
	first, last   time.Time
	events        int64
	newSessions   int64
	traits        map[string]string // escaped key → sort key + " " + JSON
	traitSortKeys map[string]string
}

// applyIdentity records the links and tracked-user updates of the newly
// inserted events evs and returns the number of link conflicts.
func (s *Store) applyIdentity(ctx context.Context, evs []*cairn.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	users := map[string]*userAgg{}
	var userOrder []string
	type pair struct{ anon, user string }
	pairs := map[pair]string{} // → min sort key
	var linkEvents []*cairn.Event
	var sessModels []mongo.WriteModel
	seenSess := map[pair]bool{}
	for _, e := range evs {
		u := users[e.UserID]
		if u == nil {
			u = &userAgg{first: e.OccurredAt, last: e.OccurredAt}
			users[e.UserID] = u
			userOrder = append(userOrder, e.UserID)
		}
		if e.OccurredAt.Before(u.first) {
			u.first = e.OccurredAt
		}
		if e.OccurredAt.After(u.last) {
			u.last = e.OccurredAt
		}
		u.events++
		key := sortKey(e.OccurredAt.UnixMilli(), e.EventID)
		if e.SessionID != "" && !seenSess[pair{e.UserID, e.SessionID}] {
			seenSess[pair{e.UserID, e.SessionID}] = true
			sessModels = append(sessModels, mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: pairID(e.UserID, e.SessionID)}}).
				SetUpdate(bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "userId", Value: e.UserID}}}}).
				SetUpsert(true))
		}
		for k, v := range cairn.EventTraits(e) {
			if u.traits == nil {
				u.traits, u.traitSortKeys = map[string]string{}, map[string]string{}
			}
			ek := escapeKey(k)
			if old, ok := u.traitSortKeys[ek]; !ok || key > old {
				u.traitSortKeys[ek] = key
				u.traits[ek] = key + " " + string(v)
			}
		}
		if e.LinkCandidate() {
			linkEvents = append(linkEvents, e)
			p := pair{e.AnonymousID, e.UserID}
			if old, ok := pairs[p]; !ok || key < old {
				pairs[p] = key
			}
		}
	}

	if len(pairs) > 0 {
		models := make([]mongo.WriteModel, 0, len(pairs))
		for p, key := range pairs {
			models = append(models, mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: pairID(p.anon, p.user)}}).
				SetUpdate(bson.D{
					{Key: "$min", Value: bson.D{{Key: "first", Value: key}}},
					{Key: "$setOnInsert", Value: bson.D{{Key: "anonymousId", Value: p.anon}, {Key: "userId", Value: p.user}}},
				}).SetUpsert(true))
		}
		if _, err := s.bulkWrite(ctx, s.collection(collLinks), models); err != nil {
			return 0, storeError("record identity links", err)
		}
	}
	if len(sessModels) > 0 {
		res, err := s.bulkWrite(ctx, s.collection(collSessions), sessModels)
		if err != nil {
			return 0, storeError("record sessions", err)
		}
		// The upserted _ids say which sessions are new. (Their indexes are
		// not used: FerretDB numbers them among the upserts only.)
		for _, id := range res.UpsertedIDs {
			var p [2]string
			if sid, ok := id.(string); ok && json.Unmarshal([]byte(sid), &p) == nil {
				if u := users[p[0]]; u != nil {
					u.newSessions++
				}
			}
		}
	}
	models := make([]mongo.WriteModel, 0, len(users))
	for _, id := range userOrder {
		u := users[id]
		maxes := bson.D{{Key: "lastSeen", Value: u.last}}
		for _, k := range slices.Sorted(maps.Keys(u.traits)) {
			maxes = append(maxes, bson.E{Key: "traits." + k, Value: u.traits[k]})
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: id}}).
			SetUpdate(bson.D{
				{Key: "$min", Value: bson.D{{Key: "firstSeen", Value: u.first}}},
				{Key: "$max", Value: maxes},
				{Key: "$inc", Value: bson.D{{Key: "eventCount", Value: u.events}, {Key: "sessionCount", Value: u.newSessions}}},
			}).SetUpsert(true))
	}
	if _, err := s.bulkWrite(ctx, s.collection(collTracked), models); err != nil {
		return 0, storeError("update tracked users", err)
	}

	if len(linkEvents) == 0 {
		return 0, nil
	}
	anons := make([]string, 0, len(pairs))
	for p := range pairs {
		anons = append(anons, p.anon)
	}
	winners, err := s.winners(ctx, anons)
	if err != nil {
		return 0, err
	}
	return cairn.LogLinkConflicts(s.log, linkEvents, winners), nil
}

// winners returns, for each of anons that is linked, the user it is merged
// into: the user of its link pair with the smallest first.
func (s *Store) winners(ctx context.Context, anons []string) (map[string]string, error) {
	out := make(map[string]string, len(anons))
	if len(anons) == 0 {
		return out, nil
	}
	slices.Sort(anons)
	anons = slices.Compact(anons)
	cur, err := s.collection(collLinks).Find(ctx, bson.D{{Key: "anonymousId", Value: bson.D{{Key: "$in", Value: anons}}}},
		options.Find().SetSort(bson.D{{Key: "anonymousId", Value: 1}, {Key: "first", Value: 1}}))
	if err != nil {
		return nil, storeError("read identity links", err)
	}
	defer cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor, which the server also times out
	first := map[string]string{}
	for cur.Next(ctx) {
		a, _ := cur.Current.Lookup("anonymousId").StringValueOK()
		u, _ := cur.Current.Lookup("userId").StringValueOK()
		f, _ := cur.Current.Lookup("first").StringValueOK()
		if old, ok := first[a]; !ok || f < old {
			first[a], out[a] = f, u
		}
	}
	if err := cur.Err(); err != nil {
		return nil, storeError("read identity links", err)
	}
	return out, nil
}

// mergedIDs returns, for each of users, the anonymous ids merged into it,
// sorted; at most limit per user (0: all).
func (s *Store) mergedIDs(ctx context.Context, users []string, limit int) (map[string][]string, error) {
	out := map[string][]string{}
	if len(users) == 0 {
		return out, nil
	}
	var filter bson.D
	if len(users) == 1 {
		filter = bson.D{{Key: "userId", Value: users[0]}}
	} else {
		filter = bson.D{{Key: "userId", Value: bson.D{{Key: "$in", Value: users}}}}
	}
	cur, err := s.collection(collLinks).Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "anonymousId", Value: 1}}))
	if err != nil {
		return nil, storeError("read identity links", err)
	}
	var cands []string
	for cur.Next(ctx) {
		if a, ok := cur.Current.Lookup("anonymousId").StringValueOK(); ok {
			cands = append(cands, a)
		}
	}
	err = cur.Err()
	cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor, which the server also times out
	if err != nil {
		return nil, storeError("read identity links", err)
	}
	if len(cands) == 0 {
		return out, nil
	}
	winners, err := s.winners(ctx, cands)
	if err != nil {
		return nil, err
	}
	for a, u := range winners {
		out[u] = append(out[u], a)
	}
	for u, ids := range out {
		slices.Sort(ids)
		if limit > 0 && len(ids) > limit {
			ids = ids[:limit]
		}
		out[u] = ids
	}
	return out, nil
}

// TrackedUser returns the record of userID. See cairn.TrackedUserStore.
func (s *Store) TrackedUser(ctx context.Context, userID string) (*cairn.TrackedUser, error) {
	if s.ctx.Err() != nil {
		return nil, cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	raw, err := s.collection(collTracked).FindOne(ctx, bson.D{{Key: "_id", Value: userID}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, cairn.Errorf(cairn.ENOTFOUND, "tracked user not found")
	} else if err != nil {
		return nil, storeError("read tracked user", err)
	}
	u, err := decodeTracked(raw)
	if err != nil {
		return nil, storeError("read tracked user", err)
	}
	merged, err := s.mergedIDs(ctx, []string{userID}, 0)
	if err != nil {
		return nil, err
	}
	if ids := merged[userID]; ids != nil {
		u.AnonymousIDs = ids
	}
	return u, nil
}

// TrackedUsers returns a page of tracked users by userId. See
// cairn.TrackedUserStore.
func (s *Store) TrackedUsers(ctx context.Context, q cairn.TrackedUserQuery) (*cairn.TrackedUserPage, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if s.ctx.Err() != nil {
		return nil, cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var id bson.D
	if q.After != "" {
		id = append(id, bson.E{Key: "$gt", Value: q.After})
	}
	if q.Prefix != "" {
		id = append(id, bson.E{Key: "$regex", Value: "^" + regexp.QuoteMeta(q.Prefix)})
	}
	filter := bson.D{}
	if len(id) > 0 {
		filter = bson.D{{Key: "_id", Value: id}}
	}
	cur, err := s.collection(collTracked).Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(q.Limit)+1))
	if err != nil {
		return nil, storeError("list tracked users", err)
	}
	defer cur.Close(context.WithoutCancel(ctx)) //nolint:errcheck // results are checked with cur.Err(); Close only kills a server cursor, which the server also times out
	page := &cairn.TrackedUserPage{Users: []cairn.TrackedUser{}}
	for cur.Next(ctx) {
		if len(page.Users) == q.Limit {
			page.Next = page.Users[len(page.Users)-1].UserID
			break
		}
		u, err := decodeTracked(cur.Current)
		if err != nil {
			return nil, storeError("list tracked users", err)
		}
		page.Users = append(page.Users, *u)
	}
	if err := cur.Err(); err != nil {
		return nil, storeError("list tracked users", err)
	}
	ids := make([]string, len(page.Users))
	for i := range page.Users {
		ids[i] = page.Users[i].UserID
	}
	merged, err := s.mergedIDs(ctx, ids, 0)
	if err != nil {
		return nil, err
	}
	for i := range page.Users {
		if m := merged[page.Users[i].UserID]; m != nil {
			page.Users[i].AnonymousIDs = m
		}
	}
	return page, nil
}

// LinkedUser returns the user anonymousID is merged into, or "". See
// cairn.TrackedUserStore.
func (s *Store) LinkedUser(ctx context.Context, anonymousID string) (string, error) {
	if s.ctx.Err() != nil {
		return "", cairn.Errorf(cairn.EUNAVAILABLE, "store is closed")
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	w, err := s.winners(ctx, []string{anonymousID})
	if err != nil {
		return "", err
	}
	return w[anonymousID], nil
}

// decodeTracked decodes a trackedUsers document; AnonymousIDs is left
// empty.
func decodeTracked(doc bson.Raw) (*cairn.TrackedUser, error) {
	u := &cairn.TrackedUser{Traits: map[string]json.RawMessage{}, AnonymousIDs: []string{}}
	elems, err := doc.Elements()
	if err != nil {
		return nil, fmt.Errorf("decode tracked user: %w", err)
	}
	for _, el := range elems {
		v := el.Value()
		switch el.Key() {
		case "_id":
			u.UserID = scalarString(v)
		case "firstSeen":
			u.FirstSeen = timeValue(v)
		case "lastSeen":
			u.LastSeen = timeValue(v)
		case "eventCount":
			u.EventCount, _ = v.AsInt64OK()
		case "sessionCount":
			u.SessionCount, _ = v.AsInt64OK()
		case "traits":
			d, ok := v.DocumentOK()
			if !ok {
				continue
			}
			traits, _ := d.Elements()
			for _, tr := range traits {
				str, ok := tr.Value().StringValueOK()
				if !ok || len(str) < 17 {
					continue
				}
				_, val, ok := strings.Cut(str[17:], " ")
				if !ok || !json.Valid([]byte(val)) {
					continue
				}
				u.Traits[unescapeKey(tr.Key())] = json.RawMessage(val)
			}
		}
	}
	return u, nil
}
