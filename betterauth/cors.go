package betterauth

import (
	"net/http"
	"strings"
)

// CORS returns middleware that answers cross-origin requests. Trusted
// origins (the base URL's, the trusted origins, and with TrustLoopback the
// loopback origins of the listening port) get CORS with
// credentials on every route, and the set-auth-token header exposed. Any
// origin may call the public POST /events without credentials, and its
// preflight is answered. Other origins get no CORS headers, so browsers
// refuse to read the responses.
func (h *Handler) CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		hdr := w.Header()
		hdr.Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		switch {
		case h.origins.Trusted(r, origin):
			hdr.Set("Access-Control-Allow-Origin", origin)
			hdr.Set("Access-Control-Allow-Credentials", "true")
			hdr.Set("Access-Control-Expose-Headers", "set-auth-token")
			if preflight {
				answerPreflight(w, r, "GET, POST, PUT, PATCH, DELETE, OPTIONS")
				return
			}
		case r.URL.Path == "/events":
			hdr.Set("Access-Control-Allow-Origin", "*")
			if preflight {
				answerPreflight(w, r, "POST, OPTIONS")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// answerPreflight allows the requested headers and the given methods.
func answerPreflight(w http.ResponseWriter, r *http.Request, methods string) {
	h := w.Header()
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", methods)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", sanitizeHeaderList(req))
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// sanitizeHeaderList keeps only header-name characters from a
// comma-separated list, so nothing odd is reflected.
func sanitizeHeaderList(s string) string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		ok := f != ""
		for i := 0; i < len(f) && ok; i++ {
			c := f[i]
			ok = isAlnum(c) || c == '-' || c == '_'
		}
		if ok {
			out = append(out, f)
		}
	}
	return strings.Join(out, ", ")
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
