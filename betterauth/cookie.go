package betterauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Cookie names, as Better Auth names them. Under secure cookies each gets
// the "__Secure-" prefix and the Secure attribute, and the unprefixed names
// are ignored.
const (
	cookieSessionToken = "better-auth.session_token"
	cookieSessionData  = "better-auth.session_data"
	cookieDontRemember = "better-auth.dont_remember"
	securePrefix       = "__Secure-"
)

// signatureLen is the length of a standard, padded base64 HMAC-SHA256.
const signatureLen = 44

// Signer signs and verifies cookie values as Better Auth does:
// value + "." + base64std(HMAC-SHA256(secret, value)).
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer keyed by secret (its UTF-8 bytes).
func NewSigner(secret string) *Signer { return &Signer{secret: []byte(secret)} }

// Sign returns value.signature (not URL-encoded).
func (s *Signer) Sign(value string) string {
	return value + "." + s.signature(value)
}

func (s *Signer) signature(value string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(value))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a signed value (already URL-decoded) and returns the value
// without its signature. The signature must be 44 characters of standard
// padded base64; anything else is rejected.
func (s *Signer) Verify(signed string) (string, bool) {
	i := strings.LastIndexByte(signed, '.')
	if i <= 0 {
		return "", false
	}
	value, sig := signed[:i], signed[i+1:]
	if len(sig) != signatureLen || !strings.HasSuffix(sig, "=") {
		return "", false
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return "", false
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(value))
	if !hmac.Equal(got, m.Sum(nil)) {
		return "", false
	}
	return value, true
}

// cookies knows the names and attributes of the session cookies.
type cookies struct {
	signer *Signer
	secure bool
}

func (c cookies) name(base string) string {
	if c.secure {
		return securePrefix + base
	}
	return base
}

// encodeURIComponent escapes s as JavaScript's encodeURIComponent does.
func encodeURIComponent(s string) string {
	var b strings.Builder
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// header formats a Set-Cookie value with Better Auth's attribute order.
func (c cookies) header(base, value string, maxAge int, withMaxAge bool) string {
	var b strings.Builder
	b.WriteString(c.name(base))
	b.WriteByte('=')
	b.WriteString(value)
	if withMaxAge {
		b.WriteString("; Max-Age=")
		b.WriteString(strconv.Itoa(maxAge))
	}
	b.WriteString("; Path=/; HttpOnly")
	if c.secure {
		b.WriteString("; Secure")
	}
	b.WriteString("; SameSite=Lax")
	return b.String()
}

// setSession sets the signed session cookie: with Max-Age of maxAge, or a
// browser-session cookie plus the signed dont_remember cookie when
// dontRemember is set.
func (c cookies) setSession(h http.Header, token string, maxAge time.Duration, dontRemember bool) {
	signed := encodeURIComponent(c.signer.Sign(token))
	if dontRemember {
		h.Add("Set-Cookie", c.header(cookieSessionToken, signed, 0, false))
		h.Add("Set-Cookie", c.header(cookieDontRemember, encodeURIComponent(c.signer.Sign("true")), 0, false))
		return
	}
	h.Add("Set-Cookie", c.header(cookieSessionToken, signed, int(maxAge/time.Second), true))
}

// clear expires the session_token, session_data and dont_remember cookies.
func (c cookies) clear(h http.Header) {
	for _, base := range []string{cookieSessionToken, cookieSessionData, cookieDontRemember} {
		h.Add("Set-Cookie", c.header(base, "", 0, true))
	}
}

// read returns the URL-decoded value of the named cookie, if present.
func (c cookies) read(r *http.Request, base string) (string, bool) {
	ck, err := r.Cookie(c.name(base))
	if err != nil {
		return "", false
	}
	v, err := url.PathUnescape(ck.Value)
	if err != nil {
		return "", false
	}
	return v, true
}

// dontRemember reports whether the request carries a validly signed
// dont_remember cookie.
func (c cookies) dontRemember(r *http.Request) bool {
	v, ok := c.read(r, cookieDontRemember)
	if !ok {
		return false
	}
	v, ok = c.signer.Verify(v)
	return ok && v == "true"
}
