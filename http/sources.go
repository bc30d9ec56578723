package http

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/cairn-dev/cairn"
)

// The admin API for sources: POST/GET /api/sources,
// PATCH/DELETE /api/sources/{id}. Admins only.

// sourceJSON is a source as the API returns it.
type sourceJSON struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	WriteKey  string        `json:"writeKey"`
	Enabled   bool          `json:"enabled"`
	RateLimit rateLimitJSON `json:"rateLimit"`
	CreatedAt jsTime        `json:"createdAt"`
	UpdatedAt jsTime        `json:"updatedAt"`
}

type rateLimitJSON struct {
	EventsPerSecond int `json:"eventsPerSecond"`
	Burst           int `json:"burst"`
}

func toSourceJSON(s *cairn.Source) sourceJSON {
	return sourceJSON{ID: s.ID, Name: s.Name, WriteKey: s.WriteKey, Enabled: s.Enabled,
		RateLimit: rateLimitJSON{s.RateLimit.EventsPerSecond, s.RateLimit.Burst},
		CreatedAt: jsTime(s.CreatedAt), UpdatedAt: jsTime(s.UpdatedAt)}
}

// maxSourceBody bounds a source request body.
const maxSourceBody = 16 << 10

// decodeSourceBody reads a small JSON object into v (unknown fields are
// refused, so a typo does not silently do nothing).
func decodeSourceBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSourceBody))
	if err != nil {
		return cairn.Errorf(cairn.ETOOLARGE, "Request body exceeds %d bytes.", maxSourceBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cairn.Errorf(cairn.EINVALID, "Malformed JSON body: %v.", err)
	}
	return nil
}

// requireAdmin refuses non-admins with 403.
func (s *Server) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	if !cairn.PrincipalFromContext(r.Context()).IsAdmin() && s.Auth != nil {
		s.writeError(w, r, cairn.Errorf(cairn.EFORBIDDEN, "Only admins may manage sources."))
		return false
	}
	return true
}

// handleCreateSource serves POST /api/sources.
func (s *Server) handleCreateSource(w http.ResponseWriter, r *http.Request) {
	if !s.requireAdmin(w, r) {
		return
	}
	var in struct {
		Name      string         `json:"name"`
		Enabled   *bool          `json:"enabled"`
		RateLimit *rateLimitJSON `json:"rateLimit"`
	}
	if err := decodeSourceBody(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.Now().UTC()
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
	if !s.requireAdmin(w, r) {
		return
	}
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

// handleUpdateSource serves PATCH /api/sources/{id}: rename, enable or
// disable, change the rate limit, or rotate the write key
// ("rotateWriteKey": true; the old key stops working at once).
func (s *Server) handleUpdateSource(w http.ResponseWriter, r *http.Request) {
	if !s.requireAdmin(w, r) {
		return
	}
	var in struct {
		Name           *string        `json:"name"`
		Enabled        *bool          `json:"enabled"`
		RateLimit      *rateLimitJSON `json:"rateLimit"`
		RotateWriteKey bool           `json:"rotateWriteKey"`
	}
	if err := decodeSourceBody(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	src, err := s.Sources.Source(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
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
	src.UpdatedAt = s.Now().UTC()
	if err := s.Sources.UpdateSource(r.Context(), src); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toSourceJSON(src))
}

// handleDeleteSource serves DELETE /api/sources/{id}.
func (s *Server) handleDeleteSource(w http.ResponseWriter, r *http.Request) {
	if !s.requireAdmin(w, r) {
		return
	}
	if err := s.Sources.DeleteSource(r.Context(), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
