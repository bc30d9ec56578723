package pebble

import "strings"

// userCache keeps, for the users InsertEvents saw last, what it would
// otherwise read back from the store for each of them on every batch: the
// encoded tracked-user record 'I' 't' and the erasure marker 'I' 'x'. A
// user who keeps sending events then costs no lookups at all; the lookups
// were the larger half of the identity work of an insert (issue 14's
// profile: 3.4 of 4.3 s of addIdentity, against 10.4 s for the whole
// insert path).
//
// It is a write-through cache of exactly what is stored, never a guess:
// it is read and written only under writeMu, the same lock every writer of
// those keys holds (InsertEvents writes records, EraseUser writes markers
// and deletes records), and InsertEvents installs an entry only after its
// batch has committed. EraseUser drops the entries of every id it erases.
//
// Eviction is by generations: entries go into cur; when cur holds more than
// half the budget, it becomes old and a new cur starts, dropping the
// previous old. An entry found in old moves back to cur. Two maps bound the
// memory at about the budget with no per-entry bookkeeping, and keep the
// users seen within the last generation. (The well-kept cache libraries
// bound entries by count, not bytes, or admit writes asynchronously, and a
// delayed write could install a record older than the one stored.)
type userCache struct {
	half     int // bytes per generation
	cur, old map[string]cachedUser
	curBytes int
}

// cachedUser is what the store holds for one user.
type cachedUser struct {
	record []byte // encoded tracked-user record; nil if the user has none
	erased int64  // erasure time in ms, when hasMarker
	// hasMarker is whether the user has an erasure marker.
	hasMarker bool
}

// DefaultUserCacheSize is the memory budget of the user cache when
// Options.UserCacheSize is zero.
const DefaultUserCacheSize = 16 << 20

// cachedUserOverhead approximates a map entry's memory besides its bytes.
const cachedUserOverhead = 96

func newUserCache(budget int) *userCache {
	return &userCache{half: budget / 2, cur: map[string]cachedUser{}}
}

// get returns the cached state of user.
func (c *userCache) get(user string) (cachedUser, bool) {
	if u, ok := c.cur[user]; ok {
		return u, true
	}
	u, ok := c.old[user]
	if ok {
		delete(c.old, user)
		c.put(user, u)
	}
	return u, ok
}

// put installs the state of user; the cache keeps u.record (callers pass a
// copy they do not change).
func (c *userCache) put(user string, u cachedUser) {
	if c.half <= 0 {
		return // no cache
	}
	if prev, ok := c.cur[user]; ok {
		c.curBytes -= entrySize(user, prev)
	}
	// A copy of the key: user is usually a decoded event's id, which shares
	// one allocation with the event's other strings (cairn.Event.DecodeBinary),
	// and entrySize counts only len(user).
	c.cur[strings.Clone(user)] = u
	c.curBytes += entrySize(user, u)
	if c.curBytes > c.half {
		c.old, c.cur, c.curBytes = c.cur, make(map[string]cachedUser, len(c.cur)), 0
	}
}

// drop forgets user.
func (c *userCache) drop(user string) {
	if prev, ok := c.cur[user]; ok {
		c.curBytes -= entrySize(user, prev)
		delete(c.cur, user)
	}
	delete(c.old, user)
}

// reset forgets every user.
func (c *userCache) reset() {
	c.cur, c.old, c.curBytes = map[string]cachedUser{}, nil, 0
}

func entrySize(user string, u cachedUser) int {
	return len(user) + cap(u.record) + cachedUserOverhead
}
