package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// Identity links and tracked users live under keys starting with 'I' (see
// the package doc for the layout). They are written in the same batch as
// the events that cause them, so they are exactly as durable as the events
// and a re-delivered (duplicate) event never changes them.
const prefixIdentity = 'I'

var _ cairn.TrackedUserStore = (*Store)(nil)

// Key kinds under prefixIdentity.
const (
	kindLink    = 'a' // anonymousId → winning link
	kindMerged  = 'm' // userId → the ids merged into it (encodeIDList)
	kindTracked = 't' // userId → tracked-user record
	kindSession = 's' // len userId sessionId → "" (a user's distinct sessions)
)

func identityKey(kind byte, id string) []byte {
	b := make([]byte, 0, 2+len(id))
	return append(append(b, prefixIdentity, kind), id...)
}

// userScopedKey is prefixIdentity kind uvarint(len(userID)) userID part: the
// length keeps users that are prefixes of each other apart.
func userScopedKey(kind byte, userID, part string) []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(userID)+len(part))
	b = binary.AppendUvarint(append(b, prefixIdentity, kind), uint64(len(userID)))
	b = append(b, userID...)
	return append(b, part...)
}

// link is the winning link of an anonymous id: the (occurredAt, eventId) of
// the first linking event and the user it names.
type link struct {
	ms      int64
	eventID string
	userID  string
}

func (l link) less(o link) bool {
	return l.ms < o.ms || l.ms == o.ms && l.eventID < o.eventID
}

// encodeLink is varint(ms) uvarint(len eventId) eventId userId.
func encodeLink(l link) []byte {
	b := binary.AppendVarint(nil, l.ms)
	b = appendString(b, l.eventID)
	return append(b, l.userID...)
}

func decodeLink(v []byte) (link, error) {
	var l link
	ms, k := binary.Varint(v)
	if k <= 0 {
		return l, errBadRecord
	}
	id, rest, ok := readString(v[k:])
	if !ok {
		return l, errBadRecord
	}
	return link{ms: ms, eventID: id, userID: string(rest)}, nil
}

var errBadRecord = errors.New("bad identity record")

// trait is one trait value with the sort key of the event that set it.
type trait struct {
	value   json.RawMessage
	ms      int64
	eventID string
}

// tracked is a tracked-user record.
type tracked struct {
	first, last int64 // occurredAt ms
	events      uint64
	sessions    uint64
	traits      map[string]trait
	// recent are a few of the user's sessions (each has its 'I' 's' key),
	// so that a continuing session needs no lookup.
	recent []string
}

// maxRecentSessions is how many session ids a record keeps in recent.
const maxRecentSessions = 4

const trackedVersion = 1

// appendTracked appends version(1) varint(first) varint(last)
// uvarint(events) uvarint(sessions) uvarint(n) n × (key value varint(ms)
// eventId) uvarint(r) r × sessionId, the traits sorted by key, strings as
// uvarint(len) bytes.
func appendTracked(b []byte, t *tracked) []byte {
	b = append(b, trackedVersion)
	b = binary.AppendVarint(b, t.first)
	b = binary.AppendVarint(b, t.last)
	b = binary.AppendUvarint(b, t.events)
	b = binary.AppendUvarint(b, t.sessions)
	b = binary.AppendUvarint(b, uint64(len(t.traits)))
	if len(t.traits) > 0 {
		for _, k := range slices.Sorted(maps.Keys(t.traits)) {
			tr := t.traits[k]
			b = appendString(b, k)
			b = appendString(b, string(tr.value))
			b = binary.AppendVarint(b, tr.ms)
			b = appendString(b, tr.eventID)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(t.recent)))
	for _, sess := range t.recent {
		b = appendString(b, sess)
	}
	return b
}

