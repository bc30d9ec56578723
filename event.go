package cairn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on event fields.
const (
	// MaxIDBytes is the longest userId or sessionId accepted, after trimming.
	MaxIDBytes = 256
	// MaxEventIDLen is the longest client-supplied eventId accepted.
	MaxEventIDLen = 128
)

// DefaultEventTypes are the event types the seed service accepts.
var DefaultEventTypes = []string{
	"session_start", "page_view", "search", "purchase", "add_to_cart",
	"remove_from_cart", "button_click", "form_submit", "video_play", "video_pause",
}

// Event is one user-tracking event, as stored and as returned in journeys.
// Times have millisecond precision and are in UTC.
type Event struct {
	EventID   string `json:"eventId"`
	UserID    string `json:"userId"`
	SessionID string `json:"sessionId"`
	Type      string `json:"type"`
	// SourceID is the source the event came through (Source.ID); "" for
	// anonymous seed-API events. Its JSON field "sourceId" is omitted when
	// empty, so seed-API journeys keep the seed's shape.
	SourceID string `json:"sourceId,omitempty"`
	// AnonymousID is an anonymous id this event ties to UserID: the
	// anonymousId sent with a Segment call that also had a userId, or an
	// alias call's previousId. When it is set and differs from UserID, a
	// store that records identity links (TrackedUserStore) links it to
	// UserID (see identity.go). JSON "anonymousId", omitted when empty.
	AnonymousID string          `json:"anonymousId,omitempty"`
	Payload     json.RawMessage `json:"payload"`
	OccurredAt  time.Time       `json:"-"`
	ReceivedAt  time.Time       `json:"-"`
}

// MarshalJSON encodes the event in the seed's journey shape, with ISO 8601
// timestamps in UTC with millisecond precision; sourceId and anonymousId
// follow type when they are not empty.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 160+len(e.Payload))), nil
}

// AppendJSON appends the JSON encoding of e to b and returns the result.
func (e Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"eventId":`...)
	b = AppendJSONString(b, e.EventID)
	b = append(b, `,"userId":`...)
	b = AppendJSONString(b, e.UserID)
	b = append(b, `,"sessionId":`...)
	b = AppendJSONString(b, e.SessionID)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, e.Type)
	if e.SourceID != "" {
		b = append(b, `,"sourceId":`...)
		b = AppendJSONString(b, e.SourceID)
	}
	if e.AnonymousID != "" {
		b = append(b, `,"anonymousId":`...)
		b = AppendJSONString(b, e.AnonymousID)
	}
	b = append(b, `,"payload":`...)
	if len(e.Payload) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, e.Payload...)
	}
	b = append(b, `,"occurredAt":"`...)
	b = AppendTime(b, e.OccurredAt)
	b = append(b, `","receivedAt":"`...)
	b = AppendTime(b, e.ReceivedAt)
	b = append(b, `"}`...)
	return b
}

