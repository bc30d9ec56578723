package http

import (
	"bytes"
	"compress/gzip"
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
// decode, validate, append durably, 202.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	src, err := s.eventsSource(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	events, err := s.decodeEvents(w, r)
	if err != nil {
		s.reject(cairn.ErrorCode(err), max(1, len(events)))
		s.writeError(w, r, err)
		return
	}
	for i := range events {
		stampSource(&events[i], src, "")
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

func (s *Server) reject(code string, n int) {
	if s.OnRejected == nil {
		return
	}
	reason := code
	if code == cairn.EINVALID {
		reason = "invalid"
	}
	s.OnRejected(reason, n)
}

// decodeEvents reads, decompresses, parses and validates the request body.
// On error it returns EINVALID (400), ETOOLARGE (413) or EUNSUPPORTED (415).
func (s *Server) decodeEvents(w http.ResponseWriter, r *http.Request) ([]cairn.Event, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/plain") {
			return nil, cairn.Errorf(cairn.EUNSUPPORTED, "Content-Type must be application/json or text/plain.")
		}
	}
	body, err := readBody(w, r, MaxBodyBytes, MaxDecodedBytes)
	if err != nil {
		return nil, err
	}
	return DecodeEvents(body, s.Now(), s.Rules)
}

// readBody reads the request body: at most maxWire bytes on the wire and,
// with Content-Encoding gzip, at most maxDecoded bytes decompressed. It
// returns ETOOLARGE over a limit, EUNSUPPORTED for another encoding and
// EINVALID for a body that cannot be read or a malformed gzip stream.
func readBody(w http.ResponseWriter, r *http.Request, maxWire, maxDecoded int64) ([]byte, error) {
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		return nil, cairn.Errorf(cairn.EUNSUPPORTED, "Content-Encoding %q is not supported; use gzip or none.", enc)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWire))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, cairn.Errorf(cairn.ETOOLARGE, "Request body exceeds %d bytes.", maxWire)
		}
		return nil, cairn.Errorf(cairn.EINVALID, "Cannot read request body.")
	}
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, cairn.Errorf(cairn.EINVALID, "Malformed gzip body.")
		}
		body, err = io.ReadAll(io.LimitReader(zr, maxDecoded+1))
		if err != nil {
			return nil, cairn.Errorf(cairn.EINVALID, "Malformed gzip body.")
		}
		if int64(len(body)) > maxDecoded {
			return nil, cairn.Errorf(cairn.ETOOLARGE, "Decompressed body exceeds %d bytes.", maxDecoded)
		}
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
	if _, err := dec.ReadToken(); err != io.EOF {
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