func decodeTracked(v []byte) (*tracked, error) {
	if len(v) == 0 || v[0] != trackedVersion {
		return nil, errBadRecord
	}
	v = v[1:]
	t := &tracked{}
	var k int
	if t.first, k = binary.Varint(v); k <= 0 {
		return nil, errBadRecord
	}
	v = v[k:]
	if t.last, k = binary.Varint(v); k <= 0 {
		return nil, errBadRecord
	}
	v = v[k:]
	if t.events, k = binary.Uvarint(v); k <= 0 {
		return nil, errBadRecord
	}
	v = v[k:]
	if t.sessions, k = binary.Uvarint(v); k <= 0 {
		return nil, errBadRecord
	}
	v = v[k:]
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)) {
		return nil, errBadRecord
	}
	v = v[k:]
	if n > 0 {
		t.traits = make(map[string]trait, n)
	}
	for range n {
		var key, val, id string
		var ok bool
		if key, v, ok = readString(v); !ok {
			return nil, errBadRecord
		}
		if val, v, ok = readString(v); !ok {
			return nil, errBadRecord
		}
		ms, k := binary.Varint(v)
		if k <= 0 {
			return nil, errBadRecord
		}
		v = v[k:]
		if id, v, ok = readString(v); !ok {
			return nil, errBadRecord
		}
		t.traits[key] = trait{value: json.RawMessage(val), ms: ms, eventID: id}
	}
	r, k := binary.Uvarint(v)
	if k <= 0 || r > uint64(len(v)) {
		return nil, errBadRecord
	}
	v = v[k:]
	if r > 0 {
		t.recent = make([]string, 0, r)
	}
	for range r {
		sess, rest, ok := readString(v)
		if !ok {
			return nil, errBadRecord
		}
		t.recent, v = append(t.recent, sess), rest
	}
	return t, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}

// userBatch is one user's share of an InsertEvents call.
type userBatch struct {
	id       string
	rec      tracked
	key      []byte   // its tracked-user key
	old      *tracked // the stored record, nil if none
	sessions []string // its distinct sessions in the batch
	written  []byte   // the record written to the batch
}

// sessKey is a (user index, sessionId) pair of a batch.
type sessKey struct {
	user    int
	session string
}

// linkChange is the decision for one anonymous id of a batch.
type linkChange struct {
	anon    string
	key     []byte // its link key
	val     []byte // the stored link, nil if none
	batch   link   // the batch's first link
	winner  string // the user it ends up merged into
	write   bool   // the batch's link is the new winning link
	oldUser string // the user it leaves, "" if none
}

