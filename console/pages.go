package console

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// overviewData is the overview page.
type overviewData struct {
	Now            time.Time
	Started        time.Time
	Stats          cairn.IngestStats
	Rejected       int64
	StoredEvents   int64
	StoreOK        bool
	StoreError     string
	Hour, Day      chart
	Types          []typeCount
	TypesTotal     int64
	Latest         []cairn.Event
	BacklogPercent string
}

type typeCount struct {
	Type  string
	Count int64
}

// overview serves /console.
func (c *Console) overview(_ http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	now := c.cfg.Now()
	d := overviewData{Now: now, Started: c.started, Stats: c.cfg.Ingester.Stats(), Rejected: c.cfg.Feed.Rejected(), StoreOK: true}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := c.cfg.Store.Ping(ctx); err != nil {
		d.StoreOK, d.StoreError = false, cairn.ErrorMessage(err)
	} else if n, err := c.cfg.Store.CountEvents(ctx); err == nil {
		d.StoredEvents = n
	}
	if d.Stats.MaxBacklog > 0 {
		d.BacklogPercent = strconv.FormatFloat(float64(d.Stats.Backlog)*100/float64(d.Stats.MaxBacklog), 'f', 2, 64)
	}
	d.Hour = rateChart("Events per second, last hour", c.cfg.Feed.Rate(now, time.Second), 1, 360, "−60 min", "now")
	d.Day = rateChart("Events per second, last 24 hours", c.cfg.Feed.Rate(now, time.Minute), 60, 288, "−24 h", "now")
	types := c.cfg.Feed.TypesToday(now)
	for _, t := range slices.Sorted(maps.Keys(types)) {
		d.Types = append(d.Types, typeCount{t, types[t]})
		d.TypesTotal += types[t]
	}
	slices.SortStableFunc(d.Types, func(a, b typeCount) int { return int(b.Count - a.Count) })
	d.Latest = c.cfg.Feed.Recent(15)
	v.Title, v.Nav, v.Data = "Overview", "overview", d
	return "overview", http.StatusOK, nil
}

// livePage serves /console/live; the page reads GET /api/live.
func (c *Console) livePage(_ http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	q := r.URL.Query()
	v.Title, v.Nav = "Live", "live"
	v.Data = struct {
		Type, UserID, SourceID string
		Types                  []string
	}{q.Get("type"), q.Get("userId"), q.Get("sourceId"), c.cfg.EventTypes}
	return "live", http.StatusOK, nil
}

// usersData is the Users page.
type usersData struct {
	Prefix    string
	Available bool
	Page      *cairn.TrackedUserPage
	NextURL   string
	Now       time.Time
}

// usersPage serves /console/users?prefix=&cursor=: tracked users by id
// prefix, and a box to open any user's journey.
func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("open")); id != "" {
		http.Redirect(w, r, "/console/users/"+url.PathEscape(id), http.StatusSeeOther)
		return "", 0, nil
	}
	d := usersData{Prefix: strings.TrimSpace(q.Get("prefix")), Available: c.cfg.TrackedUsers != nil, Now: c.cfg.Now()}
	if d.Available {
		page, err := c.cfg.TrackedUsers.TrackedUsers(r.Context(), cairn.TrackedUserQuery{
			Prefix: d.Prefix, Limit: cairn.DefaultTrackedUserLimit, After: q.Get("cursor")})
		if err != nil {
			return "", 0, err
		}
		d.Page = page
		if page.Next != "" {
			d.NextURL = "/console/users?" + url.Values{"prefix": {d.Prefix}, "cursor": {page.Next}}.Encode()
		}
	}
	v.Title, v.Nav, v.Data = "Users", "users", d
	return "users", http.StatusOK, nil
}

// journeyPageSize is how many events one journey page (or scroll step)
// shows.
const journeyPageSize = 50

// sessionGroup is a run of consecutive events of one session.
type sessionGroup struct {
	SessionID string
	First     time.Time // oldest event shown
	Last      time.Time // newest event shown
	Events    []cairn.Event
}

// journeyData is the journey page (and its scroll fragments).
type journeyData struct {
	UserID   string
	From, To string
	Groups   []sessionGroup
	Count    int
	NextURL  string // the next fragment, "" at the end
	LiveURL  string
	ErrorMsg string
	// MergedIDs are the anonymous ids merged into this journey.
	MergedIDs []string
	// Profile is the tracked-users record (traits, counts); nil when the
	// store keeps none or the user has none.
	Profile *cairn.TrackedUser
	// Traits are Profile's traits, sorted by key.
	Traits []trait
}

