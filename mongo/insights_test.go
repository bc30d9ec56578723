package mongo_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"

	"github.com/cairn-dev/cairn/mongo"
	"github.com/cairn-dev/cairn/mongo/mongotest"
	"github.com/cairn-dev/cairn/storetest"
)

func TestInsightsConformance(t *testing.T) {
	srv := mongotest.Start(t)
	storetest.RunInsights(t, func(t *testing.T) storetest.InsightsStore {
		return openFresh(t, srv)
	})
}

// TestInsightsTwoWriters: two Stores (as two writer processes) sharing one
// database count into the same counters and per-writer sketches, and the
// answers merge both.
func TestInsightsTwoWriters(t *testing.T) {
	srv := mongotest.Start(t)
	uri := srv.DatabaseURI(mongotest.DatabaseName(t))
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var stores []*mongo.Store
	for range 2 {
		s, err := mongo.Open(t.Context(), mongo.Config{URI: uri}, testLogger(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		stores = append(stores, s)
	}
	for w, s := range stores {
		for b := range 3 {
			var evs []cairn.Event
			for i := range 10 {
				evs = append(evs, storetest.NewEvent(fmt.Sprintf("w%d-%d-%d", w, b, i), fmt.Sprintf("user-%d-%d", w, i), day.Add(time.Duration(b)*time.Hour)))
			}
			if _, err := s.InsertEvents(t.Context(), evs); err != nil {
				t.Fatalf("InsertEvents: %v", err)
			}
		}
	}
	tr, err := stores[0].Trends(t.Context(), cairn.TrendsQuery{From: day, To: day, Interval: cairn.IntervalDay})
	if err != nil {
		t.Fatalf("Trends: %v", err)
	}
	if len(tr.Series) != 1 || tr.Series[0].Total != 60 {
		t.Errorf("trends = %+v, want 60 page_views", tr.Series)
	}
	u, err := stores[1].UniqueUsers(t.Context(), cairn.UsersQuery{From: day, To: day, Interval: cairn.IntervalDay})
	if err != nil {
		t.Fatalf("UniqueUsers: %v", err)
	}
	if len(u.Points) != 1 || u.Points[0].Users != 20 {
		t.Errorf("users = %+v, want 20", u.Points)
	}
}
