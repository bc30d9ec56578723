package http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairn-dev/cairn"
)

// trackedUserJSON is one entry of GET /api/tracked-users.
type trackedUserJSON struct {
	UserID    string `json:"userId"`
	FirstSeen jsTime `json:"firstSeen"`
	LastSeen  jsTime `json:"lastSeen"`
	Events    int64  `json:"events"`
	Sessions  int64  `json:"sessions"`
}

// handleTrackedUsers serves GET /api/tracked-users?prefix=&cursor=&limit=:
// the users seen in events (not accounts), in userId order.
func (s *Server) handleTrackedUsers(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	q := cairn.TrackedUserQuery{Prefix: strings.TrimSpace(params.Get("prefix")), Limit: cairn.DefaultTrackedUserLimit, After: params.Get("cursor")}
	if len(q.Prefix) > cairn.MaxIDBytes {
		s.writeError(w, r, cairn.Errorf(cairn.EINVALID, "prefix must be at most %d bytes.", cairn.MaxIDBytes))
		return
	}
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > cairn.MaxTrackedUserLimit {
			s.writeError(w, r, cairn.Errorf(cairn.EINVALID, "limit must be an integer from 1 to %d.", cairn.MaxTrackedUserLimit))
			return
		}
		q.Limit = n
	}
	page, err := s.TrackedUsers.TrackedUsers(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Users      []trackedUserJSON `json:"users"`
		Count      int               `json:"count"`
		NextCursor *string           `json:"nextCursor"`
	}{Users: make([]trackedUserJSON, 0, len(page.Users)), Count: len(page.Users)}
	for _, u := range page.Users {
		out.Users = append(out.Users, trackedUserJSON{UserID: u.UserID, FirstSeen: jsTime(u.FirstSeen),
			LastSeen: jsTime(u.LastSeen), Events: u.EventCount, Sessions: u.SessionCount})
	}
	if page.Next != "" {
		out.NextCursor = &page.Next
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// trackedUserProfileJSON is the body of GET /users/{userId}.
type trackedUserProfileJSON struct {
	UserID       string                     `json:"userId"`
	Traits       map[string]json.RawMessage `json:"traits"`
	AnonymousIDs []string                   `json:"anonymousIds"`
	FirstSeen    jsTime                     `json:"firstSeen"`
	LastSeen     jsTime                     `json:"lastSeen"`
	EventCount   int64                      `json:"eventCount"`
	SessionCount int64                      `json:"sessionCount"`
}

// handleTrackedUser serves GET /users/{userId}: what the store knows of one
// tracked user (traits from identify calls, the anonymous ids merged into
// it, first and last seen, counts). 404 when no event of the user is
// stored.
func (s *Server) handleTrackedUser(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.PathValue("userId"))
	if id == "" || len(id) > cairn.MaxIDBytes {
		s.writeError(w, r, cairn.Errorf(cairn.EINVALID, "userId must be 1 to %d bytes.", cairn.MaxIDBytes))
		return
	}
	u, err := s.TrackedUsers.TrackedUser(r.Context(), id)
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		s.writeError(w, r, cairn.Errorf(cairn.ENOTFOUND, "No events of user %q are stored.", id))
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := trackedUserProfileJSON{UserID: u.UserID, Traits: u.Traits, AnonymousIDs: u.AnonymousIDs,
		FirstSeen: jsTime(u.FirstSeen), LastSeen: jsTime(u.LastSeen), EventCount: u.EventCount, SessionCount: u.SessionCount}
	if out.Traits == nil {
		out.Traits = map[string]json.RawMessage{}
	}
	if out.AnonymousIDs == nil {
		out.AnonymousIDs = []string{}
	}
	s.writeJSON(w, r, http.StatusOK, out)
}
