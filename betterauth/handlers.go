package betterauth

import (
	"errors"
	"net/http"

	"github.com/cairn-dev/cairn/auth"
)

// signUp serves POST /api/auth/sign-up/email.
func (h *Handler) signUp(w http.ResponseWriter, r *http.Request) {
	if e := h.origins.checkOrigin(r, true); e != nil {
		writeAPIError(w, e)
		return
	}
	b, e := readBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	var in auth.SignUp
	var callbackURL string
	var rememberMe, rememberSet bool
	in.Name, e = b.str("name", true, false)
	if e == nil {
		in.Email, e = b.str("email", true, false)
	}
	if e == nil && !auth.ValidEmail(in.Email) {
		e = validationError("email", "Invalid email address")
	}
	if e == nil {
		in.Password, e = b.str("password", true, true)
	}
	if e == nil {
		in.Image, e = b.str("image", false, false)
	}
	if e == nil {
		callbackURL, e = b.str("callbackURL", false, false)
	}
	if e == nil {
		rememberMe, rememberSet, e = b.boolean("rememberMe")
	}
	if e == nil && callbackURL != "" && !h.origins.trustedCallback(callbackURL) {
		e = errInvalidCallbackURL
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	dontRemember := rememberSet && !rememberMe
	sess, user, err := h.accounts.SignUp(r.Context(), in, h.client(r, dontRemember))
	if err != nil {
		writeAPIError(w, h.accountError(r, err))
		return
	}
	h.setSessionCookie(w, sess.Token, dontRemember)
	writeJSON(w, http.StatusOK, struct {
		Token *string  `json:"token"`
		User  userJSON `json:"user"`
	}{&sess.Token, toUserJSON(user)})
}

// signIn serves POST /api/auth/sign-in/email.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if e := h.origins.checkOrigin(r, true); e != nil {
		writeAPIError(w, e)
		return
	}
	b, e := readBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	email, e := b.str("email", true, false)
	var password, callbackURL string
	var rememberMe, rememberSet bool
	if e == nil {
		password, e = b.str("password", true, false)
	}
	if e == nil {
		callbackURL, e = b.str("callbackURL", false, false)
	}
	if e == nil {
		rememberMe, rememberSet, e = b.boolean("rememberMe")
	}
	if e == nil && callbackURL != "" && !h.origins.trustedCallback(callbackURL) {
		e = errInvalidCallbackURL
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	dontRemember := rememberSet && !rememberMe
	sess, user, err := h.accounts.SignIn(r.Context(), email, password, h.client(r, dontRemember))
	if err != nil {
		writeAPIError(w, h.accountError(r, err))
		return
	}
	h.setSessionCookie(w, sess.Token, dontRemember)
	resp := struct {
		Redirect bool     `json:"redirect"`
		Token    string   `json:"token"`
		URL      string   `json:"url,omitempty"`
		User     userJSON `json:"user"`
	}{Token: sess.Token, User: toUserJSON(user)}
	if callbackURL != "" {
		resp.Redirect, resp.URL = true, callbackURL
		w.Header().Set("Location", callbackURL)
	}
	writeJSON(w, http.StatusOK, resp)
}

// signOut serves POST /api/auth/sign-out: it deletes the session, if any,
// and always answers {"success":true} with the cookies cleared.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if e := h.origins.checkOrigin(r, false); e != nil {
		writeAPIError(w, e)
		return
	}
	if err := h.accounts.SignOut(r.Context(), h.SessionToken(r)); err != nil {
		writeAPIError(w, h.accountError(r, err))
		return
	}
	h.cookies.clear(w.Header())
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

// getSession serves GET /api/auth/get-session: the session and user, or
// null. It extends a session whose last refresh is older than a day,
// unless the client asked not to be remembered.
func (h *Handler) getSession(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	token := h.SessionToken(r)
	if token == "" {
		writeJSON(w, http.StatusOK, nil)
		return
	}
	sess, user, err := h.accounts.Lookup(r.Context(), token)
	if errors.Is(err, auth.ErrNoSession) {
		h.cookies.clear(w.Header())
		writeJSON(w, http.StatusOK, nil)
		return
	} else if err != nil {
		writeAPIError(w, h.accountError(r, err))
		return
	}
	if !h.cookies.dontRemember(r) {
		refreshed, err := h.accounts.Refresh(r.Context(), sess)
		if err != nil {
			writeAPIError(w, h.accountError(r, err))
			return
		}
		if refreshed {
			h.setSessionCookie(w, sess.Token, false)
		}
	}
	writeJSON(w, http.StatusOK, sessionResponse{toSessionJSON(sess), toUserJSON(user)})
}

// postGetSession answers POST /api/auth/get-session as Better Auth does
// without deferSessionRefresh.
func (h *Handler) postGetSession(w http.ResponseWriter, _ *http.Request) {
	noStore(w)
	writeAPIError(w, errPostGetSession)
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}
