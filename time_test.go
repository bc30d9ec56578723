package cairn_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// TestAppendTimeMatchesAppendFormat checks the direct conversion of
// AppendTime against time.AppendFormat with TimeLayout: every day from
// 1600 to 2500 (leap and century rules), the edges of the years it
// handles directly and those it leaves to AppendFormat, instants before
// 1970, other locations, and random instants over the whole range.
func TestAppendTimeMatchesAppendFormat(t *testing.T) {
	check := func(tm time.Time) {
		t.Helper()
		want := tm.UTC().Format(cairn.TimeLayout)
		if got := string(cairn.AppendTime([]byte("x"), tm)); got != "x"+want {
			t.Fatalf("AppendTime(%v) = %q, want %q", tm, got[1:], want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for d := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2500; d = d.AddDate(0, 0, 1) {
		check(d.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))))
	}
	edges := []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 29, 12, 0, 0, 500e6, time.UTC),
		time.Date(1900, 3, 1, 0, 0, 0, 1e6-1, time.UTC),
		time.Date(2026, 12, 2, 4, 5, 6, 7e6, time.FixedZone("x", -11*3600)),
		time.Date(2026, 12, 2, 23, 59, 59, 0, time.FixedZone("y", 14*3600)),
		{},
		time.UnixMilli(0),
		time.UnixMilli(-1),
	}
	for _, tm := range edges {
		check(tm)
	}
	lo := time.Date(-200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(10200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for range 200000 {
		check(time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)))
	}
}

func BenchmarkAppendTime(b *testing.B) {
	tm := time.Date(2026, 12, 2, 4, 5, 6, 789e6, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("AppendTime", func(b *testing.B) {
		for b.Loop() {
			buf = cairn.AppendTime(buf[:0], tm)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for b.Loop() {
			buf = tm.UTC().AppendFormat(buf[:0], cairn.TimeLayout)
		}
	})
}
