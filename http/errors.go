package http

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
)

// statusByCode maps application error codes to HTTP statuses.
var statusByCode = map[string]int{
	cairn.EINVALID:       http.StatusBadRequest,
	cairn.EUNAUTHORIZED:  http.StatusUnauthorized,
	cairn.EFORBIDDEN:     http.StatusForbidden,
	cairn.ENOTFOUND:      http.StatusNotFound,
	cairn.ECONFLICT:      http.StatusConflict,
	cairn.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	cairn.EUNSUPPORTED:   http.StatusUnsupportedMediaType,
	cairn.EUNAVAILABLE:   http.StatusServiceUnavailable,
	cairn.EINTERNAL:      http.StatusInternalServerError,
	codeMethodNotAllowed: http.StatusMethodNotAllowed,
	codeRateLimited:      http.StatusTooManyRequests,
	codeNotImplemented:   http.StatusNotImplemented,
}

// HTTP-only error codes.
const (
	codeMethodNotAllowed = "method_not_allowed"
	// codeRateLimited: a source sent more events than its rate limit
	// allows (429, with Retry-After and X-RateLimit-Reset).
	codeRateLimited = "rate_limited"
)

var (
	errNotFound         = cairn.Errorf(cairn.ENOTFOUND, "Not found.")
	errMethodNotAllowed = cairn.Errorf(codeMethodNotAllowed, "Method not allowed.")
)

// ErrorResponse is the JSON body of every Cairn error response.
type ErrorResponse struct {
	Error   string             `json:"error"`
	Code    string             `json:"code"`
	Details []cairn.FieldError `json:"details,omitempty"`
}

// writeError writes err as a JSON error response. Internal errors are logged
// with their details and answered with a generic message.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := cairn.ErrorCode(err)
	status, ok := statusByCode[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	log := loggerFrom(r, s.Logger)
	switch {
	case status >= 500 && code != cairn.EUNAVAILABLE:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500:
		// A failing spool or a full budget refuses every request: warn once
		// per interval and cause, with how many were refused meanwhile.
		if n, ok := s.refusals.allow(cairn.ErrorMessage(err), s.Now()); ok {
			log.Warn("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "err", err,
				"refused_since_last_warning", n)
		} else {
			log.Debug("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	default:
		log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	body := ErrorResponse{Error: cairn.ErrorMessage(err), Code: code}
	var ae *cairn.Error
	if errors.As(err, &ae) {
		body.Details = ae.Details
	}
	if errors.Is(err, cairn.ErrBodyMemory) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1") // memory frees as soon as requests finish
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(5))
	}
	s.writeJSON(w, r, status, body)
}

// refusalLogInterval is the most often one cause of 503 refusals is logged
// at WARN.
const refusalLogInterval = 10 * time.Second

// refusalLog rate-limits the WARN line for refused requests, per cause.
type refusalLog struct {
	mu    sync.Mutex
	last  map[string]time.Time
	count map[string]int // refusals not warned about since last
}

// allow reports whether a refusal for cause may be logged at now, and how
// many were refused since the last line for it.
func (l *refusalLog) allow(cause string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.count = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[cause]; ok && now.Sub(t) < refusalLogInterval {
		l.count[cause]++
		return 0, false
	}
	n := l.count[cause]
	l.last[cause], l.count[cause] = now, 0
	return n, true
}

// writeJSON writes v as a JSON response with the given status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		loggerFrom(r, s.Logger).Error("encode response", "err", err)
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal error.","code":"internal"}`)
	}
	writeRawJSON(w, status, b)
}

// writeRawJSON writes already-encoded JSON.
func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	// A failed write means the client went away: there is no one to tell.
	_, _ = w.Write(append(b, '\n'))
}
