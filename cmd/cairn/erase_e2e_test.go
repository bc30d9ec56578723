package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestE2EEraseTrackedUser(t *testing.T) {
	p := startMain(t, "", "CAIRN_FLUSH_INTERVAL=20ms")
	admin := p.signUpToken("admin@example.com")
	member := p.signUpToken("member@example.com")
	body := `[{"eventId":"x1","userId":"ua","sessionId":"s","type":"search","occurredAt":"2025-12-01T10:00:00Z"},
	  {"eventId":"x2","userId":"ua","sessionId":"s","type":"purchase","occurredAt":"2025-12-02T10:00:00Z"},
	  {"eventId":"x3","userId":"ub","sessionId":"s","type":"purchase","occurredAt":"2025-12-03T10:00:00Z"}]`
	if status, _, b := p.do("POST", "/events", []byte(body)); status != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", status, b)
	}
	p.waitDrained()
	journey := func(user string) string {
		t.Helper()
		status, _, b := p.do("GET", "/users/"+user+"/journey", nil, "Authorization", "Bearer "+admin)
		if status != http.StatusOK {
			t.Fatalf("journey of %s: %d %s", user, status, b)
		}
		var j struct{ Events []struct{ EventID string } }
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range j.Events {
			ids = append(ids, e.EventID)
		}
		return strings.Join(ids, ",")
	}
	if status, _, b := p.do("DELETE", "/api/users/ua/events", nil, "Authorization", "Bearer "+member); status != http.StatusForbidden {
		t.Errorf("a member's erasure: %d %s, want 403", status, b)
	}
	status, _, b := p.do("DELETE", "/api/users/ua/events", nil, "Authorization", "Bearer "+admin)
	var res struct {
		ErasedEvents int64 `json:"erasedEvents"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &res) != nil || res.ErasedEvents != 2 {
		t.Fatalf("erasure: %d %s, want 200 with 2 events", status, b)
	}
	if got := journey("ua"); got != "" {
		t.Errorf("journey after erasure: %q, want empty", got)
	}
	if got := journey("ub"); got != "x3" {
		t.Errorf("another user's journey: %q, want x3", got)
	}
	if status, _, b := p.do("GET", "/users/ua", nil, "Authorization", "Bearer "+admin); status != http.StatusNotFound {
		t.Errorf("GET /users/ua after erasure: %d %s, want 404", status, b)
	}
	// A re-delivered old event stays erased; a new one is stored.
	again := `[{"eventId":"x1","userId":"ua","sessionId":"s","type":"search","occurredAt":"2025-12-01T10:00:00Z"},
	  {"eventId":"x4","userId":"ua","sessionId":"s","type":"search","occurredAt":"2025-12-04T10:00:00Z"}]`
	if status, _, b := p.do("POST", "/events", []byte(again)); status != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", status, b)
	}
	p.waitDrained()
	if got := journey("ua"); got != "x4" {
		t.Errorf("journey after re-delivery and a new event: %q, want x4", got)
	}
}
