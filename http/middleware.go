package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/cairn-dev/cairn"
)

type ctxKey int

const (
	loggerKey ctxKey = iota
	infoKey
	requestIDKey
)

// RequestID returns the id of the request whose context ctx is (the
// X-Request-Id the Server answered with), or "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithRequestID returns a slog.Handler that adds request_id to every record
// logged with a request's context (slog's ...Context methods), so that the
// logs of code the Server calls into (the account packages) name the
// request as the Server's own logs do.
func WithRequestID(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// requestInfo carries what inner handlers learn about a request back to the
// outer middleware.
type requestInfo struct{ pattern string }

// loggerFrom returns the request's logger (carrying its request id).
func loggerFrom(r *http.Request, fallback *slog.Logger) *slog.Logger {
	if l, ok := r.Context().Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return fallback
}

// validRequestID accepts client request ids of 1–64 safe characters.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status a handler wrote and the bytes of its body.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequestContext assigns a request id, puts a logger carrying it in the
// context, recovers panics as JSON 500s, reports the request to
// ObserveRequest and, with AccessLog, writes its access-log line.
func (s *Server) withRequestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		log := s.Logger.With("request_id", id)
		info := &requestInfo{}
		ctx := context.WithValue(context.WithValue(r.Context(), loggerKey, log), requestIDKey, id)
		r = r.WithContext(context.WithValue(ctx, infoKey, info))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
				if sw.status == 0 {
					s.writeError(sw, r, cairn.Errorf(cairn.EINTERNAL, "Internal error."))
				}
			}
			route := info.pattern
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			if s.ObserveRequest != nil {
				s.ObserveRequest(route, status, d)
			}
			if s.AccessLog {
				// No query string, headers or cookies: they can carry
				// tokens and personal data.
				log.Info("request", "method", r.Method, "route", route, "status", status,
					"bytes", sw.bytes, "duration_ms", float64(d.Microseconds())/1000)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// serveMux routes the request, answering unknown routes and wrong methods
// with JSON errors instead of ServeMux's plain text.
func (s *Server) serveMux(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			if allow := probe.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			s.writeError(w, r, errMethodNotAllowed)
			return
		}
		s.writeError(w, r, errNotFound)
		return
	}
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		info.pattern = pattern
	}
	s.mux.ServeHTTP(w, r)
}

// headerProbe captures what ServeMux's fallback handlers would write.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }

// requireSession wraps h so that it runs only for authenticated requests,
// with the principal in the request's context (cairn.PrincipalFromContext).
// The token is read by the account sub-API (a cookie or a bearer header).
func (s *Server) requireSession(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Auth != nil {
			var token string
			if s.Accounts != nil {
				token = s.Accounts.SessionToken(r)
			}
			p, err := s.Auth.Authenticate(r.Context(), token)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			r = r.WithContext(cairn.NewContextWithPrincipal(r.Context(), p))
		}
		h(w, r)
	})
}

// withPrincipal runs h with the principal of the request's session in the
// context when it presents a live one, and without one otherwise (the
// console then shows its sign-in form rather than a JSON 401).
func (s *Server) withPrincipal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Auth != nil && s.Accounts != nil {
			if token := s.Accounts.SessionToken(r); token != "" {
				if p, err := s.Auth.Authenticate(r.Context(), token); err == nil {
					r = r.WithContext(cairn.NewContextWithPrincipal(r.Context(), p))
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// noStore marks h's responses, errors included, as not cacheable.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		h.ServeHTTP(w, r)
	})
}
