// Package http is Cairn's HTTP API: event ingest, journeys, health, stats,
// the current session, the admin's user listing, and the mounting points for
// the account protocol (package betterauth), metrics and API docs. Routing
// uses the standard library's ServeMux; every route is listed in routes.go,
// and every error of a Cairn route is written through the one code → status
// table in errors.go. Sub-APIs with their own wire protocol (Better Auth
// under /api/auth) are registered on the same mux, so request ids, logging,
// panics and metrics cover them too.
package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
)

// Server serves Cairn's HTTP API. Set its fields, then call Open (or use
// Handler with your own listener).
type Server struct {
	// Ingester accepts events durably. Required.
	Ingester cairn.Ingester
	// Store serves journeys and health. Required.
	Store cairn.EventStore
	// Auth authenticates the session tokens of protected routes, and
	// enables GET /session. When nil, reads are not protected (for tests of
	// this package only).
	Auth cairn.Authenticator
	// Users serves GET /users (admins only); nil leaves the route out.
	Users cairn.UserLister
	// Accounts is the account sub-API (package betterauth): its routes are
	// mounted on the mux, and it reads the session token a request
	// presents. Nil mounts nothing and treats every request as presenting
	// no token.
	Accounts Accounts
	// Rules validate incoming events.
	Rules cairn.EventRules
	// Logger receives request logs.
	Logger *slog.Logger
	// Middleware wraps the whole router, outermost first (e.g. CORS).
	Middleware []func(http.Handler) http.Handler
	// ObserveRequest, if set, is called after every request with the matched
	// route pattern, the status and the duration.
	ObserveRequest func(route string, status int, d time.Duration)
	// OnRejected, if set, is called when events are refused, with the reason
	// (invalid, too_large, unsupported_media_type, or one of cairn.RejectReasons
	// for ingest failures) and the number of events (at least 1).
	OnRejected func(reason string, events int)
	// AccessLog writes one info-level line per request (method, route
	// pattern, status, response bytes, duration, request id) to Logger.
	AccessLog bool
	// Metrics, if set, is served at GET /metrics.
	Metrics http.Handler
	// BodyMemory bounds the bytes all in-flight request bodies may hold
	// while they are read, decompressed and decoded
	// (DefaultBodyMemory if zero); see bodyBudget.
	BodyMemory int64
	// BodyMemoryWait is how long a request waits for its first share of
	// BodyMemory before it is refused with 503 (DefaultBodyMemoryWait if
	// zero).
	BodyMemoryWait time.Duration
	// Now returns the current time (time.Now if nil).
	Now func() time.Time

	once     sync.Once
	handler  http.Handler
	mux      *http.ServeMux
	routes   []string
	started  time.Time
	budget   *bodyBudget
	refusals refusalLog

	srv *http.Server
	ln  net.Listener
}

// Accounts is a sub-API that speaks an account protocol on its own routes
// (package betterauth implements it).
type Accounts interface {
	// Routes returns the sub-API's routes: net/http pattern → handler.
	Routes() map[string]http.Handler
	// SessionToken returns the session token r presents (a cookie or a
	// bearer header), or "" when it presents none or an invalid one.
	SessionToken(r *http.Request) string
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		s.Logger = s.Logger.With("component", "http")
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Rules.Types == nil {
			s.Rules = cairn.NewEventRules(nil, 24*time.Hour)
		}
		s.started = s.Now()
		s.budget = newBodyBudget(s.BodyMemory, s.BodyMemoryWait)
		s.mux = http.NewServeMux()
		s.registerRoutes()
		var h http.Handler = http.HandlerFunc(s.serveMux)
		for i := len(s.Middleware) - 1; i >= 0; i-- {
			h = s.Middleware[i](h)
		}
		s.handler = s.withRequestContext(h)
	})
}

// Handler returns the server's complete HTTP handler.
func (s *Server) Handler() http.Handler {
	s.init()
	return s.handler
}

// Routes returns every registered route pattern, in registration order.
func (s *Server) Routes() []string {
	s.init()
	return append([]string(nil), s.routes...)
}

// handle registers a route.
func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// Open binds addr synchronously (so a busy port fails here) and serves in
// the background.
func (s *Server) Open(addr string) error {
	h := s.Handler()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the address the server listens on (after Open).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		if cerr := s.srv.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
