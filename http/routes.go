package http

import "net/http"

// registerRoutes lists every route Cairn serves.
func (s *Server) registerRoutes() {
	s.handle("POST /events", http.HandlerFunc(s.handleEvents))
	s.handle("GET /users/{userId}/journey", s.requireSession(s.handleJourney))
	s.handle("GET /health", http.HandlerFunc(s.handleHealth))
	s.handle("GET /stats", s.requireSession(s.handleStats))
	s.handle("GET /api-docs", http.HandlerFunc(s.handleDocsUI))
	s.handle("GET /api-docs/{file...}", http.HandlerFunc(s.handleDocsUI))
	s.handle("GET /api-docs.json", http.HandlerFunc(s.handleDocsSpec))
	if s.Metrics != nil {
		s.handle("GET /metrics", s.Metrics)
	}
	if s.Auth != nil {
		h := s.Auth.Handler()
		for _, pattern := range s.Auth.Routes() {
			s.handle(pattern, h)
		}
	}
}
