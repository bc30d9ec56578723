package http

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// The insights API (GET /api/insights/trends, /users, /retention, /top and
// POST /api/insights/funnel), for any signed-in user. Every query takes a
// range, from and to (RFC 3339 or YYYY-MM-DD, UTC), by default the 7 days
// up to now. Bad queries are 400 with a message saying what is wrong.

// defaultInsightRange is the range of a query without from.
const defaultInsightRange = 7 * 24 * time.Hour

// parseInsightTime parses an RFC 3339 time or a YYYY-MM-DD date (UTC
// midnight).
func parseInsightTime(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, cairn.Errorf(cairn.EINVALID, "%s must be an RFC 3339 time or a YYYY-MM-DD date, not %q.", name, v)
}

// insightRange returns the from and to of a query: the given ones, to
// defaulting to now and from to defaultInsightRange before to.
func (s *Server) insightRange(from, to string) (time.Time, time.Time, error) {
	t := s.Now().UTC()
	if to != "" {
		var err error
		if t, err = parseInsightTime("to", to); err != nil {
			return time.Time{}, time.Time{}, err
		}
	}
	f := t.Add(-defaultInsightRange)
	if from != "" {
		var err error
		if f, err = parseInsightTime("from", from); err != nil {
			return time.Time{}, time.Time{}, err
		}
	}
	return f, t, nil
}

// insightInterval returns the interval parameter (def when absent); the
// query's Validate says which intervals it accepts.
func insightInterval(params url.Values, def cairn.Interval) cairn.Interval {
	if v := params.Get("interval"); v != "" {
		return cairn.Interval(v)
	}
	return def
}

// listParam returns the values of a repeatable, comma-separated parameter.
func listParam(params url.Values, name string) []string {
	var out []string
	for _, v := range params[name] {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// handleInsightTrends serves GET /api/insights/trends?from&to&interval&type&sourceId.
func (s *Server) handleInsightTrends(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	q := cairn.TrendsQuery{Types: listParam(params, "type"), SourceID: params.Get("sourceId")}
	var err error
	q.Interval = insightInterval(params, cairn.IntervalDay)
	if q.From, q.To, err = s.insightRange(params.Get("from"), params.Get("to")); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.Insights.Trends(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

// handleInsightUsers serves GET /api/insights/users?from&to&interval.
func (s *Server) handleInsightUsers(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	var q cairn.UsersQuery
	var err error
	q.Interval = insightInterval(params, cairn.IntervalDay)
	if q.From, q.To, err = s.insightRange(params.Get("from"), params.Get("to")); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.Insights.UniqueUsers(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

// handleInsightFunnel serves POST /api/insights/funnel with
// {"steps":[{"type","where"}],"within","from","to"}.
func (s *Server) handleInsightFunnel(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Steps  []cairn.FunnelStep `json:"steps"`
		Within string             `json:"within"`
		From   string             `json:"from"`
		To     string             `json:"to"`
	}
	if err := decodeAdminJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := cairn.FunnelQuery{Steps: in.Steps}
	var err error
	if in.Within == "" {
		err = cairn.Errorf(cairn.EINVALID, "within is required (a duration such as 30m, 1h or 7d).")
	} else {
		q.Within, err = cairn.ParseWindow(in.Within)
	}
	if err == nil {
		q.From, q.To, err = s.insightRange(in.From, in.To)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.Insights.Funnel(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

// handleInsightRetention serves GET /api/insights/retention?cohort&return&from&to&interval.
func (s *Server) handleInsightRetention(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	q := cairn.RetentionQuery{Cohort: params.Get("cohort"), Return: params.Get("return")}
	var err error
	q.Interval = insightInterval(params, cairn.IntervalDay)
	if q.From, q.To, err = s.insightRange(params.Get("from"), params.Get("to")); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.Insights.Retention(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

// handleInsightTop serves GET /api/insights/top?type&field&from&to&limit.
func (s *Server) handleInsightTop(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	q := cairn.TopQuery{Type: params.Get("type"), Field: params.Get("field"), Limit: cairn.DefaultTopLimit}
	var err error
	if v := params.Get("limit"); v != "" {
		if q.Limit, err = strconv.Atoi(v); err != nil {
			err = cairn.Errorf(cairn.EINVALID, "limit must be an integer from 1 to %d.", cairn.MaxTopLimit)
		}
	}
	if err == nil {
		q.From, q.To, err = s.insightRange(params.Get("from"), params.Get("to"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.Insights.Top(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}
