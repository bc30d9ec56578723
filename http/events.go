package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/go-json-experiment/json/jsontext"
)

// Ingest limits.
const (
	// MaxBodyBytes is the largest request body accepted on the wire.
	MaxBodyBytes = 1 << 20
	// MaxDecodedBytes is the largest body accepted after decompression.
	MaxDecodedBytes = 8 << 20
	// MaxEventBytes is the largest single event accepted.
	MaxEventBytes = 32 << 10
	// MaxEventsPerRequest is the most events one request may carry.
	MaxEventsPerRequest = 1000
)

// AcceptedResponse is the body of a 202 answer to POST /events.
type AcceptedResponse struct {
	Message  string   `json:"message"`
	Count    int      `json:"count"`
	EventIDs []string `json:"eventIds"`
}

// handleEvents serves POST /events: authenticate the write key if any,
// decode, validate, append durably, 202. The body's memory is drawn from
// the server's bodyBudget until the events are durable.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	src, err := s.eventsSource(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.admit(); err != nil {
		srcID := ""
		if src != nil {
			srcID = src.ID
		}
		s.refuseUnavailable(w, r, err, srcID, 1)
		return
	}
	lease := s.newLease(r)
	defer lease.release()
	events, err := s.decodeEvents(w, r, lease)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return // client went away; nothing acknowledged
		}
		s.reject(err, max(1, len(events)))
		s.writeError(w, r, err)
		return
	}
	for i := range events {
		stampSource(&events[i], src)
	}
	if !s.ingestForSource(w, r, src, events) {
		return
	}
	resp := AcceptedResponse{Message: "Events accepted for processing", Count: len(events), EventIDs: make([]string, len(events))}
	for i := range events {
		resp.EventIDs[i] = events[i].EventID
	}
	s.writeJSON(w, r, http.StatusAccepted, resp)
}

// admit returns the error the Ingester would refuse any events with now
// (cairn.Admitter), so that an overloaded server answers 503 before it
// reads and decodes a body it cannot take; nil if it may accept them.
// The refused request counts as one rejected event: its events were never
// counted.
func (s *Server) admit() error {
	if a, ok := s.Ingester.(cairn.Admitter); ok {
		return a.Admit()
	}
	return nil
}

// refuseUnavailable answers a request whose n events the Ingester refused
// (or would refuse, Admit) with err, counting them as rejected and, when
// srcID is not empty, as unavailable for that source.
func (s *Server) refuseUnavailable(w http.ResponseWriter, r *http.Request, err error, srcID string, n int) {
	s.reject(err, n)
	if srcID != "" {
		s.sourceEvents(srcID, SourceUnavailable, n)
	}
	s.writeError(w, r, err)
}

// eventsSource returns the source whose write key a POST /events request
// presents (HTTP Basic user name, else X-Write-Key), or nil for an
// anonymous request when RequireWriteKey is off. An unknown key, a
// disabled source, or no key when one is required is EUNAUTHORIZED.
func (s *Server) eventsSource(r *http.Request) (*cairn.Source, error) {
	key := strings.TrimSpace(r.Header.Get("X-Write-Key"))
	if user, _, ok := r.BasicAuth(); ok {
		key = user
	}
	if key == "" && !s.RequireWriteKey {
		return nil, nil
	}
	if s.Sources == nil {
		return nil, cairn.Errorf(cairn.EUNAUTHORIZED, "This server has no sources; write keys cannot be checked.")
	}
	return s.authenticateSource(r.Context(), key)
}

// reject reports n events refused because of err, under its
// cairn.RejectReason name.
func (s *Server) reject(err error, n int) {
	s.rejectReason(cairn.RejectReason(err), n)
}

// rejectReason reports n events refused for a named reason (a cairn.Reject*
// name, or a tracking API message rejection reason).
func (s *Server) rejectReason(reason string, n int) {
	if s.OnRejected == nil {
		return
	}
	s.OnRejected(reason, n)
}

