// Package http is Cairn's HTTP API: event ingest, the Segment-compatible
// tracking API (/v1/*, decoded by package segment, authenticated by source
// write keys, rate-limited per source), the sources admin API, journeys
// (with derived sessions), health, stats, the current session, the admin's
// user listing, the admin's online export (NDJSON) and backup (a
// cairn.Backuper's tar), and the mounting points for the account protocol (package
// betterauth), metrics and API docs. Routing
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
	// enables GET /session (with Accounts, which shapes its body). When nil, reads are not protected (for tests of
	// this package only).
	Auth cairn.Authenticator
	// Users serves GET /users (admins only); nil leaves the route out.
	Users cairn.UserLister
	// Sources keeps the sources (write keys). It enables the sources admin
	// API (/api/sources), the tracking API (/v1/*) and write keys on POST
	// /events; nil leaves them out.
	Sources cairn.SourceStore
	// Accounts is the account sub-API (package betterauth): its routes are
	// mounted on the mux, and it reads the session token a request
	// presents. Nil mounts nothing and treats every request as presenting
	// no token.
	Accounts Accounts
	// Rules validate incoming events.
	Rules cairn.EventRules
	// Logger receives request logs.
	Logger *slog.Logger
	// Middleware wraps the router, outermost first (e.g. CORS), for every
	// route except the tracking API under /v1/, which answers CORS itself
	// (any origin, no credentials) so that no account CORS policy applies
	// to it.
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
	// OnSourceEvents, if set, is called with the number of events a source
	// sent and their outcome (SourceAccepted, SourceRejected,
	// SourceRateLimited, SourceUnavailable).
	OnSourceEvents func(sourceID, outcome string, events int)
	// RequireWriteKey makes POST /events refuse requests without a write
	// key (401); by default they are accepted anonymously.
	RequireWriteKey bool
	// SessionGap is the inactivity after which a user's events without a
	// sessionId start a new derived session in journeys
	// (cairn.DefaultSessionGap if 0).
	SessionGap time.Duration
	// Backup takes the online backups of POST /api/backup (admins only);
	// nil (MongoDB) answers 501, pointing at mongodump.
	Backup cairn.Backuper
	// Eraser erases tracked users for DELETE /api/users/{userId}/events
	// (admins only); nil answers 501.
	Eraser cairn.Eraser
	// Metrics, if set, is served at GET /metrics.
	Metrics http.Handler
	// OnAccepted, if set, is called with a request's events right after
	// they were accepted durably (Ingest returned nil), before the 202 is
	// written. It must not block (e.g. live.Hub.Publish) and must not
	// modify the events.
	OnAccepted func(events []cairn.Event)
	// Live, if set, serves GET /api/live: accepted events as server-sent
	// events, to signed-in users.
	Live cairn.LiveFeed
	// TrackedUsers, if set, serves GET /api/tracked-users: the users seen
	// in events, to signed-in users.
	TrackedUsers cairn.TrackedUserStore
	// Insights, if set, serves the insights API under /api/insights/ to
	// signed-in users (insights.go).
	Insights cairn.Insights
	// Console, if set, is the web console: its routes (HTML pages and
	// their assets) are mounted on the mux and run with the principal of
	// the request's session in the context when there is one (none
	// otherwise: the console shows its sign-in form).
	Console Console
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
	limiter  sourceLimiter
	budget   *bodyBudget
	refusals refusalLog
	// shutdown is closed at Shutdown, ending live streams.
	shutdown     chan struct{}
	shutdownOnce sync.Once

	srv *http.Server
	ln  net.Listener
}

// Console is the web console (package console implements it).
type Console interface {
	// Routes returns the console's routes: net/http pattern → handler.
	Routes() map[string]http.Handler
}

// Accounts is a sub-API that speaks an account protocol on its own routes
// (package betterauth implements it).
type Accounts interface {
	// Routes returns the sub-API's routes: net/http pattern → handler.
	Routes() map[string]http.Handler
	// SessionToken returns the session token r presents (a cookie or a
	// bearer header), or "" when it presents none or an invalid one.
	SessionToken(r *http.Request) string
	// SessionBody returns the body GET /session answers for a session and
	// its user, in the sub-API's shape.
	SessionBody(sess *cairn.Session, user *cairn.User) any
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
		s.shutdown = make(chan struct{})
		s.budget = newBodyBudget(s.BodyMemory, s.BodyMemoryWait)
		s.mux = http.NewServeMux()
		s.registerRoutes()
		var h http.Handler = http.HandlerFunc(s.serveMux)
		for i := len(s.Middleware) - 1; i >= 0; i-- {
			h = s.Middleware[i](h)
		}
		wrapped := h
		s.handler = s.withRequestContext(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isTrackingPath(r.URL.Path) {
				s.serveMux(w, r)
				return
			}
			wrapped.ServeHTTP(w, r)
		}))
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
	s.srv.RegisterOnShutdown(func() { s.shutdownOnce.Do(func() { close(s.shutdown) }) })
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

// Shutdown stops accepting connections, ends live streams, and waits for
// in-flight requests until ctx ends.
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