// addIdentity adds to batch the identity links and tracked-user updates
// caused by the newly stored events evs: one read-modify-write per user and
// per linked anonymous id, the reads of each phase sorted through one
// iterator, and the records of users in the user cache read from it.
// markers are the erasure markers of the batch's users (erasureMarkers).
// It returns the number of link conflicts (see cairn.InsertResult) and the
// function to call once the batch is committed, which puts the users' new
// records in the cache. Callers hold writeMu.
func (s *Store) addIdentity(ctx context.Context, batch *pebble.Batch, evs []*cairn.Event, markers map[string]time.Time) (int, func(), error) {
	index := make(map[string]int, len(evs))
	users := make([]userBatch, 0, len(evs))
	sessions := map[sessKey]struct{}{}
	var changes []linkChange
	var linkIndex map[string]int
	var linkEvents []*cairn.Event // events carrying a link
	for _, e := range evs {
		ms := e.OccurredAt.UnixMilli()
		i, ok := index[e.UserID]
		if !ok {
			i = len(users)
			index[e.UserID] = i
			users = append(users, userBatch{id: e.UserID, rec: tracked{first: ms, last: ms}})
		}
		u := &users[i]
		u.rec.first, u.rec.last = min(u.rec.first, ms), max(u.rec.last, ms)
		u.rec.events++
		if e.SessionID != "" {
			sessions[sessKey{i, e.SessionID}] = struct{}{}
		}
		for k, v := range cairn.EventTraits(e) {
			if u.rec.traits == nil {
				u.rec.traits = map[string]trait{}
			}
			if old, ok := u.rec.traits[k]; !ok || ms > old.ms || ms == old.ms && e.EventID > old.eventID {
				u.rec.traits[k] = trait{value: v, ms: ms, eventID: e.EventID}
			}
		}
		if e.LinkCandidate() {
			linkEvents = append(linkEvents, e)
			if linkIndex == nil {
				linkIndex = map[string]int{}
			}
			l := link{ms: ms, eventID: e.EventID, userID: e.UserID}
			if j, ok := linkIndex[e.AnonymousID]; !ok {
				linkIndex[e.AnonymousID] = len(changes)
				changes = append(changes, linkChange{anon: e.AnonymousID, batch: l})
			} else if l.less(changes[j].batch) {
				changes[j].batch = l
			}
		}
	}

	// Phase 1: the users' records (those not in the cache) and the
	// anonymous ids' links.
	keys := make([][]byte, 0, len(users)+len(changes))
	var lookedUp []int // the users whose records are read
	var err error
	for i := range users {
		u := &users[i]
		u.key = identityKey(kindTracked, u.id)
		c, ok := s.users.get(u.id)
		if !ok {
			lookedUp = append(lookedUp, i)
			keys = append(keys, u.key)
			continue
		}
		if c.record != nil {
			if u.old, err = decodeTracked(c.record); err != nil {
				return 0, nil, fmt.Errorf("cached tracked user %q: %w", u.id, err)
			}
		}
	}
	for i := range changes {
		changes[i].key = identityKey(kindLink, changes[i].anon)
		keys = append(keys, changes[i].key)
	}
	vals, err := s.lookup(ctx, keys)
	if err != nil {
		return 0, nil, err
	}
	for j, i := range lookedUp {
		if vals[j] != nil {
			if users[i].old, err = decodeTracked(vals[j]); err != nil {
				return 0, nil, fmt.Errorf("tracked user %q: %w", users[i].id, err)
			}
		}
	}
	vals = vals[len(lookedUp):] // the links'

	// Decide every link; collect the merged lists to change.
	lists := map[string][]string{} // user → merged ids, once read
	var listUsers []string
	touch := func(user string) {
		if _, ok := lists[user]; !ok {
			lists[user] = nil
			listUsers = append(listUsers, user)
		}
	}
	for i := range changes {
		c := &changes[i]
		c.val = vals[i]
		c.winner, c.write = c.batch.userID, true
		if c.val != nil {
			old, err := decodeLink(c.val)
			if err != nil {
				return 0, nil, fmt.Errorf("link of %q: %w", c.anon, err)
			}
			switch {
			case !c.batch.less(old):
				c.winner, c.write = old.userID, false
			case old.userID != c.batch.userID:
				c.oldUser = old.userID
				s.log.Warn("identity link taken over by an earlier link", "anonymous_id", c.anon, "from_user", old.userID, "to_user", c.batch.userID)
			default:
				c.oldUser = "" // same user, earlier event: only the link record changes
			}
		}
		if c.write && (c.val == nil || c.oldUser != "") {
			touch(c.winner)
			if c.oldUser != "" {
				touch(c.oldUser)
			}
		}
	}

	// Phase 2: sessions of users that have a record (every session of a
	// new user is new), and the merged lists to change.
	var sess []sessKey
	keys = keys[:0]
	known := make(map[sessKey]bool, len(sessions))
	for k := range sessions {
		u := &users[k.user]
		u.sessions = append(u.sessions, k.session)
		if u.old == nil {
			continue
		}
		if slices.Contains(u.old.recent, k.session) {
			known[k] = true
			continue
		}
		sess = append(sess, k)
		keys = append(keys, userScopedKey(kindSession, u.id, k.session))
	}
	sessKeys := slices.Clone(keys) // lookup reorders nothing, but keys is reused below
	for _, u := range listUsers {
		keys = append(keys, identityKey(kindMerged, u))
	}
	vals, err = s.lookup(ctx, keys)
	if err != nil {
		return 0, nil, err
	}
	for i, k := range sess {
		known[k] = vals[i] != nil
		if vals[i] == nil {
			if err := batch.Set(sessKeys[i], nil, nil); err != nil {
				return 0, nil, fmt.Errorf("batch set: %w", err)
			}
			users[k.user].rec.sessions++
		}
	}
	for i, u := range listUsers {
		ids, err := decodeIDList(vals[len(sess)+i])
		if err != nil {
			return 0, nil, fmt.Errorf("merged ids of %q: %w", u, err)
		}
		lists[u] = ids
	}

	for k := range sessions {
		if _, looked := known[k]; looked {
			continue
		}
		users[k.user].rec.sessions++
		if err := batch.Set(userScopedKey(kindSession, users[k.user].id, k.session), nil, nil); err != nil {
			return 0, nil, fmt.Errorf("batch set: %w", err)
		}
	}
	for i := range users {
		u := &users[i]
		rec := &u.rec
		if old := u.old; old != nil {
			old.first, old.last = min(old.first, rec.first), max(old.last, rec.last)
			old.events += rec.events
			old.sessions += rec.sessions
			for k, tr := range rec.traits {
				if o, ok := old.traits[k]; !ok || tr.ms > o.ms || tr.ms == o.ms && tr.eventID > o.eventID {
					if old.traits == nil {
						old.traits = map[string]trait{}
					}
					old.traits[k] = tr
				}
			}
			rec = old
		}
		rec.recent = recentSessions(u.sessions, rec.recent)
		u.written = appendTracked(nil, rec)
		if err := batch.Set(u.key, u.written, nil); err != nil {
			return 0, nil, fmt.Errorf("batch set: %w", err)
		}
	}

	winners := make(map[string]string, len(changes))
	for i := range changes {
		c := &changes[i]
		winners[c.anon] = c.winner
		if !c.write {
			continue
		}
		if err := batch.Set(c.key, encodeLink(c.batch), nil); err != nil {
			return 0, nil, fmt.Errorf("batch set: %w", err)
		}
		if c.val == nil || c.oldUser != "" {
			lists[c.winner] = insertSorted(lists[c.winner], c.anon)
			if c.oldUser != "" {
				lists[c.oldUser] = removeSorted(lists[c.oldUser], c.anon)
			}
		}
	}
	for _, u := range listUsers {
		key := identityKey(kindMerged, u)
		var err error
		if ids := lists[u]; len(ids) == 0 {
			err = batch.Delete(key, nil)
		} else {
			err = batch.Set(key, encodeIDList(ids), nil)
		}
		if err != nil {
			return 0, nil, fmt.Errorf("batch write: %w", err)
		}
	}

	committed := func() {
		for i := range users {
			c := cachedUser{record: users[i].written}
			if at, ok := markers[users[i].id]; ok {
				c.erased, c.hasMarker = at.UnixMilli(), true
			}
			s.users.put(users[i].id, c)
		}
	}
	return cairn.LogLinkConflicts(s.log, linkEvents, winners), committed, nil
}

