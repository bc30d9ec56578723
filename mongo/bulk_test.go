package mongo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/mongo/mongotest"
	"github.com/cairn-dev/cairn/storetest"
)

// TestLargeBulkWrites stores batches whose identity and session updates
// are far more than one FerretDB command can take (200 users with 2
// sessions each, every event linking an anonymous id): each batch must
// complete, and every tracked user's event and session counts must be
// exact — the session counts come from the upserted ids of the sessions'
// bulk, split into several commands on FerretDB.
func TestLargeBulkWrites(t *testing.T) {
	srv := mongotest.Start(t)
	s := openFresh(t, srv)
	t.Cleanup(func() { s.Close() }) //nolint:errcheck // test cleanup
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const users = 200
	t0 := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
	for round := range 2 {
		var evs []cairn.Event
		for u := range users {
			for sess := range 2 {
				e := storetest.NewEvent(fmt.Sprintf("r%d-u%d-s%d", round, u, sess), fmt.Sprintf("user-%d", u), t0.Add(time.Duration(round*1000+u)*time.Millisecond))
				e.SessionID = fmt.Sprintf("sess-%d-%d", u, sess) // the same sessions in both rounds
				e.AnonymousID = fmt.Sprintf("anon-%d", u)
				evs = append(evs, e)
			}
		}
		res, err := s.InsertEvents(ctx, evs)
		if err != nil || res.Inserted != len(evs) {
			t.Fatalf("round %d: InsertEvents = %+v, %v; want %d inserted", round, res, err, len(evs))
		}
	}
	for _, u := range []int{0, 57, users - 1} {
		id := fmt.Sprintf("user-%d", u)
		tu, err := s.TrackedUser(ctx, id)
		if err != nil {
			t.Fatalf("TrackedUser(%s): %v", id, err)
		}
		if tu.EventCount != 4 || tu.SessionCount != 2 || len(tu.AnonymousIDs) != 1 {
			t.Errorf("%s = %+v; want 4 events, 2 sessions, 1 anonymous id", id, tu)
		}
	}
}
