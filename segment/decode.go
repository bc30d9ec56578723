package segment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairn-dev/cairn"
	"github.com/go-json-experiment/json/jsontext"
)

// Limits, as Segment's HTTP Tracking API sets them.
const (
	// DefaultMaxMessageBytes bounds one message, and a single call's body.
	DefaultMaxMessageBytes = 32 << 10
	// DefaultMaxBatchBytes bounds a batch request's body.
	DefaultMaxBatchBytes = 500 << 10
	// DefaultMaxBatchMessages bounds the messages in one batch.
	DefaultMaxBatchMessages = 2500
	// DefaultMaxFuture is how far after receivedAt a corrected occurredAt
	// may be before it is replaced by receivedAt.
	DefaultMaxFuture = 24 * time.Hour
	// MaxEventNameLen is the longest track event name, in characters.
	MaxEventNameLen = 200
)

// Message types (the "type" field of a batch item) and the call names
// Decode takes besides CallBatch.
const (
	CallBatch    = "batch"
	CallTrack    = "track"
	CallIdentify = "identify"
	CallPage     = "page"
	CallScreen   = "screen"
	CallGroup    = "group"
	CallAlias    = "alias"
)

// Cairn event types of the calls other than track.
const (
	TypeIdentify = "$identify"
	TypePage     = "$page"
	TypeScreen   = "$screen"
	TypeGroup    = "$group"
	TypeAlias    = "$alias"
)

// Rejection reasons.
const (
	ReasonNotObject         = "not_object"           // a batch item is not a JSON object
	ReasonTooLarge          = "too_large"            // the message exceeds MaxMessageBytes
	ReasonMissingType       = "missing_type"         // a batch item has no type
	ReasonInvalidType       = "invalid_type"         // unknown type, or not the call's
	ReasonNoUserID          = "no_user_anon_id"      // neither userId nor anonymousId
	ReasonInvalidUserID     = "invalid_user_id"      // userId not a string/number or too long
	ReasonInvalidAnonID     = "invalid_anonymous_id" // anonymousId not a string/number or too long
	ReasonMissingEvent      = "missing_event"        // track without an event name
	ReasonInvalidEvent      = "invalid_event"        // event name not a string or too long
	ReasonMissingGroupID    = "missing_group_id"     // group without groupId
	ReasonMissingPreviousID = "missing_previous_id"  // alias without previousId
	ReasonMissingAliasUser  = "missing_user_id"      // alias without userId
	ReasonInvalidTimestamp  = "invalid_timestamp"    // a timestamp that is not ISO 8601 or out of range
	ReasonInvalidMessageID  = "invalid_message_id"   // messageId not a string or number
	ReasonInvalidContext    = "invalid_context"      // context or integrations not an object
	ReasonInvalidPayload    = "invalid_payload"      // payload nests too deep or holds an inexact number (cairn.CheckPayload)
	ReasonInvalidWriteKey   = "invalid_write_key"    // writeKey not a string
	ReasonWriteKeyMismatch  = "write_key_mismatch"   // a write key other than the request's
)

// Options are Decode's limits; zero fields take the defaults.
type Options struct {
	// MaxMessageBytes bounds one message and a single call's body
	// (DefaultMaxMessageBytes).
	MaxMessageBytes int
	// MaxBatchBytes bounds a batch request's body (DefaultMaxBatchBytes).
	MaxBatchBytes int
	// MaxBatchMessages bounds the messages of a batch
	// (DefaultMaxBatchMessages).
	MaxBatchMessages int
	// MaxFuture is how far after receivedAt occurredAt may be before it is
	// replaced by receivedAt (DefaultMaxFuture).
	MaxFuture time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.MaxBatchMessages <= 0 {
		o.MaxBatchMessages = DefaultMaxBatchMessages
	}
	if o.MaxFuture <= 0 {
		o.MaxFuture = DefaultMaxFuture
	}
	return o
}

// Request is a decoded tracking API request.
type Request struct {
	// Call is the canonical call: CallBatch or a message type.
	Call string
	// WriteKey is the write key found in the body ("" if none).
	WriteKey string
	// Messages are the accepted messages, in request order.
	Messages []Message
	// Rejected lists the messages that were not accepted, in request order.
	Rejected []Rejection
}

