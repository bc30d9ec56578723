package auth

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// signUp serves POST /api/auth/sign-up/email.
func (s *Service) signUp(w http.ResponseWriter, r *http.Request) {
	if e := s.origins.checkOrigin(r, true); e != nil {
		writeAPIError(w, e)
		return
	}
	b, e := readBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	var name, email, password, image, callbackURL string
	var rememberMe, rememberSet bool
	name, e = b.str("name", true, 0)
	if e == nil {
		email, e = b.str("email", true, 0)
	}
	if e == nil && !validEmail(email) {
		e = validationError("email", "Invalid email address")
	}
	if e == nil {
		password, e = b.str("password", true, 1)
	}
	if e == nil {
		image, e = b.str("image", false, 0)
	}
	if e == nil {
		callbackURL, e = b.str("callbackURL", false, 0)
	}
	if e == nil {
		rememberMe, rememberSet, e = b.boolean("rememberMe")
	}
	if e == nil && callbackURL != "" && !s.origins.trustedCallback(callbackURL) {
		e = errInvalidCallbackURL
	}
	if e == nil && !s.signupOpen {
		e = errSignUpDisabled
	}
	if e == nil && jsLen(password) < MinPasswordLength {
		e = errPasswordTooShort
	}
	if e == nil && jsLen(password) > MaxPasswordLength {
		e = errPasswordTooLong
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	dontRemember := rememberSet && !rememberMe
	email = strings.ToLower(email)

	ctx := r.Context()
	if _, err := s.store.UserByEmail(ctx, email); err == nil {
		writeAPIError(w, errUserExists)
		return
	} else if cairn.ErrorCode(err) != cairn.ENOTFOUND {
		writeAPIError(w, s.storeError(r, "find user", err))
		return
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		writeAPIError(w, s.storeError(r, "hash password", err))
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	user := &cairn.User{Name: name, Email: email, Image: image, Role: cairn.RoleMember, CreatedAt: now, UpdatedAt: now}
	account := &cairn.Account{ProviderID: cairn.ProviderCredential, Password: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.createFirstAdminOrMember(r, user, account); err != nil {
		if cairn.ErrorCode(err) == cairn.ECONFLICT {
			writeAPIError(w, errUserExists)
			return
		}
		s.logger.ErrorContext(ctx, "create user failed", "err", err)
		writeAPIError(w, errFailedCreateUser)
		return
	}
	s.logger.InfoContext(ctx, "user signed up", "userId", user.ID, "role", user.Role)
	sess, err := s.newSession(r, user, dontRemember)
	if err != nil {
		s.logger.ErrorContext(ctx, "create session failed", "err", err)
		writeAPIError(w, errFailedCreateSession)
		return
	}
	s.setSessionCookie(w, sess.Token, dontRemember)
	writeJSON(w, http.StatusOK, struct {
		Token *string  `json:"token"`
		User  userJSON `json:"user"`
	}{&sess.Token, toUserJSON(user)})
}

// createFirstAdminOrMember stores a signed-up user, as admin when it is the
// very first account of the install (sign-up is necessarily open here).
func (s *Service) createFirstAdminOrMember(r *http.Request, user *cairn.User, account *cairn.Account) error {
	s.signupMu.Lock()
	defer s.signupMu.Unlock()
	has, err := s.store.HasUsers(r.Context())
	if err != nil {
		return err
	}
	if !has {
		user.Role = cairn.RoleAdmin
	}
	return s.store.CreateUser(r.Context(), user, account)
}

// signIn serves POST /api/auth/sign-in/email.
func (s *Service) signIn(w http.ResponseWriter, r *http.Request) {
	if e := s.origins.checkOrigin(r, true); e != nil {
		writeAPIError(w, e)
		return
	}
	b, e := readBody(w, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	email, e := b.str("email", true, 0)
	var password, callbackURL string
	var rememberMe, rememberSet bool
	if e == nil {
		password, e = b.str("password", true, 0)
	}
	if e == nil {
		callbackURL, e = b.str("callbackURL", false, 0)
	}
	if e == nil {
		rememberMe, rememberSet, e = b.boolean("rememberMe")
	}
	if e == nil && callbackURL != "" && !s.origins.trustedCallback(callbackURL) {
		e = errInvalidCallbackURL
	}
	if e == nil && !validEmail(email) {
		e = errInvalidEmail
	}
	if e == nil && jsLen(password) > MaxPasswordLength {
		e = errPasswordTooLong
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	dontRemember := rememberSet && !rememberMe
	ctx := r.Context()

	user, err := s.store.UserByEmail(ctx, strings.ToLower(email))
	var account *cairn.Account
	if err == nil {
		account, err = s.store.CredentialAccount(ctx, user.ID)
	}
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		if err := s.hasher.VerifyDummy(ctx, password); err != nil {
			writeAPIError(w, s.storeError(r, "hash password", err))
			return
		}
		writeAPIError(w, errInvalidCredentials)
		return
	} else if err != nil {
		writeAPIError(w, s.storeError(r, "find user", err))
		return
	}
	ok, err := s.hasher.Verify(ctx, account.Password, password)
	if err != nil {
		writeAPIError(w, s.storeError(r, "verify password", err))
		return
	}
	if !ok {
		s.logger.InfoContext(ctx, "sign-in refused: wrong password", "userId", user.ID)
		writeAPIError(w, errInvalidCredentials)
		return
	}
	sess, err := s.newSession(r, user, dontRemember)
	if err != nil {
		s.logger.ErrorContext(ctx, "create session failed", "err", err)
		writeAPIError(w, errFailedCreateSession)
		return
	}
	s.setSessionCookie(w, sess.Token, dontRemember)
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
func (s *Service) signOut(w http.ResponseWriter, r *http.Request) {
	if e := s.origins.checkOrigin(r, false); e != nil {
		writeAPIError(w, e)
		return
	}
	if c := s.requestCredentials(r); c.token != "" {
		if err := s.store.DeleteSession(r.Context(), c.token); err != nil {
			writeAPIError(w, s.storeError(r, "delete session", err))
			return
		}
	}
	s.cookies.clear(w.Header())
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

// getSession serves GET /api/auth/get-session: the session and user, or
// null. It extends a session whose last refresh is older than a day.
func (s *Service) getSession(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	c := s.requestCredentials(r)
	if c.token == "" {
		writeJSON(w, http.StatusOK, nil)
		return
	}
	sess, user, err := s.lookup(r.Context(), c.token)
	var none errNoSession
	if errors.As(err, &none) {
		s.cookies.clear(w.Header())
		writeJSON(w, http.StatusOK, nil)
		return
	} else if err != nil {
		writeAPIError(w, s.storeError(r, "find session", err))
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	dontRemember := s.cookies.dontRemember(r)
	if !dontRemember && !now.Before(sess.ExpiresAt.Add(-SessionExpiresIn).Add(SessionUpdateAge)) {
		expires := now.Add(SessionExpiresIn)
		if err := s.store.ExtendSession(r.Context(), sess.Token, expires, now); err != nil {
			writeAPIError(w, s.storeError(r, "extend session", err))
			return
		}
		sess.ExpiresAt, sess.UpdatedAt = expires, now
		s.setSessionCookie(w, sess.Token, false)
	}
	writeJSON(w, http.StatusOK, sessionResponse{toSessionJSON(sess), toUserJSON(user)})
}

// postGetSession answers POST /api/auth/get-session as Better Auth does
// without deferSessionRefresh.
func (s *Service) postGetSession(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	writeAPIError(w, errPostGetSession)
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// handleSession serves GET /session: {session, user} or a 401.
func (s *Service) handleSession(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	sess, user, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionResponse{toSessionJSON(sess), toUserJSON(user)})
}

// handleUsers serves GET /users?limit=&cursor=, for admins only.
func (s *Service) handleUsers(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	_, user, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !user.IsAdmin() {
		s.writeError(w, r, cairn.Errorf(cairn.EFORBIDDEN, "Only admins may list users."))
		return
	}
	q := cairn.UserQuery{Limit: cairn.DefaultUserListLimit}
	if c := r.URL.Query().Get("cursor"); c != "" {
		if q.After, err = cairn.DecodeUserCursor(c); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > cairn.MaxUserListLimit {
			s.writeError(w, r, cairn.Errorf(cairn.EINVALID, "limit must be an integer from 1 to %d", cairn.MaxUserListLimit))
			return
		}
		q.Limit = n
	}
	page, err := s.store.ListUsers(r.Context(), q)
	if err != nil {
		s.logger.ErrorContext(r.Context(), "list users failed", "err", err)
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Users      []listedUserJSON `json:"users"`
		Count      int              `json:"count"`
		NextCursor *string          `json:"nextCursor"`
	}{Users: make([]listedUserJSON, 0, len(page.Users)), Count: len(page.Users)}
	for i := range page.Users {
		u := &page.Users[i]
		out.Users = append(out.Users, listedUserJSON{ID: u.ID, Name: u.Name, Email: u.Email,
			EmailVerified: u.EmailVerified, Role: roleOf(u), CreatedAt: jsTime(u.CreatedAt)})
	}
	if page.Next != nil {
		next := page.Next.Encode()
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
}
