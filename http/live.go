package http

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// liveHeartbeat is how often an idle live stream sends a comment, so
// proxies and browsers keep the connection open.
const liveHeartbeat = 15 * time.Second

// liveFlushEvery is the shortest time between two writes of a live
// stream: a busy stream sends what arrived meanwhile in one write (and one
// flush), an idle one sends an event as soon as it arrives.
const liveFlushEvery = 50 * time.Millisecond

// handleLive serves GET /api/live?type=&userId=&sourceId=: the events
// accepted from now on, as server-sent events. Each "message" event's data
// is one event in the journey shape; a "skipped" event's data is
// {"skipped":N} when N events were dropped for this client because it
// read too slowly. Ingest never waits for a live client.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := cairn.LiveFilter{
		Type:     strings.TrimSpace(q.Get("type")),
		UserID:   strings.TrimSpace(q.Get("userId")),
		SourceID: strings.TrimSpace(q.Get("sourceId")),
	}
	for name, v := range map[string]string{"type": f.Type, "userId": f.UserID, "sourceId": f.SourceID} {
		if len(v) > cairn.MaxIDBytes {
			s.writeError(w, r, cairn.Errorf(cairn.EINVALID, "%s must be at most %d bytes.", name, cairn.MaxIDBytes))
			return
		}
	}
	rc := http.NewResponseController(w)
	// A stream outlives the server's read and write timeouts (an expired
	// read deadline would cancel the request's context).
	for _, clear := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := clear(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			loggerFrom(r, s.Logger).Debug("live: clear deadline", "err", err)
		}
	}
	// Streams end when the server shuts down, so that Shutdown need not
	// wait for them.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.shutdown:
			cancel()
		case <-ctx.Done():
		}
	}()
	sub := s.Live.Subscribe(f)
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	b := []byte("retry: 2000\n: connected\n\n")
	if !s.writeLive(w, rc, b) {
		return
	}
	pace := time.NewTimer(liveHeartbeat)
	defer pace.Stop()
	var last time.Time // of the last write of events
	for {
		if d := liveFlushEvery - time.Since(last); d > 0 {
			pace.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-pace.C:
			}
		}
		wait, cancel := context.WithTimeout(ctx, liveHeartbeat)
		events, skipped, err := sub.Next(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return // the client went away
		case errors.Is(err, context.DeadlineExceeded):
			if !s.writeLive(w, rc, []byte(": keep-alive\n\n")) {
				return
			}
			continue
		case err != nil:
			return // the feed closed (shutdown)
		}
		b = b[:0]
		if skipped > 0 {
			b = append(b, "event: skipped\ndata: {\"skipped\":"...)
			b = strconv.AppendInt(b, skipped, 10)
			b = append(b, "}\n\n"...)
		}
		for i := range events {
			b = append(b, "data: "...)
			b = append(b, events[i].JSON...)
			b = append(b, "\n\n"...)
		}
		if !s.writeLive(w, rc, b) {
			return
		}
		last = time.Now()
		if cap(b) > 4<<20 {
			b = nil // do not keep a burst's buffer for the stream's life
		}
	}
}

// writeLive writes and flushes one chunk of a live stream; false means the
// client is gone.
func (s *Server) writeLive(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}
