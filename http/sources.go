package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// The sources admin API: POST/GET /api/sources, PATCH/DELETE
// /api/sources/{id}. A source is where events come from; its write key
// lets the tracking API (/v1/*) and POST /events attribute events to it.
// Only admins may manage sources.

// maxAdminBodyBytes bounds the body of an admin API request.
const maxAdminBodyBytes = 64 << 10

// sourceJSON is a source as the admin API returns it.
type sourceJSON struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	WriteKey  string        `json:"writeKey"`
	Enabled   bool          `json:"enabled"`
	RateLimit rateLimitJSON `json:"rateLimit"`
	CreatedAt jsTime        `json:"createdAt"`
	UpdatedAt jsTime        `json:"updatedAt"`
}

// rateLimitJSON is a source's token bucket.
type rateLimitJSON struct {
	EventsPerSecond int `json:"eventsPerSecond"`
	Burst           int `json:"burst"`
}

func toSourceJSON(s *cairn.Source) sourceJSON {
	return sourceJSON{ID: s.ID, Name: s.Name, WriteKey: s.WriteKey, Enabled: s.Enabled,
		RateLimit: rateLimitJSON{EventsPerSecond: s.RateLimit.EventsPerSecond, Burst: s.RateLimit.Burst},
		CreatedAt: jsTime(s.CreatedAt), UpdatedAt: jsTime(s.UpdatedAt)}
}

// requireAdmin wraps h so that it runs only for admins: no session → 401
// (from requireSession), a member → 403.
func (s *Server) requireAdmin(h http.HandlerFunc) http.Handler {
	return noStore(s.requireSession(func(w http.ResponseWriter, r *http.Request) {
		if s.Auth != nil && !cairn.PrincipalFromContext(r.Context()).IsAdmin() {
			s.writeError(w, r, cairn.Errorf(cairn.EFORBIDDEN, "Only admins may manage sources."))
			return
		}
		h(w, r)
	}))
}

// decodeAdminJSON decodes a small JSON object body into v, refusing unknown
// fields and trailing data.
func decodeAdminJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return cairn.Errorf(cairn.ETOOLARGE, "Request body exceeds %d bytes.", maxAdminBodyBytes)
		}
		return cairn.Errorf(cairn.EINVALID, "Cannot read request body.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cairn.Errorf(cairn.EINVALID, "Malformed JSON body: %s.", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return cairn.Errorf(cairn.EINVALID, "Malformed JSON body: unexpected data after the object.")
	}
	return nil
}

// handleCreateSource serves POST /api/sources.
func (s *Server) handleCreateSource(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name      string         `json:"name"`
		Enabled   *bool          `json:"enabled"`
		RateLimit *rateLimitJSON `json:"rateLimit"`
	}
	if err := decodeAdminJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.Now().UTC().Truncate(time.Millisecond)
	src := &cairn.Source{Name: in.Name, Enabled: in.Enabled == nil || *in.Enabled, CreatedAt: now, UpdatedAt: now}
	if in.RateLimit != nil {
		src.RateLimit = cairn.RateLimit{EventsPerSecond: in.RateLimit.EventsPerSecond, Burst: in.RateLimit.Burst}
	}
	if err := s.Sources.CreateSource(r.Context(), src); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/sources/"+src.ID)
	s.writeJSON(w, r, http.StatusCreated, toSourceJSON(src))
}

// handleListSources serves GET /api/sources.
func (s *Server) handleListSources(w http.ResponseWriter, r *http.Request) {
	list, err := s.Sources.ListSources(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Sources []sourceJSON `json:"sources"`
		Count   int          `json:"count"`
	}{Sources: make([]sourceJSON, 0, len(list)), Count: len(list)}
	for i := range list {
		out.Sources = append(out.Sources, toSourceJSON(&list[i]))
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// handleGetSource serves GET /api/sources/{id}.
func (s *Server) handleGetSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.Sources.Source(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, sourceNotFound(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, toSourceJSON(src))
}

// handleUpdateSource serves PATCH /api/sources/{id}: rename, enable or
// disable, change the rate limit, or issue a new write key.
func (s *Server) handleUpdateSource(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name           *string        `json:"name"`
		Enabled        *bool          `json:"enabled"`
		RateLimit      *rateLimitJSON `json:"rateLimit"`
		RotateWriteKey bool           `json:"rotateWriteKey"`
	}
	if err := decodeAdminJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	src, err := s.Sources.Source(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, sourceNotFound(err))
		return
	}
	if in.Name != nil {
		src.Name = *in.Name
	}
	if in.Enabled != nil {
		src.Enabled = *in.Enabled
	}
	if in.RateLimit != nil {
		src.RateLimit = cairn.RateLimit{EventsPerSecond: in.RateLimit.EventsPerSecond, Burst: in.RateLimit.Burst}
	}
	if in.RotateWriteKey {
		src.WriteKey = cairn.NewWriteKey()
	}
	src.UpdatedAt = s.Now().UTC().Truncate(time.Millisecond)
	if err := s.Sources.UpdateSource(r.Context(), src); err != nil {
		s.writeError(w, r, sourceNotFound(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, toSourceJSON(src))
}

// handleDeleteSource serves DELETE /api/sources/{id}.
func (s *Server) handleDeleteSource(w http.ResponseWriter, r *http.Request) {
	if err := s.Sources.DeleteSource(r.Context(), r.PathValue("id")); err != nil {
		s.writeError(w, r, sourceNotFound(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sourceNotFound gives a store's ENOTFOUND a stable message.
func sourceNotFound(err error) error {
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return cairn.Errorf(cairn.ENOTFOUND, "No source with that id.")
	}
	return err
}
