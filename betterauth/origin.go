package betterauth

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// origins is the set of trusted origins: the base URL's origin plus the
// configured trusted origins, compared as lowercase scheme://host[:port];
// and, when loopback is set, the loopback origins of the port a request
// arrived on (see Config.TrustLoopback).
type origins struct {
	set      map[string]bool
	loopback bool
}

func newOrigins(baseURL string, trusted []string, loopback bool) origins {
	o := origins{set: map[string]bool{}, loopback: loopback}
	for _, s := range append([]string{baseURL}, trusted...) {
		if origin := originOf(strings.TrimSpace(s)); origin != "" {
			o.set[origin] = true
		}
	}
	return o
}

// originOf returns the origin of an absolute http(s) URL, or "".
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// Trusted reports whether origin (an Origin header value) is trusted for
// request r.
func (o origins) Trusted(r *http.Request, origin string) bool {
	if origin == "" {
		return false
	}
	origin = originOf(origin)
	return o.set[origin] || (o.loopback && isLocalLoopbackOrigin(r, origin))
}

// isLocalLoopbackOrigin reports whether origin is http://localhost:P,
// http://127.0.0.1:P or http://[::1]:P where P is the port of the local
// address r arrived on: a page Cairn itself served to a browser on the same
// machine, whichever loopback name the browser used.
func isLocalLoopbackOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" {
		return false
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
	default:
		return false
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	_, port, err := net.SplitHostPort(local.String())
	return err == nil && port != "" && u.Port() == port
}

// requestOrigin returns the request's Origin header, or the origin of its
// Referer when Origin is absent. "null" counts as absent.
func requestOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if ref := r.Header.Get("Referer"); ref != "" {
			origin = originOf(ref)
		}
	}
	if origin == "null" {
		return ""
	}
	return origin
}

// checkOrigin applies Better Auth's CSRF rules to a state-changing request.
// A request carrying cookies needs a trusted Origin (or Referer). A sign-in
// or sign-up without cookies is refused as a cross-site navigation, must
// have a trusted origin when it carries any fetch metadata or origin, and is
// allowed when it carries none (curl, native apps).
func (o origins) checkOrigin(r *http.Request, login bool) *apiError {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if r.Header.Get("Cookie") == "" {
		if !login {
			return nil
		}
		site, mode := r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Sec-Fetch-Mode")
		if site == "cross-site" && mode == "navigate" {
			return errCrossSiteNavigation
		}
		if site == "" && mode == "" && r.Header.Get("Sec-Fetch-Dest") == "" &&
			r.Header.Get("Origin") == "" && r.Header.Get("Referer") == "" {
			return nil
		}
	}
	origin := requestOrigin(r)
	if origin == "" {
		return errMissingOrigin
	}
	if !o.Trusted(r, origin) {
		return errInvalidOrigin
	}
	return nil
}

// trustedCallback reports whether a callbackURL may be redirected to: a
// relative path on this site, or an absolute URL on a trusted origin.
func (o origins) trustedCallback(cb string) bool {
	if strings.HasPrefix(cb, "/") {
		return !strings.HasPrefix(cb, "//") && !strings.HasPrefix(cb, "/\\")
	}
	return o.set[originOf(cb)]
}
