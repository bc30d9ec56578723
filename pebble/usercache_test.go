package pebble

import (
	"fmt"
	"testing"
)

func TestUserCache(t *testing.T) {
	c := newUserCache(4096)
	if _, ok := c.get("alice"); ok {
		t.Fatal("empty cache has alice")
	}
	c.put("alice", cachedUser{record: []byte("rec-1")})
	c.put("bob", cachedUser{erased: 42, hasMarker: true})
	if u, ok := c.get("alice"); !ok || string(u.record) != "rec-1" || u.hasMarker {
		t.Errorf("get(alice) = %+v, %v; want rec-1, no marker", u, ok)
	}
	if u, ok := c.get("bob"); !ok || u.record != nil || !u.hasMarker || u.erased != 42 {
		t.Errorf("get(bob) = %+v, %v; want no record, marker 42", u, ok)
	}
	c.put("alice", cachedUser{record: []byte("rec-2")})
	if u, _ := c.get("alice"); string(u.record) != "rec-2" {
		t.Errorf("get(alice) after a new put = %q, want rec-2", u.record)
	}
	c.drop("alice")
	if _, ok := c.get("alice"); ok {
		t.Error("alice still cached after drop")
	}
	c.reset()
	if _, ok := c.get("bob"); ok {
		t.Error("bob still cached after reset")
	}
}

// TestUserCacheBounded fills the cache far past its budget: memory stays
// near the budget, the users put last are kept, and a user read from the
// old generation survives the next turn.
func TestUserCacheBounded(t *testing.T) {
	const budget = 64 << 10
	c := newUserCache(budget)
	rec := make([]byte, 200)
	for i := range 10_000 {
		c.put(fmt.Sprint("user-", i), cachedUser{record: rec})
		if i == 5000 {
			if _, ok := c.get("user-4990"); !ok {
				t.Fatal("user-4990 evicted 10 puts later")
			}
		}
		bytes := 0
		for _, m := range []map[string]cachedUser{c.cur, c.old} {
			for k, u := range m {
				bytes += entrySize(k, u)
			}
		}
		if bytes > budget+entrySize("user-10000", cachedUser{record: rec}) {
			t.Fatalf("after %d puts the cache holds %d bytes, budget %d", i+1, bytes, budget)
		}
	}
	if _, ok := c.get("user-9999"); !ok {
		t.Error("last user put is not cached")
	}
	if _, ok := c.get("user-0"); ok {
		t.Error("first of 10,000 users still cached in a 64 KiB cache")
	}

	// A user found in old moves to cur and outlives old.
	c = newUserCache(budget)
	c.put("keep", cachedUser{record: rec})
	i := 0
	for ; c.old == nil; i++ {
		c.put(fmt.Sprint("a-", i), cachedUser{record: rec})
	}
	if _, ok := c.get("keep"); !ok {
		t.Fatal("keep evicted by the first turn")
	}
	for n := len(c.cur); len(c.cur) >= n; i++ { // until the next turn
		n = len(c.cur)
		c.put(fmt.Sprint("a-", i), cachedUser{record: rec})
	}
	if _, ok := c.get("keep"); !ok {
		t.Error("keep, read after the first turn, evicted by the second")
	}
}

func TestUserCacheOff(t *testing.T) {
	c := newUserCache(0)
	c.put("alice", cachedUser{record: []byte("rec")})
	if _, ok := c.get("alice"); ok {
		t.Error("a cache with no budget keeps alice")
	}
}