// decodeEvents reads, decompresses, parses and validates the request body.
// On error it returns EINVALID (400), ETOOLARGE (413), EUNSUPPORTED (415)
// or, when the body budget is exhausted, EUNAVAILABLE (503).
func (s *Server) decodeEvents(w http.ResponseWriter, r *http.Request, lease *bodyLease) ([]cairn.Event, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/plain") {
			return nil, cairn.Errorf(cairn.EUNSUPPORTED, "Content-Type must be application/json or text/plain.")
		}
	}
	body, err := s.readBody(w, r, lease, MaxBodyBytes, MaxDecodedBytes)
	if err != nil {
		return nil, err
	}
	return DecodeEvents(body, s.Now(), s.Rules)
}

// decodeFactor is how many times its size a body's decoded events and
// their spool record are counted in the body budget, on top of the body.
const decodeFactor = 2

// readBody reads a request body of events for decoding: at most maxWire
// bytes on the wire, gzip (Content-Encoding gzip or x-gzip) inflated to at
// most maxDecoded. Every byte it holds — the wire bytes, the
// inflated bytes, and decodeFactor times the body for the events decoded
// from it — is drawn from lease, so the server's bodyBudget bounds the
// memory of all concurrent bodies; the caller releases the lease once the
// events are no longer needed. Routes that accept event bodies (POST
// /events, and tracking APIs reusing this reader) must read through it.
//
// It returns EUNSUPPORTED for another encoding, ETOOLARGE over a limit,
// EINVALID for an unreadable or malformed gzip body, and EUNAVAILABLE
// (503, Retry-After 1) when the budget cannot cover the body in time.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, lease *bodyLease, maxWire, maxDecoded int64) ([]byte, error) {
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		return nil, cairn.Errorf(cairn.EUNSUPPORTED, "Content-Encoding %q is not supported; use gzip or none.", enc)
	}
	if r.ContentLength > maxWire {
		return nil, cairn.Errorf(cairn.ETOOLARGE, "Request body exceeds %d bytes.", maxWire)
	}
	hint := r.ContentLength
	if !gz && hint > 0 {
		// Take the whole share up front, while the request may still wait
		// for it: the body and what it decodes to.
		if err := lease.reserve((decodeFactor + 1) * (hint + 1)); err != nil {
			return nil, err
		}
	}
	body, err := lease.readAll(http.MaxBytesReader(w, r.Body, maxWire), hint, maxWire)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, cairn.Errorf(cairn.ETOOLARGE, "Request body exceeds %d bytes.", maxWire)
		case errors.Is(err, errBodyMemory), errors.Is(err, context.Canceled):
			return nil, err
		}
		return nil, cairn.Errorf(cairn.EINVALID, "Cannot read request body.")
	}
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, cairn.Errorf(cairn.EINVALID, "Malformed gzip body.")
		}
		// The gzip trailer states the inflated size (mod 2^32): a hint
		// only, so a body that lies costs buffer growth, never more.
		inflated := int64(0)
		if len(body) >= 4 {
			inflated = min(int64(binary.LittleEndian.Uint32(body[len(body)-4:])), maxDecoded)
		}
		body, err = lease.readAll(zr, inflated, maxDecoded)
		if err != nil {
			if errors.Is(err, errBodyMemory) || errors.Is(err, context.Canceled) {
				return nil, err
			}
			return nil, cairn.Errorf(cairn.EINVALID, "Malformed gzip body.")
		}
		if int64(len(body)) > maxDecoded {
			return nil, cairn.Errorf(cairn.ETOOLARGE, "Decompressed body exceeds %d bytes.", maxDecoded)
		}
	}
	if err := lease.grow(decodeFactor * int64(len(body))); err != nil {
		return nil, err
	}
	return body, nil
}

