package http

import (
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
			LastSeen: jsTime(u.LastSeen), Events: u.Events, Sessions: u.Sessions})
	}
	if page.Next != "" {
		out.NextCursor = &page.Next
	}
	s.writeJSON(w, r, http.StatusOK, out)
}
