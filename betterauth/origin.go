package betterauth

import (
	"net/http"
	"net/url"
	"strings"
)

// origins is the set of trusted origins: the base URL's origin plus the
// configured trusted origins, compared as lowercase scheme://host[:port].
type origins map[string]bool

func newOrigins(baseURL string, trusted []string) origins {
	o := origins{}
	for _, s := range append([]string{baseURL}, trusted...) {
		if origin := originOf(strings.TrimSpace(s)); origin != "" {
			o[origin] = true
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

// Trusted reports whether origin (an Origin header value) is trusted.
func (o origins) Trusted(origin string) bool {
	return origin != "" && o[originOf(origin)]
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
	if !o.Trusted(origin) {
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
	return o[originOf(cb)]
}
