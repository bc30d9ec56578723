package cairn_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// journeyOf builds a journey (newest first) from events given oldest
// first as minutes after 2025-12-15T10:00Z, with an optional own session.
func journeyOf(events ...struct {
	min     int
	session string
}) []cairn.Event {
	base := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
	out := make([]cairn.Event, len(events))
	for i, e := range events {
		out[len(events)-1-i] = cairn.Event{EventID: "e" + strconv.Itoa(100+i), UserID: "u", SessionID: e.session,
			OccurredAt: base.Add(time.Duration(e.min) * time.Minute)}
	}
	return out
}

type ev = struct {
	min     int
	session string
}

func auto(min int) string {
	return cairn.DerivedSessionID(time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC).Add(time.Duration(min) * time.Minute))
}

func TestDeriveSessions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []ev     // oldest first
		want   []string // session ids, oldest first
	}{
		{"One", []ev{{0, ""}}, []string{auto(0)}},
		{"WithinGap", []ev{{0, ""}, {10, ""}, {40, ""}}, []string{auto(0), auto(0), auto(0)}},
		{"ExactlyGapStays", []ev{{0, ""}, {30, ""}}, []string{auto(0), auto(0)}},
		{"OverGapSplits", []ev{{0, ""}, {31, ""}, {45, ""}, {100, ""}}, []string{auto(0), auto(31), auto(31), auto(100)}},
		{"OwnSessionsKeptAndIgnored", []ev{{0, ""}, {20, "s1"}, {50, "s1"}, {55, ""}}, []string{auto(0), "s1", "s1", auto(55)}},
		{"OwnSessionDoesNotBridge", []ev{{0, ""}, {25, "s"}, {40, ""}}, []string{auto(0), "s", auto(40)}},
		{"MidnightSplits", []ev{{13*60 + 50, ""}, {14*60 + 10, ""}}, []string{auto(13*60 + 50), auto(14*60 + 10)}},
		{"SameTime", []ev{{5, ""}, {5, ""}}, []string{auto(5), auto(5)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole := journeyOf(tc.events...)
			cairn.DeriveSessions(whole, nil, cairn.DefaultSessionGap)
			got := make([]string, len(whole))
			for i := range whole {
				got[len(whole)-1-i] = whole[i].SessionID
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			// Any page, with the look-back the journey handler does, gives
			// the same ids as the whole journey.
			for size := 1; size <= len(whole); size++ {
				for start := 0; start < len(whole); start += size {
					fresh := journeyOf(tc.events...)
					page := fresh[start:min(start+size, len(fresh))]
					var older []cairn.Event
					if from, ok := cairn.SessionLookBack(page); ok {
						for _, e := range fresh[start+len(page):] {
							if cairn.SessionStartFound(page, older, cairn.DefaultSessionGap) {
								break
							}
							if !e.OccurredAt.Before(from) {
								older = append(older, e)
							}
						}
					}
					cairn.DeriveSessions(page, older, cairn.DefaultSessionGap)
					for i := range page {
						if page[i].SessionID != whole[start+i].SessionID {
							t.Fatalf("page [%d:+%d] event %d: %q, whole journey %q", start, size, i, page[i].SessionID, whole[start+i].SessionID)
						}
					}
				}
			}
		})
	}
}

func TestSessionBreak(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name         string
		older, newer string
		want         bool
	}{
		{"Close", "2025-12-15T10:00:00Z", "2025-12-15T10:29:59Z", false},
		{"Gap", "2025-12-15T10:00:00Z", "2025-12-15T10:30:01Z", true},
		{"Midnight", "2025-12-15T23:59:00Z", "2025-12-16T00:01:00Z", true},
		{"LocalMidnightIsNotABreak", "2025-12-15T23:40:00-01:00", "2025-12-16T00:50:00Z", false},
		{"UTCMidnightIsABreak", "2025-12-16T00:50:00+01:00", "2025-12-16T00:05:00Z", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cairn.SessionBreak(at(tc.older), at(tc.newer), 30*time.Minute); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if id := cairn.DerivedSessionID(time.UnixMilli(1765794600000)); id != "auto-1765794600000" {
		t.Errorf("DerivedSessionID = %q", id)
	}
}
