package cairn

import (
	"context"
	"time"
)

// LiveFilter selects events of a live stream; an empty field matches every
// event.
type LiveFilter struct {
	Type     string
	UserID   string
	SourceID string
}

// LiveFeed is the stream of events as they are accepted (durable in the
// spool), with the in-memory ingest history the console shows. Package
// live implements it.
type LiveFeed interface {
	// Subscribe starts a subscription to the accepted events matching f.
	Subscribe(f LiveFilter) LiveSubscription
	// Recent returns up to n of the latest accepted events, newest first.
	Recent(n int) []Event
	// Rate returns the number of events accepted in each step (time.Second
	// or time.Minute) of the last hour (60 minutes of seconds, 3600
	// points) or the last 24 hours (1440 minutes), oldest first, ending at
	// the step that contains now. The history is kept in memory since the
	// process started.
	Rate(now time.Time, step time.Duration) []int64
	// TypesToday returns the number of events accepted per type since the
	// start of the UTC day of now (since the process started, if later).
	TypesToday(now time.Time) map[string]int64
	// SourceRate returns the number of events accepted through the source
	// sourceID in each SourceRateStep of the last SourceRatePoints steps,
	// oldest first, ending at the step that contains now (all zeros for a
	// source that sent nothing). The history is kept in memory since the
	// process started.
	SourceRate(now time.Time, sourceID string) []int64
	// Rejected returns the number of events refused at ingest since start.
	Rejected() int64
}

// SourceRateStep and SourceRatePoints shape LiveFeed.SourceRate: ten
// minutes in steps of ten seconds.
const (
	SourceRateStep   = 10 * time.Second
	SourceRatePoints = 60
)

// LiveEvent is an accepted event as a live subscription delivers it. Both
// fields are shared by every subscriber and must not be modified.
type LiveEvent struct {
	// Event is the accepted event.
	Event *Event
	// JSON is Event in the journey shape (Event.AppendJSON), encoded once
	// for all subscribers.
	JSON []byte
}

// LiveSubscription is one subscriber of a LiveFeed.
type LiveSubscription interface {
	// Next waits for accepted events, then returns them oldest first and
	// the number dropped for this subscriber since the previous call
	// because it fell behind. The returned slice is valid until the next
	// call. It returns ctx's error when ctx ends, and EUNAVAILABLE after
	// Close.
	Next(ctx context.Context) (events []LiveEvent, skipped int64, err error)
	// Close ends the subscription.
	Close()
}