// Message is one accepted message: the Cairn event plus the Segment fields
// the caller needs for identity and profiles.
type Message struct {
	// Index is the message's position in the batch (0 for a single call).
	Index int
	// Event is the Cairn event; its SessionID may be "" and its EventID ""
	// (see the package doc).
	Event cairn.Event
	// Type is the Segment message type (CallTrack, CallIdentify, ...).
	Type string
	// MessageID is the messageId as sent ("" if none).
	MessageID string
	// UserID and AnonymousID are the ids as sent (trimmed; "" when absent).
	UserID      string
	AnonymousID string
	// PreviousID is alias's previousId; GroupID is group's groupId.
	PreviousID string
	GroupID    string
	// Traits is the message's "traits" object (identify, group), or nil.
	Traits json.RawMessage
}

// Rejection is a message that was not accepted, with the reason (one of
// the Reason* constants).
type Rejection struct {
	// Index is the message's position in the batch (0 for a single call).
	Index int `json:"index"`
	// MessageID is the messageId as sent, if it was a string or number.
	MessageID string `json:"messageId,omitempty"`
	// Reason is one of the Reason* constants.
	Reason string `json:"reason"`
}

// canonicalCalls maps every call name Decode takes to its canonical form.
var canonicalCalls = map[string]string{
	"batch": CallBatch, "b": CallBatch,
	"track": CallTrack, "t": CallTrack,
	"identify": CallIdentify, "i": CallIdentify,
	"page": CallPage, "p": CallPage,
	"screen": CallScreen, "s": CallScreen,
	"group": CallGroup, "g": CallGroup,
	"alias": CallAlias, "a": CallAlias,
}

// IsCall reports whether Decode takes call: "batch", a message type, or
// one of their short forms.
func IsCall(call string) bool {
	_, ok := canonicalCalls[call]
	return ok
}

// reservedTypes are the Cairn event types of the calls other than track.
var reservedTypes = map[string]string{
	CallIdentify: TypeIdentify, CallPage: TypePage, CallScreen: TypeScreen,
	CallGroup: TypeGroup, CallAlias: TypeAlias,
}

// TrackType returns the Cairn event type of a track event name: the name,
// with one more "$" in front when it starts with "$".
func TrackType(name string) string {
	if strings.HasPrefix(name, "$") {
		return "$" + name
	}
	return name
}

// TrackName is the inverse of TrackType: it returns the track event name of
// a Cairn event type, and false for the reserved types of the other calls.
func TrackName(typ string) (string, bool) {
	switch {
	case strings.HasPrefix(typ, "$$"):
		return typ[1:], true
	case strings.HasPrefix(typ, "$"):
		return "", false
	}
	return typ, true
}

// envelope is what a batch body carries besides its messages.
type envelope struct {
	context      []field
	integrations []field
	sentAt       *time.Time
	// mergedBytes is the size of the batch context and integrations,
	// counted in every message's size since they are merged into it.
	mergedBytes int
}

