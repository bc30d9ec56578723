package http_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
)

// admittingIngester refuses every request up front (cairn.Admitter) while
// admit is set (a unit-test double).
type admittingIngester struct {
	fakeIngester
	admit error
}

func (a *admittingIngester) Admit() error { return a.admit }

// watchedBody fails the test if the handler reads it.
type watchedBody struct {
	io.Reader
	read bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.read = true
	return b.Reader.Read(p)
}

// TestAdmitBeforeBody checks that an ingester that already refuses events
// (backlog full) gets POST /events and POST /v1/batch answered 503 with
// Retry-After before the body is read, and counted as one rejected event;
// once it admits again, the same requests are accepted.
func TestAdmitBeforeBody(t *testing.T) {
	full := &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "Backlog full (10 events waiting); retry later.", Err: cairn.ErrBacklogFull}
	ing := &admittingIngester{admit: full}
	rejected := map[string]int{}
	st := newPebble(t)
	src := &cairn.Source{Name: "web", Enabled: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := st.CreateSource(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	s := &cairnhttp.Server{Ingester: ing, Store: nopStore{}, Sources: st,
		OnRejected: func(reason string, n int) { rejected[reason] += n }}
	h := s.Handler()
	cases := []struct {
		path, body string
		ok         int
	}{
		{"/events", `{"userId":"u1","sessionId":"s1","type":"page_view"}`, http.StatusAccepted},
		{"/v1/batch", `{"writeKey":"` + src.WriteKey + `","batch":[{"type":"track","event":"Signed Up","userId":"u1"}]}`, http.StatusOK},
	}
	for _, c := range cases {
		body := &watchedBody{Reader: strings.NewReader(c.body)}
		req := httptest.NewRequest("POST", c.path, body)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s while the backlog is full: status %d %s, want 503", c.path, rec.Code, rec.Body)
		}
		var e cairnhttp.ErrorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != cairn.EUNAVAILABLE || !strings.Contains(e.Error, "Backlog full") {
			t.Errorf("%s 503 body %q (%v), want the backlog error", c.path, rec.Body, err)
		}
		if rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s 503 without Retry-After", c.path)
		}
		if body.read {
			t.Errorf("%s: body read although the request was refused up front", c.path)
		}
	}
	if got := rejected[cairn.RejectReason(full)]; got != len(cases) {
		t.Errorf("rejected %v, want %d under %q", rejected, len(cases), cairn.RejectReason(full))
	}
	if !errors.Is(full, cairn.ErrBacklogFull) {
		t.Fatal("test error does not wrap ErrBacklogFull")
	}

	ing.admit = nil
	for _, c := range cases {
		req := httptest.NewRequest("POST", c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.ok {
			t.Errorf("%s once admitted: status %d %s, want %d", c.path, rec.Code, rec.Body, c.ok)
		}
	}
	if len(ing.got) != len(cases) {
		t.Errorf("ingested %d events, want %d", len(ing.got), len(cases))
	}
}
