package http

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/segment"
)

// The Segment-compatible tracking API: POST /v1/{call} for the calls
// batch, track, identify, page, screen, group, alias and the short forms
// analytics.js posts to (b, t, i, p, s, g, a). Package segment does the
// decoding and the mapping to Cairn events; this file authenticates the
// source, applies its rate limit, ingests durably and answers as Segment
// does.

// Outcomes passed to Server.OnSourceEvents.
const (
	SourceAccepted    = "accepted"     // stored durably (the 2xx was sent)
	SourceRejected    = "rejected"     // refused one by one (listed in "rejected")
	SourceRateLimited = "rate_limited" // refused with 429
	SourceUnavailable = "unavailable"  // refused with 503 (backlog full, spool error)
)

// trackingCORSHeaders are the request headers the tracking API allows
// cross-origin: analytics.js ≥ 1.84 sends Basic auth and X-Retry-Count.
const trackingCORSHeaders = "Authorization, Content-Type, X-Retry-Count"

// trackingResponse is the body of a 200 answer of the tracking API.
type trackingResponse struct {
	Success  bool                `json:"success"`
	Rejected []segment.Rejection `json:"rejected,omitempty"`
}

// isTrackingPath reports whether path belongs to the tracking API, which
// answers CORS itself (any origin, no credentials).
func isTrackingPath(path string) bool { return strings.HasPrefix(path, "/v1/") }

// setTrackingCORS lets any origin read the response, without credentials.
func setTrackingCORS(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") != "" {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
}

