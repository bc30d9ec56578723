// Package auth implements Cairn's accounts and sessions: the HTTP contract of
// Better Auth 1.7 for email and password (sign-up, sign-in, sign-out,
// get-session under /api/auth), so that the official better-auth JavaScript
// client works against Cairn unchanged, plus Cairn's GET /session and the
// admin-only GET /users.
//
// Compatibility with Better Auth covers the wire (bodies, status codes, error
// codes, cookie names, attributes and HMAC signatures, bearer tokens with
// set-auth-token) and the stored data (scrypt password hashes in Better
// Auth's "saltHex:keyHex" format, users, accounts and sessions shaped as
// Better Auth stores them), so users migrated from a Better Auth database
// keep signing in.
//
// Security behaviour follows Better Auth's defaults: CSRF origin checks
// against the base URL and the trusted origins, rate limits on the
// credential endpoints in production, a dummy hash for unknown emails and
// constant-time comparisons. Passwords, tokens and cookies are never logged.
// In addition, Cairn answers CORS with credentials for trusted origins (see
// Service.CORS), because Better Auth itself sends no CORS headers.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn"
)

// Session lifetimes, as Better Auth's defaults.
const (
	// SessionExpiresIn is how long a session lives without activity.
	SessionExpiresIn = 7 * 24 * time.Hour
	// SessionUpdateAge is how old a session's last refresh must be before
	// get-session extends it.
	SessionUpdateAge = 24 * time.Hour
	// ShortSessionExpiresIn is the life of a rememberMe: false session.
	ShortSessionExpiresIn = 24 * time.Hour
)

// Config configures the authentication service.
type Config struct {
	// Secret keys the cookie signatures (BETTER_AUTH_SECRET). Required.
	Secret string
	// BaseURL is the public URL of Cairn (BETTER_AUTH_URL). Its origin is
	// trusted, and an https:// base URL turns on secure cookies.
	BaseURL string
	// TrustedOrigins are further origins allowed to send credentialed
	// requests (BETTER_AUTH_TRUSTED_ORIGINS), e.g. the frontend's.
	TrustedOrigins []string
	// Production turns on rate limiting, and secure cookies when BaseURL
	// is empty.
	Production bool
	// SignupOpen allows POST /api/auth/sign-up/email.
	SignupOpen bool
	// WriteError writes Cairn's own JSON error for GET /session and GET
	// /users (the http package's error writer). Nil uses a built-in one.
	WriteError func(w http.ResponseWriter, r *http.Request, err error)
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// Logger receives the service's logs, already narrowed by the caller
	// (component=auth); nil discards them.
	Logger *slog.Logger
}

// SignupOpen decides the sign-up policy from the environment: setting is
// CAIRN_SIGNUP ("open", "closed" or "" for the default, which is open except
// in production).
func SignupOpen(production bool, setting string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(setting)) {
	case "":
		return !production, nil
	case "open":
		return true, nil
	case "closed":
		return false, nil
	default:
		return false, fmt.Errorf("CAIRN_SIGNUP must be \"open\" or \"closed\", not %q", setting)
	}
}

// Service is Cairn's Authenticator.
type Service struct {
	store      cairn.AuthStore
	hasher     *Hasher
	signer     *Signer
	cookies    cookies
	origins    origins
	signupOpen bool
	limiter    *rateLimiter // nil when rate limiting is off
	writeError func(w http.ResponseWriter, r *http.Request, err error)
	now        func() time.Time
	logger     *slog.Logger
	mux        *http.ServeMux

	// signupMu makes "no user exists yet, so this one is admin" atomic
	// within the process.
	signupMu sync.Mutex
}

var _ cairn.Authenticator = (*Service)(nil)

