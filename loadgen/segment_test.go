package loadgen_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/loadgen"
	"github.com/cairn-dev/cairn/segment"
)

// TestSegmentMode checks the Segment body builder against the real tracking
// API decoder: every message of every batch is an accepted track message
// with a unique messageId, a user, a session and properties, and each
// request carries the write key as the HTTP Basic user name.
func TestSegmentMode(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]bool{}
	var problems []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fail := func(msg string) {
			problems = append(problems, msg)
			w.WriteHeader(http.StatusBadRequest)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/batch" {
			fail(r.Method + " " + r.URL.Path)
			return
		}
		if key, _, ok := r.BasicAuth(); !ok || key != "wk-test" {
			fail("no Basic write key")
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			fail(err.Error())
			return
		}
		req, err := segment.Decode(body, "batch", time.Now(), segment.Options{})
		if err != nil {
			fail("decode: " + err.Error())
			return
		}
		if len(req.Rejected) > 0 || len(req.Messages) != 100 {
			fail("rejected or short batch")
			return
		}
		for _, m := range req.Messages {
			ev := m.Event
			if m.Type != segment.CallTrack || m.MessageID == "" || ids[m.MessageID] ||
				!strings.HasPrefix(ev.UserID, "user-") || ev.SessionID == "" || ev.Type == "" || len(ev.Payload) == 0 {
				fail("bad message " + m.MessageID)
				return
			}
			ids[m.MessageID] = true
		}
		w.Write([]byte(`{"success":true}`)) //nolint:errcheck // a failed write shows in the result
	}))
	t.Cleanup(srv.Close)

	res := run(t, loadgen.Config{URL: srv.URL, Mode: loadgen.ModeSegment, WriteKey: "wk-test",
		EventsPerRequest: 100, TotalEvents: 1000, Concurrency: 4, Users: 50})
	if len(problems) > 0 {
		t.Fatalf("server saw problems: %v", problems)
	}
	if res.Status["200"] != 10 || res.Events != 1000 || len(ids) != 1000 {
		t.Errorf("status %v, %d events acknowledged, %d distinct messageIds; want 10 x 200, 1000, 1000", res.Status, res.Events, len(ids))
	}
	if _, err := loadgen.New(loadgen.Config{URL: srv.URL, Mode: loadgen.ModeSegment, TotalEvents: 1}); err == nil {
		t.Error("segment mode without a write key: New succeeded, want an error")
	}
}
