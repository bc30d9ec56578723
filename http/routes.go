package http

import (
	"maps"
	"net/http"
	"slices"
)

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
	if s.Auth != nil && s.Accounts != nil {
		s.handle("GET /session", noStore(s.requireSession(s.handleSession)))
	}
	if s.Auth != nil && s.Users != nil {
		s.handle("GET /users", noStore(s.requireSession(s.handleUsers)))
	}
	// Sources (write keys) and the Segment-compatible tracking API.
	if s.Sources != nil {
		s.handle("POST /api/sources", s.requireAdmin(s.handleCreateSource))
		s.handle("GET /api/sources", s.requireAdmin(s.handleListSources))
		s.handle("GET /api/sources/{id}", s.requireAdmin(s.handleGetSource))
		s.handle("PATCH /api/sources/{id}", s.requireAdmin(s.handleUpdateSource))
		s.handle("DELETE /api/sources/{id}", s.requireAdmin(s.handleDeleteSource))
		s.handle("POST /v1/{call}", http.HandlerFunc(s.handleTracking))
		s.handle("OPTIONS /v1/{call}", http.HandlerFunc(s.handleTrackingPreflight))
	}
	if s.Live != nil {
		s.handle("GET /api/live", noStore(s.requireSession(s.handleLive)))
	}
	if s.TrackedUsers != nil {
		s.handle("GET /api/tracked-users", noStore(s.requireSession(s.handleTrackedUsers)))
		s.handle("GET /users/{userId}", noStore(s.requireSession(s.handleTrackedUser)))
	}
	// Insights (insights.go): aggregates for any signed-in user.
	if s.Insights != nil {
		s.handle("GET /api/insights/trends", noStore(s.requireSession(s.handleInsightTrends)))
		s.handle("GET /api/insights/users", noStore(s.requireSession(s.handleInsightUsers)))
		s.handle("POST /api/insights/funnel", noStore(s.requireSession(s.handleInsightFunnel)))
		s.handle("GET /api/insights/retention", noStore(s.requireSession(s.handleInsightRetention)))
		s.handle("GET /api/insights/top", noStore(s.requireSession(s.handleInsightTop)))
	}
	// The web console: HTML pages, signed-in or showing the sign-in form.
	if s.Console != nil {
		routes := s.Console.Routes()
		for _, pattern := range slices.Sorted(maps.Keys(routes)) {
			s.handle(pattern, s.withPrincipal(routes[pattern]))
		}
	}
	// Data lifecycle (export.go, backup.go, erase.go): admin-only online export,
	// backup and erasure.
	s.handle("GET /api/export", noStore(s.requireSession(s.handleExport)))
	s.handle("POST /api/backup", noStore(s.requireSession(s.handleBackup)))
	s.handle("DELETE /api/users/{userId}/events", noStore(s.requireSession(s.handleErase)))
	// The Better Auth protocol under /api/auth (package betterauth).
	if s.Accounts != nil {
		routes := s.Accounts.Routes()
		for _, pattern := range slices.Sorted(maps.Keys(routes)) {
			s.handle(pattern, routes[pattern])
		}
	}
}