// Decode decodes a tracking API request body for call (see the package doc
// for the calls, the mapping and the errors). receivedAt is the server's
// arrival time. It returns an EINVALID or ETOOLARGE *cairn.Error for a
// request that must be refused as a whole.
func Decode(body []byte, call string, receivedAt time.Time, opts Options) (*Request, error) {
	opts = opts.withDefaults()
	canon, ok := canonicalCalls[call]
	if !ok {
		return nil, cairn.Errorf(cairn.EINVALID, "unknown tracking API call %q", truncate(call, 32))
	}
	limit := opts.MaxMessageBytes
	if canon == CallBatch {
		limit = opts.MaxBatchBytes
	}
	if len(body) > limit {
		return nil, cairn.Errorf(cairn.ETOOLARGE, "request body is %d bytes; the limit for %s is %d bytes", len(body), canon, limit)
	}
	if !utf8.Valid(body) {
		return nil, cairn.Errorf(cairn.EINVALID, "malformed JSON: invalid UTF-8")
	}
	// The same rule as POST /events: an object with a member name twice
	// (at any depth) is malformed, so what is stored is never ambiguous.
	if err := validJSON(body); err != nil {
		return nil, cairn.Errorf(cairn.EINVALID, "malformed JSON: %v", err)
	}
	fields, err := parseObject(body)
	if err != nil {
		return nil, cairn.Errorf(cairn.EINVALID, "request body must be a JSON object")
	}
	receivedAt = receivedAt.UTC().Truncate(time.Millisecond)
	req := &Request{Call: canon}
	d := decoder{opts: opts, receivedAt: receivedAt, req: req}
	if canon != CallBatch {
		if err := d.requestKey(lookup(fields, "writeKey")); err != nil {
			return nil, err
		}
		d.message(0, body, fields, canon)
		return req, nil
	}

	var env envelope
	if err := d.requestKey(lookup(fields, "writeKey")); err != nil {
		return nil, err
	}
	for _, name := range []string{"context", "integrations"} {
		raw := lookup(fields, name)
		if raw == nil || cairn.IsJSONNull(raw) {
			continue
		}
		obj, err := parseObject(raw)
		if err != nil {
			return nil, cairn.Errorf(cairn.EINVALID, "batch %s must be a JSON object", name)
		}
		env.mergedBytes += len(raw)
		if name == "context" {
			env.context = obj
		} else {
			env.integrations = obj
		}
	}
	if raw := lookup(fields, "sentAt"); raw != nil && !cairn.IsJSONNull(raw) {
		t, ok := parseTimestamp(raw)
		if !ok {
			return nil, cairn.Errorf(cairn.EINVALID, "batch sentAt must be an ISO 8601 timestamp")
		}
		env.sentAt = &t
	}
	raw := lookup(fields, "batch")
	items, err := parseArray(raw)
	if err != nil {
		return nil, cairn.Errorf(cairn.EINVALID, "a batch request needs a \"batch\" array of messages")
	}
	if len(items) > opts.MaxBatchMessages {
		return nil, cairn.Errorf(cairn.ETOOLARGE, "batch has %d messages; the limit is %d", len(items), opts.MaxBatchMessages)
	}
	d.env = env
	for i, item := range items {
		obj, err := parseObject(item)
		if err != nil {
			req.Rejected = append(req.Rejected, Rejection{Index: i, Reason: ReasonNotObject})
			continue
		}
		d.message(i, item, obj, "")
	}
	return req, nil
}

// decoder holds the state of one Decode call.
type decoder struct {
	opts       Options
	receivedAt time.Time
	env        envelope
	req        *Request
}

// requestKey sets the request's write key from a body-level writeKey.
func (d *decoder) requestKey(raw json.RawMessage) error {
	if raw == nil || cairn.IsJSONNull(raw) {
		return nil
	}
	s, ok := cairn.JSONString(raw)
	if !ok {
		return cairn.Errorf(cairn.EINVALID, "writeKey must be a string")
	}
	d.req.WriteKey = s
	return nil
}