// New returns the authentication service over store.
func New(store cairn.AuthStore, cfg Config) (*Service, error) {
	if cfg.Secret == "" {
		return nil, errors.New("auth: empty secret")
	}
	if cfg.BaseURL != "" && originOf(cfg.BaseURL) == "" {
		return nil, fmt.Errorf("auth: base URL %q is not an absolute http(s) URL", cfg.BaseURL)
	}
	s := &Service{
		store:      store,
		hasher:     NewHasher(4),
		signer:     NewSigner(cfg.Secret),
		origins:    newOrigins(cfg.BaseURL, cfg.TrustedOrigins),
		signupOpen: cfg.SignupOpen,
		writeError: cfg.WriteError,
		now:        cfg.Now,
		logger:     cfg.Logger,
	}
	secure := strings.HasPrefix(strings.ToLower(cfg.BaseURL), "https://") || (cfg.BaseURL == "" && cfg.Production)
	s.cookies = cookies{signer: s.signer, secure: secure}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.writeError == nil {
		s.writeError = writeCairnError
	}
	if cfg.Production {
		s.limiter = newRateLimiter(s.now)
	}
	s.mux = http.NewServeMux()
	for pattern, h := range s.routes() {
		s.mux.HandleFunc(pattern, h)
	}
	return s, nil
}

func (s *Service) routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"POST /api/auth/sign-up/email": s.authRoute(s.signUp),
		"POST /api/auth/sign-in/email": s.authRoute(s.signIn),
		"POST /api/auth/sign-out":      s.authRoute(s.signOut),
		"GET /api/auth/get-session":    s.authRoute(s.getSession),
		"POST /api/auth/get-session":   s.authRoute(s.postGetSession),
		"/api/auth/":                   s.authRoute(notFound),
		"GET /session":                 s.handleSession,
		"GET /users":                   s.handleUsers,
	}
}

// Routes lists the routes Handler serves. "/api/auth/" answers every other
// path under /api/auth with an empty 404, as Better Auth does.
func (s *Service) Routes() []string {
	return slices.Sorted(maps.Keys(s.routes()))
}

// Handler serves every route listed by Routes.
func (s *Service) Handler() http.Handler { return s.mux }

// authRoute wraps a Better Auth endpoint with the rate limiter.
func (s *Service) authRoute(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.limiter != nil && !s.limiter.limit(w, r, strings.TrimPrefix(r.URL.Path, "/api/auth")) {
			return
		}
		h(w, r)
	}
}

func notFound(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }

// storeError maps a store failure to a Better Auth-shaped error and logs it.
func (s *Service) storeError(r *http.Request, op string, err error) *apiError {
	s.logger.ErrorContext(r.Context(), "auth store failed", "op", op, "err", err)
	if cairn.ErrorCode(err) == cairn.EUNAVAILABLE {
		return errUnavailable
	}
	return errInternal
}

// credentials is what a request presents to identify its session.
type credentials struct {
	token   string // the session token, when validly presented
	present bool   // a cookie or bearer token was sent at all
	bearer  bool
}

// requestCredentials reads the session token from "Authorization: Bearer"
// (signed, or raw as the bearer plugin allows) or the signed session cookie.
func (s *Service) requestCredentials(r *http.Request) credentials {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		v := strings.TrimSpace(h[7:])
		if strings.Contains(v, ".") {
			tok, ok := s.signer.Verify(v)
			if !ok {
				return credentials{present: true, bearer: true}
			}
			return credentials{token: tok, present: true, bearer: true}
		}
		return credentials{token: v, present: v != "", bearer: true}
	}
	v, ok := s.cookies.read(r, cookieSessionToken)
	if !ok {
		return credentials{}
	}
	tok, ok := s.signer.Verify(v)
	if !ok {
		return credentials{present: true}
	}
	return credentials{token: tok, present: true}
}

// errNoSession is returned by lookup when the credentials name no live
// session; clear says whether the client's cookies should be cleared.
type errNoSession struct{ clear bool }

func (e errNoSession) Error() string { return "no session" }

