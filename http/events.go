package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
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

// handleEvents serves POST /events: decode, validate, append durably, 202.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	events, err := s.decodeEvents(w, r)
	if err != nil {
		s.reject(cairn.ErrorCode(err), max(1, len(events)))
		s.writeError(w, r, err)
		return
	}
	if err := s.Ingester.Ingest(r.Context(), events); err != nil {
		if errors.Is(err, context.Canceled) {
			return // client went away; nothing acknowledged
		}
		reason := "spool_error"
		if cairn.ErrorCode(err) == cairn.EUNAVAILABLE && s.Ingester.Stats().SpoolError == "" {
			reason = "backlog_full"
		}
		s.reject(reason, len(events))
		s.writeError(w, r, err)
		return
	}
	resp := AcceptedResponse{Message: "Events accepted for processing", Count: len(events), EventIDs: make([]string, len(events))}
	for i := range events {
		resp.EventIDs[i] = events[i].EventID
	}
	writeJSON(w, http.StatusAccepted, resp)
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
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		return nil, cairn.Errorf(cairn.EUNSUPPORTED, "Content-Encoding %q is not supported; use gzip or none.", enc)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, cairn.Errorf(cairn.ETOOLARGE, "Request body exceeds %d bytes.", MaxBodyBytes)
		}
		return nil, cairn.Errorf(cairn.EINVALID, "Cannot read request body.")
	}
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, cairn.Errorf(cairn.EINVALID, "Malformed gzip body.")
		}
		body, err = io.ReadAll(io.LimitReader(zr, MaxDecodedBytes+1))
		if err != nil {
			return nil, cairn.Errorf(cairn.EINVALID, "Malformed gzip body.")
		}
		if len(body) > MaxDecodedBytes {
			return nil, cairn.Errorf(cairn.ETOOLARGE, "Decompressed body exceeds %d bytes.", MaxDecodedBytes)
		}
	}
	return DecodeEvents(body, s.Now(), s.Rules)
}

// DecodeEvents parses a POST /events body — one event object or an array of
// 1–MaxEventsPerRequest — and validates every event. A batch is
// all-or-nothing: the returned EINVALID error lists every invalid event.
// It returns ETOOLARGE for too many events or an event over MaxEventBytes.
func DecodeEvents(body []byte, now time.Time, rules cairn.EventRules) ([]cairn.Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, cairn.Errorf(cairn.EINVALID, "Request body is empty; send an event object or an array of events.")
	}
	var raws []json.RawMessage
	switch body[0] {
	case '{':
		raws = []json.RawMessage{body}
		if !json.Valid(body) {
			return nil, invalidJSON(body)
		}
	case '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, invalidJSON(body)
		}
		if len(raws) == 0 {
			return nil, cairn.Errorf(cairn.EINVALID, "Event array is empty.")
		}
		if len(raws) > MaxEventsPerRequest {
			return nil, cairn.Errorf(cairn.ETOOLARGE, "Too many events: %d (at most %d per request).", len(raws), MaxEventsPerRequest)
		}
	default:
		if !json.Valid(body) {
			return nil, invalidJSON(body)
		}
		return nil, cairn.Errorf(cairn.EINVALID, "Body must be an event object or an array of events.")
	}
	events := make([]cairn.Event, len(raws))
	var details []cairn.FieldError
	for i, raw := range raws {
		if len(raw) > MaxEventBytes {
			return nil, cairn.Errorf(cairn.ETOOLARGE, "Event %d is %d bytes; at most %d bytes per event.", i, len(raw), MaxEventBytes)
		}
		ev, errs := cairn.DecodeEvent(raw, i, now, rules)
		if errs != nil {
			details = append(details, errs...)
			continue
		}
		events[i] = ev
	}
	if details != nil {
		msg := "Invalid event."
		if len(raws) > 1 {
			msg = fmt.Sprintf("Invalid events: %d error(s); nothing was accepted.", len(details))
		}
		return nil, &cairn.Error{Code: cairn.EINVALID, Message: msg, Details: details}
	}
	return events, nil
}

// invalidJSON describes where body stops being valid JSON.
func invalidJSON(body []byte) error {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return cairn.Errorf(cairn.EINVALID, "Malformed JSON at byte %d: %v.", se.Offset, se)
	}
	if err != nil {
		return cairn.Errorf(cairn.EINVALID, "Malformed JSON: %v.", err)
	}
	return cairn.Errorf(cairn.EINVALID, "Malformed JSON.")
}