// trait is one of a tracked user's traits, its value as JSON.
type trait struct{ Key, Value string }

// journeyPage serves /console/users/{userId}?from=&to=&cursor=; with
// partial=1 it answers only the next page's session groups (endless
// scroll).
func (c *Console) journeyPage(w http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	userID := strings.TrimSpace(r.PathValue("userId"))
	q := r.URL.Query()
	d := journeyData{UserID: userID, From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")),
		LiveURL: "/console/live?" + url.Values{"userId": {userID}}.Encode()}
	jq := cairn.JourneyQuery{UserID: userID, Limit: journeyPageSize}
	var err error
	if userID == "" || len(userID) > cairn.MaxIDBytes {
		err = cairn.Errorf(cairn.EINVALID, "userId must be 1 to %d bytes.", cairn.MaxIDBytes)
	}
	parse := func(s string, end bool) time.Time {
		if s == "" || err != nil {
			return time.Time{}
		}
		t, perr := cairn.ParseTime(s)
		if perr != nil {
			err = cairn.Errorf(cairn.EINVALID, "%q is not a date (use 2025-12-15 or 2025-12-15T10:30:00Z).", s)
			return t
		}
		if end && len(s) == len("2006-01-02") {
			t = t.Add(24*time.Hour - time.Millisecond) // a bare "to" date includes that day
		}
		return t
	}
	jq.From, jq.To = parse(d.From, false), parse(d.To, true)
	if c := q.Get("cursor"); c != "" && err == nil {
		jq.After, err = cairn.DecodeCursor(c)
	}
	if err == nil && !jq.From.IsZero() && !jq.To.IsZero() && jq.From.After(jq.To) {
		err = cairn.Errorf(cairn.EINVALID, "from must not be after to.")
	}
	if err != nil {
		if q.Get("partial") != "" {
			return "", 0, err
		}
		d.ErrorMsg = cairn.ErrorMessage(err)
		v.Title, v.Nav, v.Data = "Journey of "+userID, "users", d
		return "journey", http.StatusBadRequest, nil
	}
	page, err := c.cfg.Store.Journey(r.Context(), jq)
	if err != nil {
		return "", 0, err
	}
	// Events sent without a session id are grouped by their derived
	// session, as the journey API returns them.
	if err := cairn.DerivePageSessions(r.Context(), c.cfg.Store, userID, page.Events, c.cfg.SessionGap); err != nil {
		return "", 0, err
	}
	d.Count = len(page.Events)
	d.Groups = groupSessions(page.Events)
	d.MergedIDs = page.MergedIDs
	if c.cfg.TrackedUsers != nil && q.Get("partial") == "" {
		u, err := c.cfg.TrackedUsers.TrackedUser(r.Context(), userID)
		switch {
		case err == nil:
			d.Profile = u
			for _, k := range slices.Sorted(maps.Keys(u.Traits)) {
				d.Traits = append(d.Traits, trait{k, string(u.Traits[k])})
			}
		case cairn.ErrorCode(err) != cairn.ENOTFOUND:
			return "", 0, err
		}
	}
	if page.Next != nil {
		next := url.Values{"partial": {"1"}, "cursor": {page.Next.Encode()}}
		if d.From != "" {
			next.Set("from", d.From)
		}
		if d.To != "" {
			next.Set("to", d.To)
		}
		d.NextURL = "/console/users/" + url.PathEscape(userID) + "?" + next.Encode()
	}
	if q.Get("partial") != "" {
		c.renderFragment(w, r, "journey", "groups", d)
		return "", 0, nil
	}
	v.Title, v.Nav, v.Data = "Journey of "+userID, "users", d
	return "journey", http.StatusOK, nil
}

// groupSessions splits a newest-first page into runs of one session.
func groupSessions(events []cairn.Event) []sessionGroup {
	var out []sessionGroup
	for _, ev := range events {
		if n := len(out); n > 0 && out[n-1].SessionID == ev.SessionID {
			out[n-1].Events = append(out[n-1].Events, ev)
			out[n-1].First = ev.OccurredAt
			continue
		}
		out = append(out, sessionGroup{SessionID: ev.SessionID, First: ev.OccurredAt, Last: ev.OccurredAt, Events: []cairn.Event{ev}})
	}
	return out
}
