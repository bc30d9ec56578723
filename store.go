package cairn

import (
	"context"
	"errors"
	"time"
)

// EventStore is where events end up: the embedded store or MongoDB. Every
// implementation must pass the conformance suite in package storetest.
type EventStore interface {
	// InsertEvents stores events idempotently, keyed by EventID: an event
	// whose id is already stored (earlier, or earlier in the same slice) is
	// skipped and counted as a duplicate. Stores that implement
	// TrackedUserStore also record, for the newly stored events only, their
	// identity links and tracked-user updates. Events the store refuses
	// permanently (they can never be stored) are listed in the result's
	// Rejected and the rest are stored. Any returned error means the call
	// may be retried with the same events: EUNAVAILABLE when the store
	// cannot be reached, EINTERNAL otherwise.
	InsertEvents(ctx context.Context, events []Event) (InsertResult, error)

	// Journey returns a page of the user's events, newest first
	// (occurredAt descending, then eventId descending), including those of
	// the anonymous ids merged into the user unless q.Unmerged (stores that
	// record no links have none). An unknown user has an empty page. Returns EINVALID for a bad query and EUNAVAILABLE when
	// the store cannot be reached.
	Journey(ctx context.Context, q JourneyQuery) (*JourneyPage, error)

	// CountEvents returns the number of stored events. Returns EUNAVAILABLE
	// when the store cannot be reached.
	CountEvents(ctx context.Context) (int64, error)

	// ExportEvents calls fn for every stored event of userID (every event
	// when userID is empty) until fn returns an error, which it returns.
	ExportEvents(ctx context.Context, userID string, fn func(*Event) error) error

	// Ping reports whether the store is reachable: nil, or EUNAVAILABLE.
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error
}

// DeferredSyncer is implemented by stores whose successful InsertEvents is
// visible at once but may reach stable storage later (the embedded store
// skips a per-batch fsync: the spool already holds a durable copy). Sync
// makes every earlier successful InsertEvents durable; the pipeline calls it
// before it advances its checkpoint and trims the spool. Stores that do not
// implement it are durable when InsertEvents returns.
type DeferredSyncer interface {
	// Sync makes all earlier writes durable. Returns EUNAVAILABLE when the
	// store cannot be reached.
	Sync(ctx context.Context) error
}

// InsertResult reports the outcome of EventStore.InsertEvents.
type InsertResult struct {
	// Inserted counts events newly stored.
	Inserted int
	// Duplicates counts events skipped because their eventId was stored.
	Duplicates int
	// Rejected lists events the store refused permanently.
	Rejected []RejectedEvent
	// LinkConflicts counts newly stored events whose identity link names a
	// user other than the one their anonymous id is merged into once the
	// call is done (the link is kept as history and ignored; see
	// identity.go). Stores that do not record links leave it 0.
	LinkConflicts int
}

// RejectedEvent is an event a store can never accept, with the reason.
type RejectedEvent struct {
	Event  Event
	Reason string
}

// Ingester accepts validated events durably: when Ingest returns nil, the
// events are on disk and will reach the EventStore even across a crash.
type Ingester interface {
	// Ingest assigns an EventID to each event that has none, then appends the
	// events to the spool and waits for them to be synced. When it fails,
	// nothing is acknowledged and the error says why: an EUNAVAILABLE *Error
	// wrapping ErrBacklogFull (too many events wait for the store),
	// ErrSpoolFailed (the spool cannot be written) or ErrIngestClosed (the
	// ingester is shutting down); or ctx's error if ctx ended first (the
	// events may still have been written). RejectReason names each case.
	Ingest(ctx context.Context, events []Event) error

	// Stats returns a snapshot of the pipeline's counters.
	Stats() IngestStats
}

// Admitter is implemented by an Ingester that can tell, before a request's
// body is read, that it would refuse any events now: Admit returns the
// error Ingest would return (an EUNAVAILABLE *Error wrapping
// ErrBacklogFull), or nil if Ingest may accept them. It is advisory (Ingest
// checks again); it lets an overloaded server answer 503 without spending
// CPU on decoding bodies it cannot take.
type Admitter interface {
	Admit() error
}