// recentSessions returns up to maxRecentSessions ids: the batch's, then
// the ones kept before.
func recentSessions(batch, before []string) []string {
	if len(batch) >= maxRecentSessions {
		return batch[:maxRecentSessions]
	}
	out := make([]string, 0, maxRecentSessions)
	out = append(out, batch...)
	for _, s := range before {
		if len(out) == maxRecentSessions {
			break
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func insertSorted(ids []string, id string) []string {
	i, found := slices.BinarySearch(ids, id)
	if found {
		return ids
	}
	return slices.Insert(ids, i, id)
}

func removeSorted(ids []string, id string) []string {
	if i, found := slices.BinarySearch(ids, id); found {
		return slices.Delete(ids, i, i+1)
	}
	return ids
}

// encodeIDList is uvarint(n) n × string(id), the ids sorted.
func encodeIDList(ids []string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ids)))
	for _, id := range ids {
		b = appendString(b, id)
	}
	return b
}

// decodeIDList decodes encodeIDList's output; nil or empty input is no ids.
func decodeIDList(v []byte) ([]string, error) {
	if len(v) == 0 {
		return nil, nil
	}
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)) {
		return nil, errBadRecord
	}
	v = v[k:]
	ids := make([]string, 0, n)
	for range n {
		id, rest, ok := readString(v)
		if !ok {
			return nil, errBadRecord
		}
		ids, v = append(ids, id), rest
	}
	return ids, nil
}

// lookup returns the value of each key (nil when it does not exist), in
// the order of keys, reading them in key order through one iterator (as the
// dedup check does).
func (s *Store) lookup(ctx context.Context, keys [][]byte) ([][]byte, error) {
	vals := make([][]byte, len(keys))
	if len(keys) == 0 {
		return vals, nil
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	lo, hi := keys[order[0]], keys[order[len(order)-1]]
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: append(bytes.Clone(hi), 0)})
	if err != nil {
		return nil, fmt.Errorf("identity iterator: %w", err)
	}
	var arena []byte // one buffer for the values, which are small
	for n, i := range order {
		yieldEvery(n)
		k := keys[i]
		if it.SeekPrefixGE(k) && bytes.Equal(it.Key(), k) {
			v, err := it.ValueAndErr()
			if err != nil {
				it.Close() //nolint:errcheck // leaving on the error returned below; the iterator is only released
				return nil, fmt.Errorf("identity read: %w", err)
			}
			if cap(arena)-len(arena) < len(v)+1 {
				arena = make([]byte, 0, max(4096, len(v)+1))
			}
			start := len(arena)
			arena = append(arena, v...)
			vals[i] = arena[start:len(arena):len(arena)] // non-nil even when empty
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("identity lookup: %w", err)
	}
	return vals, nil
}