// message decodes one message and appends it to the accepted or rejected
// list. call is the single call's type, or "" for a batch item.
func (d *decoder) message(index int, raw []byte, fields []field, call string) {
	msgID, idOK := messageIDValue(lookup(fields, "messageId"))
	reject := func(reason string) {
		d.req.Rejected = append(d.req.Rejected, Rejection{Index: index, MessageID: msgID, Reason: reason})
	}
	if !idOK {
		msgID = ""
		reject(ReasonInvalidMessageID)
		return
	}
	if len(raw)+d.env.mergedBytes > d.opts.MaxMessageBytes {
		reject(ReasonTooLarge)
		return
	}

	// Type.
	typ := call
	if t := lookup(fields, "type"); t != nil && !cairn.IsJSONNull(t) {
		s, ok := cairn.JSONString(t)
		switch {
		case !ok:
			reject(ReasonInvalidType)
			return
		case call != "" && s != call:
			reject(ReasonInvalidType)
			return
		case call == "":
			if _, known := reservedTypes[s]; !known && s != CallTrack {
				reject(ReasonInvalidType)
				return
			}
			typ = s
		}
	} else if call == "" {
		reject(ReasonMissingType)
		return
	}

	// Write key.
	if k := lookup(fields, "writeKey"); k != nil && !cairn.IsJSONNull(k) {
		s, ok := cairn.JSONString(k)
		switch {
		case !ok:
			reject(ReasonInvalidWriteKey)
			return
		case d.req.WriteKey == "":
			d.req.WriteKey = s
		case s != d.req.WriteKey:
			reject(ReasonWriteKeyMismatch)
			return
		}
	}

	// Identity.
	m := Message{Index: index, Type: typ, MessageID: msgID}
	var ok bool
	if m.UserID, ok = idValue(lookup(fields, "userId")); !ok {
		reject(ReasonInvalidUserID)
		return
	}
	if m.AnonymousID, ok = idValue(lookup(fields, "anonymousId")); !ok {
		reject(ReasonInvalidAnonID)
		return
	}
	m.Event.UserID = m.UserID
	if m.Event.UserID == "" {
		m.Event.UserID = m.AnonymousID
	}
	if m.Event.UserID == "" {
		reject(ReasonNoUserID)
		return
	}

	// Call-specific fields.
	switch typ {
	case CallTrack:
		raw := lookup(fields, "event")
		if raw == nil || cairn.IsJSONNull(raw) || string(raw) == `""` {
			reject(ReasonMissingEvent)
			return
		}
		name, ok := cairn.JSONString(raw)
		if !ok || utf8.RuneCountInString(name) > MaxEventNameLen {
			reject(ReasonInvalidEvent)
			return
		}
		m.Event.Type = TrackType(name)
	case CallGroup:
		if m.GroupID, ok = idValue(lookup(fields, "groupId")); !ok || m.GroupID == "" {
			reject(ReasonMissingGroupID)
			return
		}
	case CallAlias:
		if m.PreviousID, ok = idValue(lookup(fields, "previousId")); !ok || m.PreviousID == "" {
			reject(ReasonMissingPreviousID)
			return
		}
		if m.UserID == "" {
			reject(ReasonMissingAliasUser)
			return
		}
	}
	if typ != CallTrack {
		m.Event.Type = reservedTypes[typ]
	}
	// The anonymous id this event ties to its user (see cairn.Event): the
	// previousId of an alias, else the anonymousId sent with a userId.
	switch {
	case typ == CallAlias:
		m.Event.AnonymousID = m.PreviousID
	case m.UserID != "" && m.AnonymousID != m.UserID:
		m.Event.AnonymousID = m.AnonymousID
	}
	if t := lookup(fields, "traits"); t != nil && t[0] == '{' {
		m.Traits = t
	}

	// Payload, with the batch context and integrations merged in.
	context, ok := mergeObject(lookup(fields, "context"), d.env.context)
	if !ok {
		reject(ReasonInvalidContext)
		return
	}
	integrations, ok := mergeObject(lookup(fields, "integrations"), d.env.integrations)
	if !ok {
		reject(ReasonInvalidContext)
		return
	}
	m.Event.Payload = buildPayload(fields, context, integrations)
	if field, _ := cairn.CheckPayload(m.Event.Payload); field != "" {
		// What a store could not keep as sent is refused, as POST /events
		// refuses it.
		reject(ReasonInvalidPayload)
		return
	}
	m.Event.SessionID = sessionID(context, integrations)

	// Times.
	occurred, ok := d.occurredAt(fields)
	if !ok {
		reject(ReasonInvalidTimestamp)
		return
	}
	m.Event.OccurredAt, m.Event.ReceivedAt = occurred, d.receivedAt
	m.Event.EventID = EventID(msgID)
	d.req.Messages = append(d.req.Messages, m)
}

// Earliest and latest occurredAt Cairn stores, in Unix milliseconds.
var (
	minMS = int64(0)
	maxMS = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
)

