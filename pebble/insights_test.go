package pebble_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/axiomhq/hyperloglog"

	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/storetest"
)

func TestInsightsConformance(t *testing.T) {
	storetest.RunInsights(t, func(t *testing.T) storetest.InsightsStore {
		s, err := pebble.Open(t.TempDir(), pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestUserSketchError measures the relative error of the unique-user
// sketches at 1M users, in one day's sketch and merged from seven days
// (a week) where each user appears on two of them.
func TestUserSketchError(t *testing.T) {
	const n = 1_000_000
	one := hyperloglog.New16()
	days := make([]*hyperloglog.Sketch, 7)
	for i := range days {
		days[i] = hyperloglog.New16()
	}
	var b []byte
	for i := range n {
		b = strconv.AppendInt(append(b[:0], "user-"...), int64(i), 10)
		one.Insert(b)
		days[i%7].Insert(b)
		days[(i+3)%7].Insert(b)
	}
	week := hyperloglog.New16()
	for _, d := range days {
		if err := week.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
	for name, sk := range map[string]*hyperloglog.Sketch{"day": one, "week": week} {
		rel := math.Abs(float64(sk.Estimate())-n) / n
		t.Logf("%s: estimate %d of %d users, relative error %.4f", name, sk.Estimate(), n, rel)
		if rel > 0.02 {
			t.Errorf("%s: relative error %.4f > 0.02", name, rel)
		}
	}
}
