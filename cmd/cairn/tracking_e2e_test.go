package main

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/mongo/mongotest"
)

// TestE2ETrackingSource wires sources, the tracking API, write keys on
// POST /events, derived sessions and the per-source metric through the
// real Main: an admin creates a source, sends a Segment batch with its
// write key, and reads the events back in the journey.
func TestE2ETrackingSource(t *testing.T) { checkTrackingSource(t) }

// TestMongoE2ETrackingSource is TestE2ETrackingSource on MongoDB.
func TestMongoE2ETrackingSource(t *testing.T) {
	srv := mongotest.Start(t)
	checkTrackingSource(t, "MONGODB_URI="+srv.DatabaseURI(mongotest.DatabaseName(t)))
}

func checkTrackingSource(t *testing.T, env ...string) {
	p := startMain(t, "", append([]string{"CAIRN_FLUSH_INTERVAL=50ms", "CAIRN_REQUIRE_WRITE_KEY=true"}, env...)...)
	p.login() // the first account is the admin

	status, _, b := p.do("POST", "/api/sources", []byte(`{"name":"web","rateLimit":{"eventsPerSecond":1000,"burst":5000}}`))
	if status != http.StatusCreated {
		t.Fatalf("create source: %d %s", status, b)
	}
	src := decode[struct{ ID, WriteKey string }](t, b)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(src.WriteKey+":"))

	batch := `{"batch":[
	  {"type":"track","event":"Signed Up","userId":"u-e2e","messageId":"m-1","timestamp":"2025-12-15T10:00:00Z"},
	  {"type":"page","userId":"u-e2e","name":"Home","messageId":"m-2","timestamp":"2025-12-15T10:10:00Z"},
	  {"type":"track","event":"Orphan","messageId":"m-3"}],
	  "sentAt":"2025-12-15T10:10:00Z"}`
	status, _, b = p.do("POST", "/v1/batch", []byte(batch), "Authorization", auth)
	if status != http.StatusOK || !strings.Contains(string(b), `"success":true`) || !strings.Contains(string(b), `"reason":"no_user_anon_id"`) {
		t.Fatalf("POST /v1/batch: %d %s", status, b)
	}
	// A retry (same messageIds, new sentAt) is stored once.
	status, _, b = p.do("POST", "/v1/batch", []byte(strings.Replace(batch, `"sentAt":"2025-12-15T10:10:00Z"`, `"sentAt":"2025-12-15T10:10:05Z"`, 1)), "Authorization", auth)
	if status != http.StatusOK {
		t.Fatalf("retry: %d %s", status, b)
	}

	ev := []byte(`{"eventId":"seed-1","userId":"u-e2e","sessionId":"s1","type":"page_view"}`)
	if status, _, b := p.do("POST", "/events", ev); status != http.StatusUnauthorized {
		t.Fatalf("POST /events without a key under CAIRN_REQUIRE_WRITE_KEY: %d %s", status, b)
	}
	if status, _, b := p.do("POST", "/events", ev, "X-Write-Key", src.WriteKey); status != http.StatusAccepted {
		t.Fatalf("POST /events with X-Write-Key: %d %s", status, b)
	}
	p.waitDrained()

	status, _, b = p.do("GET", "/users/u-e2e/journey", nil)
	if status != http.StatusOK {
		t.Fatalf("journey: %d %s", status, b)
	}
	j := decode[struct {
		Events []struct {
			EventID, SessionID, Type string
			OccurredAt               time.Time
		}
	}](t, b)
	got := map[string]string{}
	var first time.Time
	for _, e := range j.Events {
		got[e.EventID] = e.Type + "/" + e.SessionID
		if e.EventID == "m-1" {
			first = e.OccurredAt
		}
	}
	// The skew-corrected times are receivedAt − 10 min and receivedAt:
	// one derived session, named after the first event's time.
	session := cairn.DerivedSessionID(first)
	want := map[string]string{"m-1": "Signed Up/" + session, "m-2": "$page/" + session, "seed-1": "page_view/s1"}
	if len(got) != len(want) {
		t.Fatalf("journey events %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("event %s: %q, want %q", id, got[id], w)
		}
	}

	_, _, b = p.do("GET", "/metrics", nil)
	if line := `cairn_source_events_total{outcome="accepted",source="` + src.ID + `"} 5`; !strings.Contains(string(b), line) {
		t.Errorf("metrics lack %s", line)
	}
	if !strings.Contains(string(b), `cairn_events_rejected_total{reason="no_user_anon_id"} 2`) {
		t.Errorf("metrics lack the tracking rejections")
	}
}
