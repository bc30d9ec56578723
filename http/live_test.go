package http_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/live"
)

// TestLive: an event accepted after a client opened GET /api/live reaches
// it as a server-sent event, filtered by the query; the subscription ends
// when the client disconnects.
func TestLive(t *testing.T) {
	hub := live.NewHub(16)
	ing := &fakeIngester{}
	s := &cairnhttp.Server{Ingester: ing, Store: nopStore{}, Live: hub, OnAccepted: hub.Publish}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, query, want string
	}{
		{"All", "", `"userId":"u1"`},
		{"ByUser", "?userId=u2", `"userId":"u2"`},
		{"ByType", "?type=purchase", `"type":"purchase"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/live"+tc.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }() // the stream is cut by cancel
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
			}
			br := bufio.NewReader(resp.Body)
			// The stream is open (and subscribed) once its first comment arrives.
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(line, ": connected") {
					break
				}
			}
			for _, body := range []string{
				`{"userId":"u1","sessionId":"s","type":"search"}`,
				`{"userId":"u2","sessionId":"s","type":"purchase"}`,
			} {
				if w := post(t, s.Handler(), []byte(body)); w.Code != 202 {
					t.Fatalf("POST /events: %d %s", w.Code, w.Body)
				}
			}
			line := "\n"
			for line == "\n" {
				if line, err = br.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
			}
			if !strings.HasPrefix(line, "data: {") || !strings.Contains(line, tc.want) {
				t.Errorf("first event line %q, want data with %s", line, tc.want)
			}
			cancel()
		})
	}
	// Poll until every disconnected stream has unsubscribed.
	for hub.Subscribers() != 0 {
		select {
		case <-t.Context().Done():
			t.Fatal("subscribers left after disconnect")
		default:
			runtime.Gosched()
		}
	}
}

// skippingFeed's subscriptions report skipped events once, then end.
type skippingFeed struct{ *live.Hub }

type skippingSub struct{ done bool }

func (skippingFeed) Subscribe(cairn.LiveFilter) cairn.LiveSubscription { return &skippingSub{} }

func (s *skippingSub) Next(ctx context.Context) ([]cairn.LiveEvent, int64, error) {
	if s.done {
		return nil, 0, live.ErrClosed
	}
	s.done = true
	e := &cairn.Event{EventID: "e1", UserID: "u", SessionID: "s", Type: "search"}
	return []cairn.LiveEvent{{Event: e, JSON: e.AppendJSON(nil)}}, 1234, nil
}
func (s *skippingSub) Close() {}

// TestLiveSkipped: a subscriber that fell behind is told how many events
// it missed, before the events that follow.
func TestLiveSkipped(t *testing.T) {
	s := &cairnhttp.Server{Ingester: &fakeIngester{}, Store: nopStore{}, Live: skippingFeed{live.NewHub(1)}}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/live", nil))
	body := w.Body.String()
	i, j := strings.Index(body, "event: skipped\ndata: {\"skipped\":1234}\n\n"), strings.Index(body, `data: {"eventId":"e1"`)
	if i < 0 || j < i {
		t.Errorf("stream %q: want the skipped notice, then the event", body)
	}
}
