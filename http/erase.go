package http

import (
	"net/http"
	"strings"

	"github.com/cairn-dev/cairn"
)

// errEraseUnsupported answers DELETE /api/users/{userId}/events when no
// Eraser is configured.
var errEraseUnsupported = cairn.Errorf(codeNotImplemented, "This store cannot erase users.")

// eraseJSON is the body of DELETE /api/users/{userId}/events.
type eraseJSON struct {
	UserID             string   `json:"userId"`
	ErasedEvents       int64    `json:"erasedEvents"`
	ErasedAnonymousIDs []string `json:"erasedAnonymousIds"`
	ErasedAt           jsTime   `json:"erasedAt"`
}

// handleErase serves DELETE /api/users/{userId}/events, for admins: it
// erases the tracked user's events and derived data, with those of the
// anonymous ids merged into it (cairn.Eraser), and says how many events and
// which ids were erased. Events of the user acknowledged before the call
// but still in the spool are covered by the store's erasure marker: they
// are skipped when the batcher writes them.
func (s *Server) handleErase(w http.ResponseWriter, r *http.Request) {
	if !cairn.PrincipalFromContext(r.Context()).IsAdmin() {
		s.writeError(w, r, cairn.Errorf(cairn.EFORBIDDEN, "Only admins may erase users."))
		return
	}
	id := strings.TrimSpace(r.PathValue("userId"))
	if id == "" || len(id) > cairn.MaxIDBytes {
		s.writeError(w, r, cairn.Errorf(cairn.EINVALID, "userId must be 1 to %d bytes.", cairn.MaxIDBytes))
		return
	}
	if s.Eraser == nil {
		s.writeError(w, r, errEraseUnsupported)
		return
	}
	now := s.Now().UTC()
	res, err := s.Eraser.EraseUser(r.Context(), id, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	loggerFrom(r, s.Logger).Info("erased tracked user", "user_id", id, "events", res.Events,
		"anonymous_ids", len(res.AnonymousIDs), "by", cairn.PrincipalFromContext(r.Context()).UserID)
	ids := res.AnonymousIDs
	if ids == nil {
		ids = []string{}
	}
	s.writeJSON(w, r, http.StatusOK, eraseJSON{UserID: id, ErasedEvents: res.Events, ErasedAnonymousIDs: ids, ErasedAt: jsTime(now)})
}
