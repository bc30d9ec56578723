package live

import (
	"maps"
	"time"

	"github.com/cairn-dev/cairn"
)

// ring counts events per step over a fixed window: slot i holds the count
// of the step whose index (unix time / step) is stamp[i].
type ring struct {
	step   time.Duration
	counts []int64
	stamps []int64
}

func newRing(n int, step time.Duration) ring {
	return ring{step: step, counts: make([]int64, n), stamps: make([]int64, n)}
}

func (r *ring) add(t time.Time, n int64) {
	idx := t.UnixNano() / int64(r.step)
	i := int(idx % int64(len(r.counts)))
	if r.stamps[i] != idx {
		r.stamps[i], r.counts[i] = idx, 0
	}
	r.counts[i] += n
}

// series returns the counts of the len(counts) steps ending at now,
// oldest first.
func (r *ring) series(now time.Time) []int64 {
	n := int64(len(r.counts))
	end := now.UnixNano() / int64(r.step)
	out := make([]int64, n)
	for k := range n {
		idx := end - n + 1 + k
		if i := idx % n; idx >= 0 && r.stamps[i] == idx {
			out[k] = r.counts[i]
		}
	}
	return out
}

// record adds a published batch to the history.
func (h *Hub) record(events []cairn.Event) {
	if len(events) == 0 {
		return
	}
	now := h.now()
	day := now.UTC().Truncate(24 * time.Hour)
	h.hist.Lock()
	defer h.hist.Unlock()
	h.perSec.add(now, int64(len(events)))
	h.perMin.add(now, int64(len(events)))
	h.recordSources(now, events)
	if !day.Equal(h.day) {
		h.day, h.types = day, map[string]int64{}
	}
	if h.recent == nil {
		h.recent = make([]cairn.Event, 0, recentN)
	}
	for i := range events {
		h.types[events[i].Type]++
	}
	for i := max(0, len(events)-recentN); i < len(events); i++ {
		if len(h.recent) < recentN {
			h.recent = append(h.recent, events[i])
		} else {
			h.recent[h.recentAt] = events[i]
		}
		h.recentAt = (h.recentAt + 1) % recentN
	}
}

// Rate returns the events accepted per step (time.Second: the last 3600
// seconds; time.Minute: the last 1440 minutes), oldest first. Any other
// step returns nil.
func (h *Hub) Rate(now time.Time, step time.Duration) []int64 {
	h.hist.Lock()
	defer h.hist.Unlock()
	switch step {
	case time.Second:
		return h.perSec.series(now)
	case time.Minute:
		return h.perMin.series(now)
	}
	return nil
}

// Recent returns up to n of the latest published events, newest first.
func (h *Hub) Recent(n int) []cairn.Event {
	h.hist.Lock()
	defer h.hist.Unlock()
	n = min(n, len(h.recent))
	out := make([]cairn.Event, 0, n)
	for k := 1; k <= n; k++ {
		out = append(out, h.recent[(h.recentAt-k+len(h.recent))%len(h.recent)])
	}
	return out
}

// TypesToday returns the events published per type during now's UTC day.
func (h *Hub) TypesToday(now time.Time) map[string]int64 {
	h.hist.Lock()
	defer h.hist.Unlock()
	if !now.UTC().Truncate(24 * time.Hour).Equal(h.day) {
		return map[string]int64{}
	}
	return maps.Clone(h.types)
}

// Reject counts n events refused at ingest (wire it to the HTTP server's
// OnRejected).
func (h *Hub) Reject(n int) { h.rejected.Add(int64(n)) }

// recordSources adds a batch to the per-source rings (h.hist held). A
// batch usually comes from one source, so runs are counted together.
func (h *Hub) recordSources(now time.Time, events []cairn.Event) {
	for i := 0; i < len(events); {
		id, j := events[i].SourceID, i+1
		for j < len(events) && events[j].SourceID == id {
			j++
		}
		if id != "" {
			r := h.bySource[id]
			if r == nil {
				if h.bySource == nil {
					h.bySource = map[string]*ring{}
				}
				nr := newRing(cairn.SourceRatePoints, cairn.SourceRateStep)
				r = &nr
				h.bySource[id] = r
			}
			r.add(now, int64(j-i))
		}
		i = j
	}
}

// SourceRate returns the events accepted through sourceID per
// cairn.SourceRateStep over the last cairn.SourceRatePoints steps, oldest
// first.
func (h *Hub) SourceRate(now time.Time, sourceID string) []int64 {
	h.hist.Lock()
	defer h.hist.Unlock()
	if r := h.bySource[sourceID]; r != nil {
		return r.series(now)
	}
	return make([]int64, cairn.SourceRatePoints)
}

// Rejected returns the number of events counted by Reject.
func (h *Hub) Rejected() int64 { return h.rejected.Load() }