// occurredAt applies Segment's clock-skew correction (see the package doc).
func (d *decoder) occurredAt(fields []field) (time.Time, bool) {
	tsRaw := lookup(fields, "originalTimestamp")
	if tsRaw == nil || cairn.IsJSONNull(tsRaw) {
		tsRaw = lookup(fields, "timestamp")
	}
	var sentAt *time.Time
	if raw := lookup(fields, "sentAt"); raw != nil && !cairn.IsJSONNull(raw) {
		t, ok := parseTimestamp(raw)
		if !ok {
			return time.Time{}, false
		}
		sentAt = &t
	} else {
		sentAt = d.env.sentAt
	}
	if tsRaw == nil || cairn.IsJSONNull(tsRaw) {
		return d.receivedAt, true
	}
	ts, ok := parseTimestamp(tsRaw)
	if !ok {
		return time.Time{}, false
	}
	occ := ts.UnixMilli()
	if sentAt != nil {
		occ = d.receivedAt.UnixMilli() - (sentAt.UnixMilli() - occ)
	}
	if occ < minMS || occ > maxMS {
		return time.Time{}, false
	}
	t := time.UnixMilli(occ).UTC()
	if t.After(d.receivedAt.Add(d.opts.MaxFuture)) {
		return d.receivedAt, true
	}
	return t, true
}

// parseTimestamp parses a JSON string holding an ISO 8601 timestamp with
// 0–9 fractional digits (cairn.ParseTime), at millisecond precision.
func parseTimestamp(raw json.RawMessage) (time.Time, bool) {
	s, ok := cairn.JSONString(raw)
	if !ok {
		return time.Time{}, false
	}
	t, err := cairn.ParseTime(s)
	return t, err == nil
}

// EventID returns the Cairn eventId of a messageId: the messageId itself
// when cairn.ValidateEventID accepts it, "" for "", and otherwise "m-" and
// the hex of the first 20 bytes of its SHA-256 (deterministic, so retries
// deduplicate).
func EventID(messageID string) string {
	if messageID == "" || cairn.ValidateEventID(messageID) == "" {
		return messageID
	}
	sum := sha256.Sum256([]byte(messageID))
	return "m-" + hex.EncodeToString(sum[:20])
}

// sessionID returns context.sessionId, else
// integrations["Actions Amplitude"].session_id, else "".
func sessionID(context, integrations []field) string {
	if id, ok := idValue(lookup(context, "sessionId")); ok && id != "" {
		return id
	}
	amp := lookup(integrations, "Actions Amplitude")
	if amp == nil || amp[0] != '{' {
		return ""
	}
	obj, err := parseObject(amp)
	if err != nil {
		return ""
	}
	if id, ok := idValue(lookup(obj, "session_id")); ok {
		return id
	}
	return ""
}

// messageIDValue decodes a messageId: a string, as sent (any length: see
// EventID), or a number (its JSON text). Absent and null give "", true;
// anything else false.
func messageIDValue(raw json.RawMessage) (string, bool) {
	switch {
	case raw == nil || cairn.IsJSONNull(raw):
		return "", true
	case raw[0] == '"':
		return cairn.JSONString(raw)
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		return string(raw), true
	}
	return "", false
}

// idValue decodes an id field: a string (trimmed) or a number (its JSON
// text). Absent, null and "" give "", true; anything else, or more than
// cairn.MaxIDBytes, gives false.
func idValue(raw json.RawMessage) (string, bool) {
	if raw == nil || cairn.IsJSONNull(raw) {
		return "", true
	}
	var s string
	switch c := raw[0]; {
	case c == '"':
		var ok bool
		if s, ok = cairn.JSONString(raw); !ok {
			return "", false
		}
		s = strings.TrimSpace(s)
	case c == '-' || c >= '0' && c <= '9':
		s = string(raw)
	default:
		return "", false
	}
	if len(s) > cairn.MaxIDBytes || !utf8.ValidString(s) {
		return "", false
	}
	return s, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}

// validJSON reports why body is not exactly one valid JSON value with no
// member name repeated within an object (jsontext's default rules).
func validJSON(body []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if err := dec.SkipValue(); err != nil {
		return err
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errSyntax
		}
		return err
	}
	return nil
}