// DecodeEvents parses a POST /events body — one event object or an array of
// 1–MaxEventsPerRequest — in a single streaming pass, and validates every
// event. A batch is all-or-nothing: the returned EINVALID error lists every
// invalid event. It returns ETOOLARGE for too many events or an event over
// MaxEventBytes. Field names match exactly; duplicate names and invalid
// UTF-8 are malformed JSON.
func DecodeEvents(body []byte, now time.Time, rules cairn.EventRules) ([]cairn.Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, cairn.Errorf(cairn.EINVALID, "Request body is empty; send an event object or an array of events.")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	var events []cairn.Event
	var details []cairn.FieldError
	decodeOne := func(index int) error {
		start := dec.InputOffset()
		if dec.PeekKind() != '{' {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			details = append(details, cairn.FieldError{Index: index, Message: "event must be a JSON object"})
			return nil
		}
		raw, err := readRawEvent(dec)
		if err != nil {
			return err
		}
		if size := dec.InputOffset() - start; size > MaxEventBytes {
			return cairn.Errorf(cairn.ETOOLARGE, "Event %d is %d bytes; at most %d bytes per event.", index, size, MaxEventBytes)
		}
		ev, errs := raw.Normalize(index, now, rules)
		if errs != nil {
			details = append(details, errs...)
		} else if details == nil {
			events = append(events, ev)
		}
		return nil
	}
	switch body[0] {
	case '{':
		if err := decodeOne(0); err != nil {
			return nil, decodeError(err)
		}
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return nil, decodeError(err)
		}
		events = make([]cairn.Event, 0, min(len(body)/64+1, MaxEventsPerRequest))
		n := 0
		for dec.PeekKind() != ']' {
			if n == MaxEventsPerRequest {
				return nil, cairn.Errorf(cairn.ETOOLARGE, "Too many events: at most %d per request.", MaxEventsPerRequest)
			}
			if err := decodeOne(n); err != nil {
				return nil, decodeError(err)
			}
			n++
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, decodeError(err)
		}
		if n == 0 {
			return nil, cairn.Errorf(cairn.EINVALID, "Event array is empty.")
		}
	default:
		if err := dec.SkipValue(); err != nil {
			return nil, decodeError(err)
		}
		return nil, cairn.Errorf(cairn.EINVALID, "Body must be an event object or an array of events.")
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, cairn.Errorf(cairn.EINVALID, "Malformed JSON: unexpected data after the top-level value at byte %d.", dec.InputOffset())
	}
	if details != nil {
		msg := "Invalid event."
		if body[0] == '[' {
			msg = fmt.Sprintf("Invalid events: %d error(s); nothing was accepted.", len(details))
		}
		return nil, &cairn.Error{Code: cairn.EINVALID, Message: msg, Details: details}
	}
	return events, nil
}

// Names of the event fields, as raw JSON strings.
var (
	nameEventID    = []byte(`"eventId"`)
	nameUserID     = []byte(`"userId"`)
	nameSessionID  = []byte(`"sessionId"`)
	nameType       = []byte(`"type"`)
	namePayload    = []byte(`"payload"`)
	nameOccurredAt = []byte(`"occurredAt"`)
)

// readRawEvent reads one JSON object, keeping copies of the known fields.
func readRawEvent(dec *jsontext.Decoder) (cairn.RawEvent, error) {
	var raw cairn.RawEvent
	if _, err := dec.ReadToken(); err != nil { // {
		return raw, err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return raw, err
		}
		if bytes.IndexByte(name, '\\') >= 0 {
			unq, err := jsontext.AppendUnquote(nil, name)
			if err != nil {
				return raw, err
			}
			name, _ = jsontext.AppendQuote(nil, unq)
		}
		var dst *json.RawMessage
		switch {
		case bytes.Equal(name, nameUserID):
			dst = &raw.UserID
		case bytes.Equal(name, nameSessionID):
			dst = &raw.SessionID
		case bytes.Equal(name, nameType):
			dst = &raw.Type
		case bytes.Equal(name, namePayload):
			dst = &raw.Payload
		case bytes.Equal(name, nameOccurredAt):
			dst = &raw.OccurredAt
		case bytes.Equal(name, nameEventID):
			dst = &raw.EventID
		}
		if dst == nil {
			if err := dec.SkipValue(); err != nil {
				return raw, err
			}
			continue
		}
		v, err := dec.ReadValue()
		if err != nil {
			return raw, err
		}
		*dst = bytes.Clone(v) // v is only valid until the next read
	}
	_, err := dec.ReadToken() // }
	return raw, err
}

// decodeError turns a decoding failure into an API error.
func decodeError(err error) error {
	var ae *cairn.Error
	if errors.As(err, &ae) {
		return ae
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return cairn.Errorf(cairn.EINVALID, "Malformed JSON at byte %d: %v.", se.ByteOffset, se.Err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return cairn.Errorf(cairn.EINVALID, "Malformed JSON: unexpected end of input.")
	}
	return cairn.Errorf(cairn.EINVALID, "Malformed JSON: %v.", err)
}
