package http

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// handleJourney serves GET /users/{userId}/journey.
func (s *Server) handleJourney(w http.ResponseWriter, r *http.Request) {
	q, err := parseJourneyQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.Store.Journey(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := cairn.DerivePageSessions(r.Context(), s.Store, q.UserID, page.Events, s.SessionGap); err != nil {
		s.writeError(w, r, err)
		return
	}
	b := make([]byte, 0, 256+len(page.Events)*400)
	b = append(b, `{"userId":`...)
	b = cairn.AppendJSONString(b, q.UserID)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(len(page.Events)), 10)
	b = append(b, `,"events":[`...)
	for i := range page.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = page.Events[i].AppendJSON(b)
	}
	b = append(b, `],"nextCursor":`...)
	if page.Next != nil {
		b = cairn.AppendJSONString(b, page.Next.Encode())
	} else {
		b = append(b, "null"...)
	}
	if len(page.MergedIDs) > 0 {
		// The anonymous ids linked to this user whose events the page
		// includes (identity stitching); absent when there are none.
		b = append(b, `,"mergedIds":[`...)
		for i, id := range page.MergedIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = cairn.AppendJSONString(b, id)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	writeRawJSON(w, http.StatusOK, b)
}

// parseJourneyQuery validates the path and query parameters.
func parseJourneyQuery(r *http.Request) (cairn.JourneyQuery, error) {
	q := cairn.JourneyQuery{UserID: strings.TrimSpace(r.PathValue("userId")), Limit: cairn.DefaultJourneyLimit}
	if q.UserID == "" || len(q.UserID) > cairn.MaxIDBytes {
		return q, cairn.Errorf(cairn.EINVALID, "userId must be 1 to %d bytes.", cairn.MaxIDBytes)
	}
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return q, cairn.Errorf(cairn.EINVALID, "Malformed query string.")
	}
	parseTime := func(name string) (time.Time, error) {
		v := params.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		t, err := cairn.ParseTime(v)
		if err != nil {
			return t, cairn.Errorf(cairn.EINVALID, "%s must be an ISO 8601 date (e.g. 2025-12-15 or 2025-12-15T10:30:00Z).", name)
		}
		return t, nil
	}
	if q.From, err = parseTime("from"); err != nil {
		return q, err
	}
	if q.To, err = parseTime("to"); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return q, cairn.Errorf(cairn.EINVALID, "from must not be after to.")
	}
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > cairn.MaxJourneyLimit {
			return q, cairn.Errorf(cairn.EINVALID, "limit must be an integer from 1 to %d.", cairn.MaxJourneyLimit)
		}
		q.Limit = n
	}
	if v := params.Get("cursor"); v != "" {
		c, err := cairn.DecodeCursor(v)
		if err != nil {
			return q, err
		}
		q.After = c
	}
	return q, nil
}