// Sentinel causes of a failed Ingest, wrapped in an EUNAVAILABLE *Error.
var (
	// ErrBacklogFull means more than the allowed number of events are
	// waiting for the store.
	ErrBacklogFull = errors.New("ingest backlog full")
	// ErrSpoolFailed means the spool cannot be written (disk full, I/O error).
	ErrSpoolFailed = errors.New("spool failed")
	// ErrIngestClosed means the ingester is closed or closing.
	ErrIngestClosed = errors.New("ingester closed")
	// ErrBodyMemory means the memory budget for request bodies being
	// decoded is exhausted (too many large bodies in flight at once).
	ErrBodyMemory = errors.New("request body memory budget exhausted")
)

// Reasons events are refused at ingest: the one set of names shared by the
// HTTP handler, the pipeline and the metrics (the "reason" label of
// cairn_events_rejected_total).
const (
	// RejectInvalid: the request or an event is malformed (400).
	RejectInvalid = "invalid"
	// RejectTooLarge: a size limit was exceeded (413).
	RejectTooLarge = "too_large"
	// RejectUnsupported: unsupported media type or encoding (415).
	RejectUnsupported = "unsupported_media_type"
	// RejectBacklogFull: the backlog is full (503, ErrBacklogFull).
	RejectBacklogFull = "backlog_full"
	// RejectSpoolError: the spool cannot be written (503, ErrSpoolFailed).
	RejectSpoolError = "spool_error"
	// RejectClosed: the ingester is shutting down (503, ErrIngestClosed).
	RejectClosed = "closed"
	// RejectBusy: the memory budget for request bodies is exhausted (503,
	// ErrBodyMemory).
	RejectBusy = "busy"
	// RejectCanceled: the request's context ended before the events were
	// synced (client gone or deadline).
	RejectCanceled = "canceled"
	// RejectInternal: any other failure.
	RejectInternal = "internal"
	// RejectRateLimited: a source sent more than its rate limit (429).
	RejectRateLimited = "rate_limited"
)

// RejectReasons lists every Reject* name, for pre-registering metric series.
var RejectReasons = []string{RejectInvalid, RejectTooLarge, RejectUnsupported,
	RejectBacklogFull, RejectSpoolError, RejectClosed, RejectBusy, RejectCanceled, RejectInternal, RejectRateLimited}

// RejectReason returns the Reject* name for an error refusing events at
// ingest (from decoding or from Ingester.Ingest), and "" for nil.
func RejectReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrBacklogFull):
		return RejectBacklogFull
	case errors.Is(err, ErrSpoolFailed):
		return RejectSpoolError
	case errors.Is(err, ErrIngestClosed):
		return RejectClosed
	case errors.Is(err, ErrBodyMemory):
		return RejectBusy
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return RejectCanceled
	}
	switch ErrorCode(err) {
	case EINVALID:
		return RejectInvalid
	case ETOOLARGE:
		return RejectTooLarge
	case EUNSUPPORTED:
		return RejectUnsupported
	}
	return RejectInternal
}

// IngestStats is a snapshot of the ingest pipeline.
type IngestStats struct {
	// Backlog is the number of events accepted but not yet in the store.
	Backlog int64
	// BacklogBytes is the spool bytes those events take.
	BacklogBytes int64
	// FlushSize is the batch size that triggers a flush.
	FlushSize int
	// FlushInterval is the longest an event waits before a flush.
	FlushInterval time.Duration
	// MaxBacklog is the backlog above which ingest is refused.
	MaxBacklog int64
	// Flushing reports whether a store write is in progress.
	Flushing bool
	// Accepted counts events acknowledged since start.
	Accepted int64
	// Stored counts events newly written to the store since start.
	Stored int64
	// Duplicates counts events the store already had.
	Duplicates int64
	// DeadLettered counts events the store refused permanently.
	DeadLettered int64
	// Flushes counts successful store writes.
	Flushes int64
	// FlushFailures counts failed store writes (each retried).
	FlushFailures int64
	// LastFlushDuration is how long the last successful flush took.
	LastFlushDuration time.Duration
	// LastFlushAt is when the last successful flush finished.
	LastFlushAt time.Time
	// SpoolBytes and SpoolSegments describe the spool on disk.
	SpoolBytes    int64
	SpoolSegments int
	// SpoolError is the spool's write failure, if any.
	SpoolError string
	// CheckpointResets counts invalid spool checkpoints found at start-up and
	// discarded (the spool was then replayed from its oldest record).
	CheckpointResets int64
	// SpoolCorruptRecords counts spool records lost to damage the batcher
	// stepped over since start (a lower bound where the damaged bytes may
	// have held several records; the log says which).
	SpoolCorruptRecords int64
}