// get returns the value of key, or nil when it does not exist.
func (s *Store) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	v = bytes.Clone(v)
	closer.Close() //nolint:errcheck // the closer releases the value buffer of a successful Get; it has no error to report
	return v, nil
}

// mergedIDs returns the anonymous ids merged into userID in byte order, at
// most limit of them (0: all): one point lookup, which the bloom filters
// make cheap for the many users that have none.
func (s *Store) mergedIDs(userID string, limit int) ([]string, error) {
	v, err := s.get(identityKey(kindMerged, userID))
	if err != nil {
		return nil, err
	}
	ids, err := decodeIDList(v)
	if err != nil {
		return nil, fmt.Errorf("merged ids of %q: %w", userID, err)
	}
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}

// TrackedUser returns the record of userID. See cairn.TrackedUserStore.
func (s *Store) TrackedUser(ctx context.Context, userID string) (*cairn.TrackedUser, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	v, err := s.get(identityKey(kindTracked, userID))
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, cairn.Errorf(cairn.ENOTFOUND, "tracked user not found")
	}
	return s.trackedUser(userID, v)
}

func (s *Store) trackedUser(userID string, v []byte) (*cairn.TrackedUser, error) {
	rec, err := decodeTracked(v)
	if err != nil {
		return nil, fmt.Errorf("tracked user %q: %w", userID, err)
	}
	ids, err := s.mergedIDs(userID, 0)
	if err != nil {
		return nil, err
	}
	u := &cairn.TrackedUser{
		UserID: userID, FirstSeen: msTime(rec.first), LastSeen: msTime(rec.last),
		EventCount: int64(rec.events), SessionCount: int64(rec.sessions),
		Traits: make(map[string]json.RawMessage, len(rec.traits)), AnonymousIDs: ids,
	}
	if u.AnonymousIDs == nil {
		u.AnonymousIDs = []string{}
	}
	for k, tr := range rec.traits {
		u.Traits[k] = tr.value
	}
	return u, nil
}

// TrackedUsers returns a page of tracked users by userId. See
// cairn.TrackedUserStore.
func (s *Store) TrackedUsers(ctx context.Context, q cairn.TrackedUserQuery) (*cairn.TrackedUserPage, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	prefix := identityKey(kindTracked, q.Prefix)
	lower := prefix
	if q.After != "" {
		if after := append(identityKey(kindTracked, q.After), 0); bytes.Compare(after, lower) > 0 {
			lower = after
		}
	}
	page := &cairn.TrackedUserPage{Users: []cairn.TrackedUser{}}
	upper := prefixEnd(prefix)
	if bytes.Compare(lower, upper) >= 0 {
		return page, nil
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("tracked users iterator: %w", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases the finished scan
	for ok := it.First(); ok; ok = it.Next() {
		if len(page.Users) == q.Limit {
			page.Next = page.Users[len(page.Users)-1].UserID
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("tracked users read: %w", err)
		}
		u, err := s.trackedUser(string(it.Key()[2:]), v)
		if err != nil {
			return nil, err
		}
		page.Users = append(page.Users, *u)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("tracked users scan: %w", err)
	}
	return page, nil
}

// LinkedUser returns the user anonymousID is merged into, or "". See
// cairn.TrackedUserStore.
func (s *Store) LinkedUser(ctx context.Context, anonymousID string) (string, error) {
	if err := s.checkOpen(); err != nil {
		return "", err
	}
	v, err := s.get(identityKey(kindLink, anonymousID))
	if err != nil || v == nil {
		return "", err
	}
	l, err := decodeLink(v)
	if err != nil {
		return "", fmt.Errorf("link of %q: %w", anonymousID, err)
	}
	return l.userID, nil
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