// handleTrackingPreflight serves OPTIONS /v1/{call}: the CORS preflight
// every cross-origin analytics.js call makes.
func (s *Server) handleTrackingPreflight(w http.ResponseWriter, r *http.Request) {
	if !segment.IsCall(r.PathValue("call")) {
		s.writeError(w, r, errNotFound)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", trackingCORSHeaders)
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// handleTracking serves POST /v1/{call}.
func (s *Server) handleTracking(w http.ResponseWriter, r *http.Request) {
	setTrackingCORS(w, r)
	call := r.PathValue("call")
	if !segment.IsCall(call) {
		s.writeError(w, r, errNotFound)
		return
	}
	// Content-Type is ignored: browsers send text/plain, gzipping SDKs
	// application/x-www-form-urlencoded. The body's memory comes from the
	// server's bodyBudget, as for POST /events, until the events are durable.
	if err := s.admit(); err != nil {
		s.refuseUnavailable(w, r, err, "", 1) // the write key may be in the body
		return
	}
	lease := s.newLease(r)
	defer lease.release()
	body, err := s.readBody(w, r, lease, segment.DefaultMaxBatchBytes, segment.DefaultMaxBatchBytes)
	if err != nil {
		s.reject(err, 1)
		s.writeError(w, r, trackingError(err))
		return
	}
	var src *cairn.Source
	basicKey, _, _ := r.BasicAuth()
	if basicKey != "" {
		if src, err = s.authenticateSource(r.Context(), basicKey); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	req, err := segment.Decode(body, call, s.Now(), segment.Options{MaxFuture: s.Rules.MaxFuture})
	if err != nil {
		s.reject(err, 1)
		s.writeError(w, r, trackingError(err))
		return
	}
	if src == nil {
		if src, err = s.authenticateSource(r.Context(), req.WriteKey); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.countRejections(src, req.Rejected)
	events := make([]cairn.Event, len(req.Messages))
	for i := range req.Messages {
		m := &req.Messages[i]
		events[i] = m.Event
		stampSource(&events[i], src)
	}
	// Identity: segment.Decode sets Event.AnonymousID (an identify or track
	// with both ids, an alias's previousId); the store links it to the
	// user when it stores the event, and keeps $identify traits as the
	// user's profile (cairn.TrackedUserStore).
	if !s.ingestForSource(w, r, src, events) {
		return
	}
	s.writeJSON(w, r, http.StatusOK, trackingResponse{Success: true, Rejected: req.Rejected})
}

// ingestForSource applies the source's rate limit to events, ingests
// them durably and then hands them to OnAccepted. When it returns false it has written the error response
// (429, 503). A source may be nil (anonymous POST /events), and events
// may be empty (nothing to do).
func (s *Server) ingestForSource(w http.ResponseWriter, r *http.Request, src *cairn.Source, events []cairn.Event) bool {
	if len(events) == 0 {
		return true
	}
	var lim cairn.RateLimit
	id := ""
	if src != nil {
		lim, id = src.RateLimit, src.ID
		now := s.Now()
		if ok, wait := s.limiter.take(id, lim, len(events), now); !ok {
			secs := max(1, int64(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(wait).Add(time.Second-1).Unix(), 10))
			s.sourceEvents(id, SourceRateLimited, len(events))
			s.rejectReason(cairn.RejectRateLimited, len(events))
			s.writeError(w, r, cairn.Errorf(codeRateLimited, "Rate limit of source %s exceeded (%d events/s); retry in %d s.", id, lim.EventsPerSecond, secs))
			return false
		}
	}
	if err := s.Ingester.Ingest(r.Context(), events); err != nil {
		s.limiter.refund(id, lim, len(events))
		if errors.Is(err, context.Canceled) {
			return false // client went away; nothing acknowledged
		}
		s.refuseUnavailable(w, r, err, id, len(events))
		return false
	}
	if id != "" {
		s.sourceEvents(id, SourceAccepted, len(events))
	}
	if s.OnAccepted != nil {
		s.OnAccepted(events) // durable now: the live tail may show them
	}
	return true
}

// authenticateSource returns the enabled source with that write key. A
// missing or unknown key, or a disabled source, is EUNAUTHORIZED (401).
func (s *Server) authenticateSource(ctx context.Context, writeKey string) (*cairn.Source, error) {
	if writeKey == "" {
		return nil, cairn.Errorf(cairn.EUNAUTHORIZED, "A write key is required: send it as the HTTP Basic user name, or as writeKey in the body.")
	}
	src, err := s.Sources.SourceByWriteKey(ctx, writeKey)
	switch {
	case cairn.ErrorCode(err) == cairn.ENOTFOUND:
		return nil, cairn.Errorf(cairn.EUNAUTHORIZED, "Unknown write key.")
	case err != nil:
		return nil, err
	case !src.Enabled:
		return nil, cairn.Errorf(cairn.EUNAUTHORIZED, "Source %s is disabled; its write key is refused.", src.ID)
	}
	return src, nil
}

// stampSource records on ev the source it came through (none for an
// anonymous POST /events).
func stampSource(ev *cairn.Event, src *cairn.Source) {
	if src != nil {
		ev.SourceID = src.ID
	}
}

// countRejections reports the messages a tracking request refused one by
// one, by reason and by source.
func (s *Server) countRejections(src *cairn.Source, rejected []segment.Rejection) {
	if len(rejected) == 0 {
		return
	}
	byReason := map[string]int{}
	for _, rej := range rejected {
		byReason[rej.Reason]++
	}
	for reason, n := range byReason {
		if s.OnRejected != nil {
			s.OnRejected(reason, n)
		}
	}
	s.sourceEvents(src.ID, SourceRejected, len(rejected))
}

func (s *Server) sourceEvents(sourceID, outcome string, n int) {
	if s.OnSourceEvents != nil && n > 0 {
		s.OnSourceEvents(sourceID, outcome, n)
	}
}

// trackingError answers what Segment answers with 400 — an oversize
// request — with 400 too (code invalid); other errors keep their code.
func trackingError(err error) error {
	if cairn.ErrorCode(err) == cairn.ETOOLARGE {
		return cairn.Errorf(cairn.EINVALID, "%s", cairn.ErrorMessage(err))
	}
	return err
}