// lookup returns the live session and user for a token. An expired session
// is deleted.
func (s *Service) lookup(ctx context.Context, token string) (*cairn.Session, *cairn.User, error) {
	sess, err := s.store.SessionByToken(ctx, token)
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return nil, nil, errNoSession{clear: true}
	} else if err != nil {
		return nil, nil, fmt.Errorf("find session: %w", err)
	}
	if sess.Expired(s.now()) {
		if err := s.store.DeleteSession(ctx, token); err != nil {
			s.logger.WarnContext(ctx, "delete expired session failed", "err", err)
		}
		return nil, nil, errNoSession{clear: true}
	}
	user, err := s.store.UserByID(ctx, sess.UserID)
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return nil, nil, errNoSession{clear: true}
	} else if err != nil {
		return nil, nil, fmt.Errorf("find user: %w", err)
	}
	return sess, user, nil
}

// Authenticate returns the principal of the request's session cookie or
// bearer token: EUNAUTHORIZED when there is no valid session, EUNAVAILABLE
// when the store cannot be reached.
func (s *Service) Authenticate(r *http.Request) (*cairn.Principal, error) {
	_, user, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	return &cairn.Principal{UserID: user.ID, Email: user.Email, Name: user.Name, Role: roleOf(user)}, nil
}

func (s *Service) authenticate(r *http.Request) (*cairn.Session, *cairn.User, error) {
	c := s.requestCredentials(r)
	if c.token == "" {
		return nil, nil, cairn.Errorf(cairn.EUNAUTHORIZED, "Sign in to use this endpoint.")
	}
	sess, user, err := s.lookup(r.Context(), c.token)
	var none errNoSession
	if errors.As(err, &none) {
		return nil, nil, cairn.Errorf(cairn.EUNAUTHORIZED, "Your session has expired or is invalid; sign in again.")
	} else if err != nil {
		if cairn.ErrorCode(err) == cairn.EUNAVAILABLE {
			return nil, nil, &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "The session store is unavailable.", Err: err}
		}
		return nil, nil, &cairn.Error{Code: cairn.EINTERNAL, Message: "Internal error.", Err: err}
	}
	return sess, user, nil
}

// newSession creates and stores a session for user.
func (s *Service) newSession(r *http.Request, user *cairn.User, dontRemember bool) (*cairn.Session, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	life := SessionExpiresIn
	if dontRemember {
		life = ShortSessionExpiresIn
	}
	sess := &cairn.Session{Token: cairn.NewToken(), UserID: user.ID, ExpiresAt: now.Add(life),
		CreatedAt: now, UpdatedAt: now, IPAddress: clientIP(r), UserAgent: r.UserAgent()}
	if err := s.store.CreateSession(r.Context(), sess); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return sess, nil
}

// setSessionCookie sets the session cookie and, for bearer clients, the
// set-auth-token header.
func (s *Service) setSessionCookie(w http.ResponseWriter, token string, dontRemember bool) {
	s.cookies.setSession(w.Header(), token, SessionExpiresIn, dontRemember)
	w.Header().Set("Set-Auth-Token", s.signer.Sign(token))
	w.Header().Set("Access-Control-Expose-Headers", "set-auth-token")
}

// writeCairnError is the default error writer for Cairn's own routes, in
// the shape of the http package's errors: {"error": message, "code": code}.
func writeCairnError(w http.ResponseWriter, r *http.Request, err error) {
	status := map[string]int{
		cairn.EUNAUTHORIZED: http.StatusUnauthorized, cairn.EFORBIDDEN: http.StatusForbidden,
		cairn.EINVALID: http.StatusBadRequest, cairn.EUNAVAILABLE: http.StatusServiceUnavailable,
	}[cairn.ErrorCode(err)]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{cairn.ErrorMessage(err), cairn.ErrorCode(err)})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Middleware returns the middleware Cairn's HTTP server wraps around every
// route: CORS.
func (s *Service) Middleware() []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{s.CORS}
}
