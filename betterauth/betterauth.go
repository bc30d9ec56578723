// Package betterauth speaks the HTTP protocol of Better Auth 1.7 for email
// and password accounts, so that the official better-auth JavaScript client
// works against Cairn unchanged: the routes under /api/auth (sign-up,
// sign-in, sign-out, get-session, and an empty 404 for every other path),
// their request and response shapes, Better Auth's error codes, the
// session cookies (names, attributes, HMAC signatures), bearer tokens with
// set-auth-token, the CSRF origin checks, and the production rate limits on
// the credential endpoints. The accounts and sessions themselves are
// package auth's; this package only translates.
//
// Handler exposes its routes as pattern → handler pairs, which package
// http registers on Cairn's one mux (so request ids, logging and metrics
// wrap them too), and SessionToken, which reads the session token a request
// presents, for Cairn's own protected routes.
//
// Security behaviour follows Better Auth's defaults: CSRF origin checks
// against the base URL and the trusted origins, rate limits on the
// credential endpoints in production, constant-time comparisons. Cookies
// and tokens are never logged. In addition, Cairn answers CORS with
// credentials for trusted origins (see Handler.CORS), because Better Auth
// itself sends no CORS headers.
package betterauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
)

// Config configures the protocol handler.
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
	// TrustLoopback also trusts http://localhost:P, http://127.0.0.1:P and
	// http://[::1]:P, where P is the local port the request arrived on, so
	// that a browser on the same machine can sign in to a development
	// server under either name with no settings. Meant for development
	// without a BaseURL only; production stays strict.
	TrustLoopback bool
	// TrustedProxies are the reverse proxies (CAIRN_TRUSTED_PROXIES) whose
	// X-Forwarded-For header names the client for the rate limit and the
	// session record; from any other peer the header is ignored. Empty
	// trusts none.
	TrustedProxies []netip.Prefix
	// Now is the clock of the rate limiter; nil uses time.Now.
	Now func() time.Time
	// Logger receives the handler's logs, already narrowed by the caller
	// (component=auth); nil discards them.
	Logger *slog.Logger
}

// Handler serves the Better Auth routes over an account service.
type Handler struct {
	accounts *auth.Service
	signer   *Signer
	cookies  cookies
	origins  origins
	limiter  *rateLimiter // nil when rate limiting is off
	trusted  []netip.Prefix
	logger   *slog.Logger
}

// New returns the Better Auth protocol handler over accounts.
func New(accounts *auth.Service, cfg Config) (*Handler, error) {
	if cfg.Secret == "" {
		return nil, errors.New("betterauth: empty secret")
	}
	if cfg.BaseURL != "" && originOf(cfg.BaseURL) == "" {
		return nil, fmt.Errorf("betterauth: base URL %q is not an absolute http(s) URL", cfg.BaseURL)
	}
	h := &Handler{
		accounts: accounts,
		signer:   NewSigner(cfg.Secret),
		origins:  newOrigins(cfg.BaseURL, cfg.TrustedOrigins, cfg.TrustLoopback),
		logger:   cfg.Logger,
		trusted:  cfg.TrustedProxies,
	}
	secure := strings.HasPrefix(strings.ToLower(cfg.BaseURL), "https://") || (cfg.BaseURL == "" && cfg.Production)
	h.cookies = cookies{signer: h.signer, secure: secure}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Production {
		now := cfg.Now
		if now == nil {
			now = time.Now
		}
		h.limiter = newRateLimiter(now)
	}
	return h, nil
}

// Routes returns the Better Auth routes as net/http patterns and their
// handlers. "/api/auth/" answers every other method and path under
// /api/auth with an empty 404, as Better Auth does.
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /api/auth/sign-up/email": h.limited(h.signUp),
		"POST /api/auth/sign-in/email": h.limited(h.signIn),
		"POST /api/auth/sign-out":      h.limited(h.signOut),
		"GET /api/auth/get-session":    h.limited(h.getSession),
		"POST /api/auth/get-session":   h.limited(h.postGetSession),
		"/api/auth/":                   h.limited(notFound),
	}
}

// limited wraps a Better Auth endpoint with the rate limiter.
func (h *Handler) limited(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.limiter != nil && !h.limiter.limit(w, strings.TrimPrefix(r.URL.Path, "/api/auth"), clientIP(r, h.trusted)) {
			return
		}
		next(w, r)
	})
}

func notFound(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }

// SessionToken returns the session token a request presents, or "" when it
// presents none or an invalid one: "Authorization: Bearer" (signed, or raw
// as Better Auth's bearer plugin allows) takes precedence over the signed
// session cookie.
func (h *Handler) SessionToken(r *http.Request) string {
	if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		v = strings.TrimSpace(v[7:])
		if strings.Contains(v, ".") {
			tok, _ := h.signer.Verify(v)
			return tok
		}
		return v
	}
	v, ok := h.cookies.read(r, cookieSessionToken)
	if !ok {
		return ""
	}
	tok, _ := h.signer.Verify(v)
	return tok
}

// accountError maps an account-service failure to a Better Auth error,
// logging what is not the client's fault.
func (h *Handler) accountError(r *http.Request, err error) *apiError {
	for _, m := range []struct {
		sentinel error
		e        *apiError
	}{
		{auth.ErrSignupClosed, errSignUpDisabled},
		{auth.ErrPasswordTooShort, errPasswordTooShort},
		{auth.ErrPasswordTooLong, errPasswordTooLong},
		{auth.ErrInvalidEmail, errInvalidEmail},
		{auth.ErrEmailTaken, errUserExists},
		{auth.ErrInvalidCredentials, errInvalidCredentials},
		{auth.ErrCreateUser, errFailedCreateUser},
		{auth.ErrCreateSession, errFailedCreateSession},
	} {
		if errors.Is(err, m.sentinel) {
			return m.e
		}
	}
	h.logger.ErrorContext(r.Context(), "auth store failed", "path", r.URL.Path, "err", err)
	if cairn.ErrorCode(err) == cairn.EUNAVAILABLE {
		return errUnavailable
	}
	return errInternal
}

// client describes the request's client for the session record.
func (h *Handler) client(r *http.Request, dontRemember bool) auth.Client {
	return auth.Client{IPAddress: clientIP(r, h.trusted), UserAgent: r.UserAgent(), DontRemember: dontRemember}
}

// setSessionCookie sets the session cookie and, for bearer clients, the
// set-auth-token header.
func (h *Handler) setSessionCookie(w http.ResponseWriter, token string, dontRemember bool) {
	h.cookies.setSession(w.Header(), token, auth.SessionExpiresIn, dontRemember)
	w.Header().Set("Set-Auth-Token", h.signer.Sign(token))
	w.Header().Set("Access-Control-Expose-Headers", "set-auth-token")
}