// UnmarshalJSON decodes an event in the journey shape (the inverse of
// MarshalJSON). It does not validate; client input is decoded by the HTTP API's
// decoder (http.DecodeEvents), which feeds RawEvent.Normalize.
func (e *Event) UnmarshalJSON(data []byte) error {
	var w struct {
		EventID     string          `json:"eventId"`
		UserID      string          `json:"userId"`
		SessionID   string          `json:"sessionId"`
		Type        string          `json:"type"`
		SourceID    string          `json:"sourceId"`
		AnonymousID string          `json:"anonymousId"`
		Payload     json.RawMessage `json:"payload"`
		OccurredAt  time.Time       `json:"occurredAt"`
		ReceivedAt  time.Time       `json:"receivedAt"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*e = Event{EventID: w.EventID, UserID: w.UserID, SessionID: w.SessionID, Type: w.Type,
		SourceID: w.SourceID, AnonymousID: w.AnonymousID,
		Payload: w.Payload, OccurredAt: w.OccurredAt.UTC(), ReceivedAt: w.ReceivedAt.UTC()}
	return nil
}

// TimeLayout is the layout of every timestamp Cairn writes: ISO 8601 in UTC
// with exactly three fraction digits, as JavaScript's Date.toISOString.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendTime appends t in TimeLayout (UTC) to b, byte for byte what
// t.UTC().AppendFormat(b, TimeLayout) appends (the fraction truncated, not
// rounded). Years 0 to 9999 take a direct conversion from the Unix time:
// AppendFormat interprets the layout on every call, and it was a fifth of
// the server's CPU while a long journey is paged (two timestamps per
// event). Other years take AppendFormat.
func AppendTime(b []byte, t time.Time) []byte {
	const (
		minSec = -62167219200 // 0000-01-01T00:00:00Z
		maxSec = 253402300800 // 10000-01-01T00:00:00Z
	)
	sec := t.Unix()
	if sec < minSec || sec >= maxSec {
		return t.UTC().AppendFormat(b, TimeLayout)
	}
	days, rem := sec/86400, sec%86400
	if rem < 0 {
		days, rem = days-1, rem+86400
	}
	year, month, day := civilFromDays(days)
	hms, ms := int(rem), t.Nanosecond()/1e6
	var f [24]byte // "2006-01-02T15:04:05.000Z"
	put2 := func(i, v int) { f[i], f[i+1] = byte('0'+v/10), byte('0'+v%10) }
	put2(0, year/100)
	put2(2, year%100)
	f[4] = '-'
	put2(5, month)
	f[7] = '-'
	put2(8, day)
	f[10] = 'T'
	put2(11, hms/3600)
	f[13] = ':'
	put2(14, hms/60%60)
	f[16] = ':'
	put2(17, hms%60)
	f[19] = '.'
	f[20] = byte('0' + ms/100)
	put2(21, ms%100)
	f[23] = 'Z'
	return append(b, f[:]...)
}

// civilFromDays returns the proleptic Gregorian date of the day that is
// days after 1970-01-01 (Howard Hinnant's days_from_civil, inverted: eras
// of 400 years, years starting on 1 March so the leap day comes last).
func civilFromDays(days int64) (year, month, day int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // day of era, [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // year of era, [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // day of year from 1 March, [0, 365]
	mp := (5*doy + 2) / 153                                // month from March, [0, 11]
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	y := yoe + era*400
	if month <= 2 {
		y++
	}
	return int(y), month, day
}

// FormatTime formats t in TimeLayout (UTC).
func FormatTime(t time.Time) string { return string(AppendTime(nil, t)) }

// AppendJSONString appends s to b as a JSON string.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// EventRules are the validation settings for incoming events.
type EventRules struct {
	// Types is the set of accepted event types.
	Types map[string]bool
	// MaxFuture is how far ahead of the server clock occurredAt may be.
	MaxFuture time.Duration
}

// NewEventRules returns rules accepting the given types (DefaultEventTypes if
// empty) and occurredAt up to maxFuture ahead of the clock.
func NewEventRules(types []string, maxFuture time.Duration) EventRules {
	if len(types) == 0 {
		types = DefaultEventTypes
	}
	m := make(map[string]bool, len(types))
	for _, t := range types {
		m[t] = true
	}
	return EventRules{Types: m, MaxFuture: maxFuture}
}

// RawEvent is an incoming event with every known field still raw JSON (nil
// when absent), as the HTTP API's decoder (http.DecodeEvents) extracted it:
// field names match exactly ("userId", not "UserID"). Normalize validates it.
type RawEvent struct {
	EventID    json.RawMessage
	UserID     json.RawMessage
	SessionID  json.RawMessage
	Type       json.RawMessage
	Payload    json.RawMessage
	OccurredAt json.RawMessage
}

// Normalize validates the event and returns it normalized: trimmed ids, UTC
// millisecond times, default payload {} and occurredAt = now, receivedAt =
// now, and EventID empty when the client sent none. Every problem is
// returned as a FieldError carrying index. The raw fields must each be one
// valid JSON value (as a JSON decoder yields them); Normalize may keep
// references to them.
func (raw *RawEvent) Normalize(index int, now time.Time, rules EventRules) (Event, []FieldError) {
	var errs []FieldError
	fail := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Index: index, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	now = now.UTC().Truncate(time.Millisecond)
	ev := Event{ReceivedAt: now}

	ev.UserID = requiredID(raw.UserID, "userId", fail)
	ev.SessionID = requiredID(raw.SessionID, "sessionId", fail)

	if s, ok := JSONString(raw.Type); !ok || IsJSONNull(raw.Type) {
		if len(raw.Type) == 0 || IsJSONNull(raw.Type) {
			fail("type", "is required")
		} else {
			fail("type", "must be a string")
		}
	} else if !rules.Types[s] {
		fail("type", "unknown event type %q", truncate(s, 64))
	} else {
		ev.Type = s
	}

	switch {
	case len(raw.Payload) == 0 || IsJSONNull(raw.Payload):
		ev.Payload = json.RawMessage("{}")
	case raw.Payload[0] != '{':
		fail("payload", "must be a JSON object")
	case bytes.ContainsAny(raw.Payload, " \t\r\n"):
		ev.Payload = compactJSON(raw.Payload)
	default:
		ev.Payload = raw.Payload
	}
	if field, msg := CheckPayload(ev.Payload); field != "" {
		fail(field, "%s", msg)
	}

	switch {
	case len(raw.OccurredAt) == 0 || IsJSONNull(raw.OccurredAt):
		ev.OccurredAt = now
	default:
		t, msg := parseOccurredAt(raw.OccurredAt)
		if msg != "" {
			fail("occurredAt", "%s", msg)
		} else if t.After(now.Add(rules.MaxFuture)) {
			fail("occurredAt", "is more than %s in the future", rules.MaxFuture)
		} else {
			ev.OccurredAt = t
		}
	}

	if len(raw.EventID) != 0 && !IsJSONNull(raw.EventID) {
		s, ok := JSONString(raw.EventID)
		if !ok {
			fail("eventId", "must be a string")
		} else if err := ValidateEventID(s); err != "" {
			fail("eventId", "%s", err)
		} else {
			ev.EventID = s
		}
	}
	if errs != nil {
		return Event{}, errs
	}
	return ev, nil
}

// ValidateEventID returns "" if id is a valid eventId (1–128 characters of
// [A-Za-z0-9._:-]) and a description of the problem otherwise.
func ValidateEventID(id string) string {
	if id == "" {
		return "must not be empty"
	}
	if len(id) > MaxEventIDLen {
		return fmt.Sprintf("must be at most %d characters", MaxEventIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !isEventIDChar(id[i]) {
			return "may contain only letters, digits and . _ : -"
		}
	}
	return ""
}

// isEventIDChar reports whether c may appear in an event ID: an ASCII letter
// or digit, or one of . _ : -
func isEventIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
}

func requiredID(raw json.RawMessage, field string, fail func(field, format string, args ...any)) string {
	if len(raw) == 0 || IsJSONNull(raw) {
		fail(field, "is required")
		return ""
	}
	s, ok := JSONString(raw)
	if !ok {
		fail(field, "must be a string")
		return ""
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		fail(field, "must not be empty")
	case len(s) > MaxIDBytes:
		fail(field, "must be at most %d bytes", MaxIDBytes)
	case !utf8.ValidString(s):
		fail(field, "must be valid UTF-8")
	default:
		return s
	}
	return ""
}

// IsJSONNull reports whether raw (one JSON value, as a decoder yields it)
// is null.
func IsJSONNull(raw json.RawMessage) bool { return string(raw) == "null" }

// JSONString decodes raw (one JSON value, as a decoder yields it) as a
// JSON string; false when it is not one.
func JSONString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	// Fast path: no escapes.
	if bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return buf.Bytes()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Earliest and latest occurredAt Cairn stores.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
)

// parseOccurredAt parses an ISO 8601 string or epoch milliseconds.
func parseOccurredAt(raw json.RawMessage) (time.Time, string) {
	var t time.Time
	if raw[0] == '"' {
		s, ok := JSONString(raw)
		if !ok {
			return time.Time{}, "must be an ISO 8601 date string or epoch milliseconds"
		}
		var err error
		t, err = ParseTime(s)
		if err != nil {
			return time.Time{}, fmt.Sprintf("invalid date %q: use ISO 8601 (e.g. 2025-12-15T10:30:00Z) or epoch milliseconds", truncate(s, 64))
		}
	} else {
		var f json.Number
		if err := json.Unmarshal(raw, &f); err != nil {
			return time.Time{}, "must be an ISO 8601 date string or epoch milliseconds"
		}
		ms, err := f.Int64()
		if err != nil {
			return time.Time{}, "epoch milliseconds must be an integer"
		}
		if ms < 0 || ms > maxTime.UnixMilli() {
			return time.Time{}, "epoch milliseconds out of range"
		}
		t = time.UnixMilli(ms).UTC()
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, "must be between 1970 and 9999"
	}
	return t, ""
}

// ParseTime parses an ISO 8601 timestamp: RFC 3339 with or without fraction,
// a local date-time without zone (taken as UTC), or a bare date (midnight
// UTC). The result is UTC, truncated to milliseconds.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Millisecond), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO 8601 timestamp: %q", s)
}
