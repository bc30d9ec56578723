package http

import (
	"net/http"
	"strconv"
	"time"

	"github.com/cairn-dev/cairn"
)

// The account routes Cairn adds to Better Auth's: GET /session and
// GET /users. Their bodies use Better Auth's field names and time format
// (ISO 8601, UTC, milliseconds), as the /api/auth routes do, so a frontend
// reads one shape: GET /session's body comes from the account sub-API
// (Accounts.SessionBody).

// jsTime formats t as JavaScript's Date.toJSON (UTC, milliseconds), the
// time format of every Cairn JSON body.
type jsTime time.Time

// MarshalJSON implements json.Marshaler.
func (t jsTime) MarshalJSON() ([]byte, error) {
	b := append([]byte{'"'}, cairn.AppendTime(nil, time.Time(t))...)
	return append(b, '"'), nil
}

// listedUserJSON is one entry of GET /users.
type listedUserJSON struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"emailVerified"`
	Role          string `json:"role"`
	CreatedAt     jsTime `json:"createdAt"`
}

// roleOf returns a user's role; users without one are members.
func roleOf(u *cairn.User) string {
	if u.Role == "" {
		return cairn.RoleMember
	}
	return u.Role
}

// handleSession serves GET /session: the principal's session and user.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	p := cairn.PrincipalFromContext(r.Context())
	if p == nil || p.Session == nil || p.User == nil {
		s.writeError(w, r, cairn.Errorf(cairn.EUNAUTHORIZED, "Sign in to use this endpoint."))
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.Accounts.SessionBody(p.Session, p.User))
}

// handleUsers serves GET /users?limit=&cursor=, for admins only.
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	if !cairn.PrincipalFromContext(r.Context()).IsAdmin() {
		s.writeError(w, r, cairn.Errorf(cairn.EFORBIDDEN, "Only admins may list users."))
		return
	}
	q := cairn.UserQuery{Limit: cairn.DefaultUserListLimit}
	if c := r.URL.Query().Get("cursor"); c != "" {
		after, err := cairn.DecodeUserCursor(c)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		q.After = after
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > cairn.MaxUserListLimit {
			s.writeError(w, r, cairn.Errorf(cairn.EINVALID, "limit must be an integer from 1 to %d", cairn.MaxUserListLimit))
			return
		}
		q.Limit = n
	}
	page, err := s.Users.ListUsers(r.Context(), q)
	if err != nil {
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
	s.writeJSON(w, r, http.StatusOK, out)
}
