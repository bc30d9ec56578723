package cairn

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Insights: aggregate questions over the stored events ("how many did it,
// and how many got through?").
//
// # Buckets
//
// Every insight that groups by time uses buckets of one Interval, in UTC:
// an hour, a day (midnight to midnight), a week (starting Monday 00:00, ISO
// 8601) or a calendar month. A query's From and To select whole buckets:
// the result covers every bucket from the one holding From to the one
// holding To, inclusive, each with all of its events — so precomputed
// per-hour counters and per-day sketches answer exactly what a scan of the
// events would. Funnels and top values, which do not group by time, use
// From and To as they are (occurredAt in [From, To], inclusive).
//
// # Users and identity links
//
// Trends count events. Unique users count distinct Event.UserID values
// (tracked ids): a sketch maintained at ingest cannot know links made
// later, so an anonymous id and the user it is later merged into count as
// two. Funnels, retention and top values are computed at query time from a
// scan and follow the links of identity.go: the events of an anonymous id
// merged into a user are that user's (the "person" of InsightScan).
//
// # Idempotence
//
// Whatever a store maintains at ingest for insights (counters, sketches) is
// updated only for the events it newly stores, under the same dedup
// decision, so re-delivered, replayed and duplicate events never change an
// answer.

// Interval is the width of a time bucket.
type Interval string

// Intervals.
const (
	IntervalHour  Interval = "hour"
	IntervalDay   Interval = "day"
	IntervalWeek  Interval = "week"
	IntervalMonth Interval = "month"
)

// Insight query limits.
const (
	// MaxInsightBuckets is the most time buckets one query may cover.
	MaxInsightBuckets = 5000
	// MaxFunnelSteps is the most steps a funnel may have.
	MaxFunnelSteps = 10
	// DefaultTopLimit and MaxTopLimit bound TopQuery.Limit.
	DefaultTopLimit = 10
	MaxTopLimit     = 100
	// FunnelExampleUsers is how many example users a funnel step lists.
	FunnelExampleUsers = 10
	// AnyEventType, as RetentionQuery.Cohort or Return, matches every
	// event type.
	AnyEventType = "any"
)

// HLLRelativeError is the standard relative error of the unique-user
// counts of both stores: HyperLogLog with 2^16 registers, 1.04/√65536.
// Small counts (below a few thousand per bucket) are exact or nearly so
// (sparse representation). Measured at 1M users: 0.09 %
// (pebble TestUserSketchError).
const HLLRelativeError = 0.0041

// Truncate returns the start of the bucket holding t (in UTC).
func (iv Interval) Truncate(t time.Time) time.Time {
	t = t.UTC()
	switch iv {
	case IntervalHour:
		return t.Truncate(time.Hour)
	case IntervalDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case IntervalWeek:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		back := (int(d.Weekday()) + 6) % 7 // days since Monday
		return d.AddDate(0, 0, -back)
	case IntervalMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return t
}

// Next returns the start of the bucket after the one starting at start.
func (iv Interval) Next(start time.Time) time.Time {
	switch iv {
	case IntervalHour:
		return start.Add(time.Hour)
	case IntervalDay:
		return start.AddDate(0, 0, 1)
	case IntervalWeek:
		return start.AddDate(0, 0, 7)
	case IntervalMonth:
		return start.AddDate(0, 1, 0)
	}
	return start
}

// Buckets returns the starts of the buckets from the one holding from to
// the one holding to, inclusive.
func (iv Interval) Buckets(from, to time.Time) []time.Time {
	var out []time.Time
	end := iv.Truncate(to)
	for b := iv.Truncate(from); !b.After(end); b = iv.Next(b) {
		out = append(out, b)
	}
	return out
}

// Index returns the position of t's bucket among Buckets(from, …): the
// number of whole buckets between from's and t's; negative when t is
// before from's bucket.
func (iv Interval) Index(from, t time.Time) int {
	f, b := iv.Truncate(from), iv.Truncate(t)
	switch iv {
	case IntervalHour:
		return int(b.Sub(f) / time.Hour)
	case IntervalDay:
		return int(b.Sub(f) / (24 * time.Hour))
	case IntervalWeek:
		return int(b.Sub(f) / (7 * 24 * time.Hour))
	case IntervalMonth:
		return (b.Year()-f.Year())*12 + int(b.Month()) - int(f.Month())
	}
	return 0
}

// validateRange checks interval (one of allowed), from ≤ to and the number
// of buckets.
func validateRange(iv Interval, allowed []Interval, from, to time.Time) error {
	if !slices.Contains(allowed, iv) {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = string(a)
		}
		return Errorf(EINVALID, "interval must be one of %s, not %q", strings.Join(names, ", "), iv)
	}
	if err := validateFromTo(from, to); err != nil {
		return err
	}
	if n := iv.Index(from, to) + 1; n > MaxInsightBuckets {
		return Errorf(EINVALID, "the range covers %d %s buckets, more than %d: use a wider interval or a shorter range", n, iv, MaxInsightBuckets)
	}
	return nil
}

func validateFromTo(from, to time.Time) error {
	if from.IsZero() || to.IsZero() {
		return Errorf(EINVALID, "from and to are required")
	}
	if from.After(to) {
		return Errorf(EINVALID, "from (%s) is after to (%s)", FormatTime(from), FormatTime(to))
	}
	return nil
}

// TrendsQuery asks for event counts per bucket per event type.
type TrendsQuery struct {
	// From and To select whole buckets (see Buckets above).
	From, To time.Time
	// Interval is hour, day, week or month.
	Interval Interval
	// Types keeps only these event types (all when empty).
	Types []string
	// SourceID keeps only events of this source (all when empty).
	SourceID string
}

// Validate checks the query: EINVALID for an unknown interval, from > to or
// too many buckets.
func (q *TrendsQuery) Validate() error {
	return validateRange(q.Interval, []Interval{IntervalHour, IntervalDay, IntervalWeek, IntervalMonth}, q.From, q.To)
}

// Trends is the answer to a TrendsQuery: one series per event type with at
// least one event in the range (each requested type when Types is set),
// sorted by type, each with a point for every bucket (zeros included).
type Trends struct {
	Interval Interval      `json:"interval"`
	Series   []TrendSeries `json:"series"`
}

// TrendSeries is one event type's counts.
type TrendSeries struct {
	Type   string       `json:"type"`
	Total  int64        `json:"total"`
	Points []TrendPoint `json:"points"`
}

// TrendPoint is the count of one bucket.
type TrendPoint struct {
	T     time.Time `json:"t"`
	Count int64     `json:"count"`
}

// NewTrends builds a Trends from per-(bucket index, type) counts over
// q's buckets: the shape both stores return.
func NewTrends(q TrendsQuery, counts map[string][]int64) *Trends {
	buckets := q.Interval.Buckets(q.From, q.To)
	types := q.Types
	if len(types) == 0 {
		for t := range counts {
			types = append(types, t)
		}
	}
	types = slices.Compact(slices.Sorted(slices.Values(types)))
	tr := &Trends{Interval: q.Interval, Series: make([]TrendSeries, 0, len(types))}
	for _, typ := range types {
		c := counts[typ]
		s := TrendSeries{Type: typ, Points: make([]TrendPoint, len(buckets))}
		for i, b := range buckets {
			s.Points[i].T = b
			if i < len(c) {
				s.Points[i].Count = c[i]
				s.Total += c[i]
			}
		}
		tr.Series = append(tr.Series, s)
	}
	return tr
}

// UsersQuery asks for distinct users per bucket (DAU/WAU/MAU).
type UsersQuery struct {
	// From and To select whole buckets.
	From, To time.Time
	// Interval is day, week or month.
	Interval Interval
}

// Validate checks the query: EINVALID for an unknown interval (hour is not
// offered: sketches are per day), from > to or too many buckets.
func (q *UsersQuery) Validate() error {
	return validateRange(q.Interval, []Interval{IntervalDay, IntervalWeek, IntervalMonth}, q.From, q.To)
}

// UniqueUsers is the answer to a UsersQuery: a point for every bucket.
type UniqueUsers struct {
	Interval Interval `json:"interval"`
	// RelativeError is the standard relative error of each count
	// (HLLRelativeError; 0 when the counts are exact).
	RelativeError float64      `json:"relativeError"`
	Points        []UsersPoint `json:"points"`
}

// UsersPoint is the number of distinct users of one bucket.
type UsersPoint struct {
	T     time.Time `json:"t"`
	Users int64     `json:"users"`
}

// FunnelStep is one step of a funnel: an event type and, optionally,
// payload fields it must have.
type FunnelStep struct {
	Type string `json:"type"`
	// Where maps top-level payload fields to the value they must have: a
	// JSON string field equal to it, or any other JSON value whose compact
	// text equals it ("42", "true").
	Where map[string]string `json:"where,omitempty"`
}

// Matches reports whether e is an event of this step.
func (s *FunnelStep) Matches(e *Event) bool {
	if e.Type != s.Type {
		return false
	}
	if len(s.Where) == 0 {
		return true
	}
	for k, want := range s.Where {
		v, ok := PayloadValue(e.Payload, k)
		if !ok || v != want {
			return false
		}
	}
	return true
}

// PayloadValue returns the top-level payload field name as text: a JSON
// string's value, or any other value's compact JSON. ok is false when the
// payload has no such field (or is not an object).
func PayloadValue(payload json.RawMessage, name string) (string, bool) {
	if len(payload) == 0 || !strings.Contains(string(payload), `"`+name+`"`) && !strings.Contains(string(payload), `\`) {
		return "", false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return "", false
	}
	raw, ok := m[name]
	if !ok {
		return "", false
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
	}
	return string(compactJSON(raw)), true
}

// FunnelQuery asks how many people went through the steps in order.
//
// A person reaches step k when they have events e1 … ek matching the steps,
// in (occurredAt, eventId) order, all in [From, To], each ek at most Within
// after e1. Each step-1 event is tried as a start, each later step taking
// the earliest matching event after the previous one; the attempt reaching
// the most steps counts (the earliest such), and its times give the
// medians.
type FunnelQuery struct {
	Steps  []FunnelStep
	Within time.Duration
	// From and To bound occurredAt, inclusive.
	From, To time.Time
}

// Validate checks the query: EINVALID for no steps, more than
// MaxFunnelSteps, a step without a type, a window ≤ 0, or from > to.
func (q *FunnelQuery) Validate() error {
	if len(q.Steps) == 0 {
		return Errorf(EINVALID, "a funnel needs at least one step")
	}
	if len(q.Steps) > MaxFunnelSteps {
		return Errorf(EINVALID, "a funnel has at most %d steps, not %d", MaxFunnelSteps, len(q.Steps))
	}
	for i, s := range q.Steps {
		if s.Type == "" {
			return Errorf(EINVALID, "step %d has no type", i+1)
		}
	}
	if q.Within <= 0 {
		return Errorf(EINVALID, "within must be a positive duration, not %s", q.Within)
	}
	return validateFromTo(q.From, q.To)
}

// Funnel is the answer to a FunnelQuery.
type Funnel struct {
	// Within is the window, as FormatWindow writes it ("1h", "90m" is
	// "1h30m", "7d").
	Within string             `json:"within"`
	Steps  []FunnelStepResult `json:"steps"`
}

// FunnelStepResult is one step's outcome.
type FunnelStepResult struct {
	Type  string            `json:"type"`
	Where map[string]string `json:"where,omitempty"`
	// Users is the number of people who reached this step.
	Users int64 `json:"users"`
	// ConversionFromPrevious and ConversionFromFirst are Users divided by
	// the previous and the first step's Users (0 when those are 0; 1 for
	// the first step when it has users).
	ConversionFromPrevious float64 `json:"conversionFromPrevious"`
	ConversionFromFirst    float64 `json:"conversionFromFirst"`
	// MedianSecondsFromPrevious is the median time from the previous step
	// among the people who reached this one; null for the first step and
	// when nobody reached it.
	MedianSecondsFromPrevious *float64 `json:"medianSecondsFromPrevious"`
	// ExampleUsers are up to FunnelExampleUsers people who reached this
	// step, sorted; never nil.
	ExampleUsers []string `json:"exampleUsers"`
}

// RetentionQuery asks for a cohort table.
type RetentionQuery struct {
	// Cohort is the event type that puts a person into a cohort: the
	// bucket of their first such event in the range. AnyEventType (or "")
	// matches every type.
	Cohort string
	// Return is the event type that counts as returning (AnyEventType or
	// "" for every type).
	Return string
	// From and To select whole buckets.
	From, To time.Time
	// Interval is day or week.
	Interval Interval
}

// Validate checks the query: EINVALID for an unknown interval, from > to or
// too many buckets.
func (q *RetentionQuery) Validate() error {
	return validateRange(q.Interval, []Interval{IntervalDay, IntervalWeek}, q.From, q.To)
}

// Retention is the answer to a RetentionQuery: one cohort per bucket of the
// range (empty cohorts included).
type Retention struct {
	Interval Interval          `json:"interval"`
	Cohort   string            `json:"cohort"`
	Return   string            `json:"return"`
	Cohorts  []RetentionCohort `json:"cohorts"`
}

// RetentionCohort is one row of the table.
type RetentionCohort struct {
	// T is the cohort's bucket.
	T time.Time `json:"t"`
	// Users is the cohort's size.
	Users int64 `json:"users"`
	// Returned[k] is the number of the cohort's people with a Return event
	// in bucket T+k, for every bucket up to To's; Returned[0] is the cohort
	// itself (Users).
	Returned []int64 `json:"returned"`
}

// TopQuery asks for the most frequent values of a payload field.
type TopQuery struct {
	// Type keeps only events of this type (all when empty).
	Type string
	// Field is the top-level payload field.
	Field string
	// From and To bound occurredAt, inclusive.
	From, To time.Time
	// Limit is the number of values returned, 1..MaxTopLimit.
	Limit int
}

// Validate checks the query: EINVALID for an empty field, a limit out of
// range or from > to.
func (q *TopQuery) Validate() error {
	if q.Field == "" {
		return Errorf(EINVALID, "field is required")
	}
	if q.Limit <= 0 || q.Limit > MaxTopLimit {
		return Errorf(EINVALID, "limit must be between 1 and %d", MaxTopLimit)
	}
	return validateFromTo(q.From, q.To)
}

// TopValues is the answer to a TopQuery: values by count descending, ties
// by value ascending. Values are as PayloadValue renders them.
type TopValues struct {
	Type   string     `json:"type,omitempty"`
	Field  string     `json:"field"`
	Values []TopValue `json:"values"`
}

// TopValue is one value and the number of events that had it.
type TopValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// InsightScan selects the events an InsightStore scan reads.
type InsightScan struct {
	// From and To bound occurredAt, inclusive.
	From, To time.Time
	// Types keeps only these event types (all when empty).
	Types []string
	// Minimal lets the store return events with only EventID, UserID,
	// Type and OccurredAt set (the rest is not needed).
	Minimal bool
}

// Wants reports whether an event of type typ is selected by the scan's
// types.
func (sc *InsightScan) Wants(typ string) bool {
	return len(sc.Types) == 0 || slices.Contains(sc.Types, typ)
}

// InsightStore is implemented by event stores that answer insights (both of
// Cairn's stores): trends and unique users from aggregates they maintain at
// ingest, and an event scan from which funnels, retention and top values
// are computed (package insights). Every implementation must pass
// storetest.RunInsights.
type InsightStore interface {
	// Trends returns event counts per bucket and type. Returns EINVALID
	// for a bad query, EUNAVAILABLE when the store cannot be reached.
	Trends(ctx context.Context, q TrendsQuery) (*Trends, error)

	// UniqueUsers returns distinct Event.UserIDs per bucket, estimated
	// with a HyperLogLog sketch (RelativeError says how well). Returns
	// EINVALID for a bad query, EUNAVAILABLE when the store cannot be
	// reached.
	UniqueUsers(ctx context.Context, q UsersQuery) (*UniqueUsers, error)

	// ScanInsightEvents calls fn for each stored user id that has events
	// selected by sc, with person — the user the id is merged into (see
	// identity.go), or the id itself — and its selected events in
	// (occurredAt, eventId) ascending order. A person with merged ids gets
	// one call per id, in no particular order. It stops at and returns
	// fn's first error. Erased events are gone and never seen. Returns
	// EUNAVAILABLE when the store cannot be reached.
	ScanInsightEvents(ctx context.Context, sc InsightScan, fn func(person string, events []Event) error) error
}

// Insights answers every insight query; the HTTP API and the console talk
// to it. Package insights implements it on top of an InsightStore.
type Insights interface {
	// Trends: see InsightStore.Trends.
	Trends(ctx context.Context, q TrendsQuery) (*Trends, error)
	// UniqueUsers: see InsightStore.UniqueUsers.
	UniqueUsers(ctx context.Context, q UsersQuery) (*UniqueUsers, error)
	// Funnel computes a funnel. Returns EINVALID for a bad query,
	// EUNAVAILABLE when the store cannot be reached.
	Funnel(ctx context.Context, q FunnelQuery) (*Funnel, error)
	// Retention computes a cohort table. Returns EINVALID for a bad query,
	// EUNAVAILABLE when the store cannot be reached.
	Retention(ctx context.Context, q RetentionQuery) (*Retention, error)
	// Top returns the most frequent values of a payload field. Returns
	// EINVALID for a bad query, EUNAVAILABLE when the store cannot be
	// reached.
	Top(ctx context.Context, q TopQuery) (*TopValues, error)
}

// ParseInterval returns the Interval named s; EINVALID for an unknown one.
func ParseInterval(s string) (Interval, error) {
	switch iv := Interval(s); iv {
	case IntervalHour, IntervalDay, IntervalWeek, IntervalMonth:
		return iv, nil
	}
	return "", Errorf(EINVALID, "unknown interval %q: use hour, day, week or month", s)
}

// String returns the interval's name.
func (iv Interval) String() string { return string(iv) }

// DecodeBinaryKey decodes from an event encoded by AppendBinary only its
// eventId, type (both aliasing b) and occurredAt in Unix milliseconds, for
// scans that need no more; ok is false for a malformed encoding.
func DecodeBinaryKey(b []byte) (eventID, typ []byte, occurredMs int64, ok bool) {
	if len(b) == 0 || (b[0] != binaryVersion1 && b[0] != binaryVersion2) {
		return nil, nil, 0, false
	}
	b = b[1:]
	var fields [5][]byte // eventId, userId, sessionId, type, payload
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, nil, 0, false
		}
		fields[i], b = b[k:k+int(n)], b[k+int(n):]
	}
	ms, k := binary.Varint(b)
	if k <= 0 {
		return nil, nil, 0, false
	}
	return fields[0], fields[3], ms, true
}

// ParseWindow parses a funnel window as FormatWindow writes it or as a Go
// duration: a number of days ("7d", at most 3650) or a duration ("90m",
// "1h30m"). A malformed window is EINVALID; whether it is positive is
// FunnelQuery.Validate's to say.
func ParseWindow(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 && days <= 3650 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, Errorf(EINVALID, "within must be a duration such as 30m, 1h or 7d, not %q.", v)
	}
	return d, nil
}

// FormatWindow writes a funnel window briefly: whole days as "7d", else a
// Go duration without its zero trailing units ("1h", "1h30m", "45s").
func FormatWindow(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
