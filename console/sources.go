package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairn-dev/cairn"
)

// sourcesData is the Sources page.
type sourcesData struct {
	Sources []sourceView
	BaseURL string
}

// sourceView is one source with its ready-to-paste snippets.
type sourceView struct {
	cairn.Source
	Snippets []snippet
	// Rate is the source's events/s over the last minutes.
	Rate sparkline
}

// snippet is a code sample with the write key filled in.
type snippet struct{ Name, Code string }

// baseURL is the address the browser reached Cairn at, for snippets.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// snippets returns the browser, Node, Go and curl samples for a source.
func snippets(base, key string) []snippet {
	u, _ := url.Parse(base) // base is scheme://host from the request
	host, protocol := u.Host, u.Scheme
	q := strconv.Quote
	return []snippet{
		{"Browser (@segment/analytics-next)", `import { AnalyticsBrowser } from "@segment/analytics-next";

const cairn = { apiHost: "` + host + `/v1", protocol: "` + protocol + `" };
export const analytics = AnalyticsBrowser.load(
  { writeKey: "` + key + `", cdnSettings: { integrations: { "Segment.io": cairn } } },
  { integrations: { "Segment.io": cairn } },
);
analytics.track("Signed Up", { plan: "pro" });`},
		{"Node (@segment/analytics-node)", `import { Analytics } from "@segment/analytics-node";

const analytics = new Analytics({ writeKey: "` + key + `", host: "` + base + `" });
analytics.track({ userId: "user123", event: "Signed Up", properties: { plan: "pro" } });
await analytics.closeAndFlush();`},
		{"Go (github.com/segmentio/analytics-go/v3)", `client, err := analytics.NewWithConfig(` + q(key) + `, analytics.Config{Endpoint: ` + q(base) + `})
if err != nil {
	log.Fatal(err)
}
defer client.Close()
client.Enqueue(analytics.Track{UserId: "user123", Event: "Signed Up",
	Properties: analytics.NewProperties().Set("plan", "pro")})`},
		{"curl", `curl -X POST ` + base + `/v1/track -u '` + key + `:' \
  -H "Content-Type: application/json" \
  -d '{"userId":"user123","event":"Signed Up","properties":{"plan":"pro"}}'

# or Cairn's own API, identifying the source:
curl -X POST ` + base + `/events -H 'X-Write-Key: ` + key + `' \
  -H "Content-Type: application/json" \
  -d '{"userId":"user123","sessionId":"sess456","type":"page_view","payload":{"url":"/"}}'`},
	}
}

// sourcesPage serves /console/sources (admins): every source, its write
// key, its events/s over the last ten minutes (a sparkline) and snippets, and the controls to create, rename, enable or
// disable, rotate the key of, and delete a source.
func (c *Console) sourcesPage(_ http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	return c.renderSources(r, v, http.StatusOK)
}

func (c *Console) renderSources(r *http.Request, v *view, status int) (string, int, error) {
	if c.cfg.Sources == nil {
		return "", 0, cairn.Errorf(cairn.ENOTFOUND, "This store keeps no sources.")
	}
	list, err := c.cfg.Sources.ListSources(r.Context())
	if err != nil {
		return "", 0, err
	}
	d := sourcesData{BaseURL: baseURL(r)}
	now := c.cfg.Now()
	for _, s := range list {
		d.Sources = append(d.Sources, sourceView{Source: s, Snippets: snippets(d.BaseURL, s.WriteKey),
			Rate: sourceSparkline(c.cfg.Feed.SourceRate(now, s.ID), cairn.SourceRateStep.Seconds())})
	}
	v.Title, v.Nav, v.Data = "Sources", "sources", d
	return "sources", status, nil
}

// createSource serves POST /console/sources.
func (c *Console) createSource(w http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	if c.cfg.Sources == nil {
		return "", 0, cairn.Errorf(cairn.ENOTFOUND, "This store keeps no sources.")
	}
	now := c.cfg.Now().UTC()
	src := &cairn.Source{Name: r.PostFormValue("name"), Enabled: true, CreatedAt: now, UpdatedAt: now}
	if eps := strings.TrimSpace(r.PostFormValue("eventsPerSecond")); eps != "" {
		n, err := strconv.Atoi(eps)
		if err != nil {
			v.Error = "Events per second must be a whole number (0 = unlimited)."
			return c.renderSources(r, v, http.StatusBadRequest)
		}
		src.RateLimit.EventsPerSecond = n
	}
	if err := c.cfg.Sources.CreateSource(r.Context(), src); err != nil {
		if cairn.ErrorCode(err) == cairn.EINVALID {
			v.Error = "Could not create the source: " + cairn.ErrorMessage(err)
			return c.renderSources(r, v, http.StatusBadRequest)
		}
		return "", 0, err
	}
	http.Redirect(w, r, "/console/sources?"+url.Values{"notice": {"Created source " + src.Name + "."}}.Encode()+"#"+src.ID, http.StatusSeeOther)
	return "", 0, nil
}

// updateSource serves POST /console/sources/{id}: action=rename (with
// name), enable, disable, rotate or delete.
func (c *Console) updateSource(w http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	if c.cfg.Sources == nil {
		return "", 0, cairn.Errorf(cairn.ENOTFOUND, "This store keeps no sources.")
	}
	id := r.PathValue("id")
	src, err := c.cfg.Sources.Source(r.Context(), id)
	if err != nil {
		return "", 0, err
	}
	var notice string
	switch action := r.PostFormValue("action"); action {
	case "delete":
		if err := c.cfg.Sources.DeleteSource(r.Context(), id); err != nil {
			return "", 0, err
		}
		http.Redirect(w, r, "/console/sources?"+url.Values{"notice": {"Deleted source " + src.Name + "."}}.Encode(), http.StatusSeeOther)
		return "", 0, nil
	case "rename":
		src.Name, notice = r.PostFormValue("name"), "Renamed the source."
	case "enable", "disable":
		src.Enabled, notice = action == "enable", "Source "+src.Name+" "+action+"d."
	case "rotate":
		src.WriteKey, notice = cairn.NewWriteKey(), "New write key for "+src.Name+"; the old one no longer works."
	default:
		return "", 0, cairn.Errorf(cairn.EINVALID, "Unknown action %q.", action)
	}
	src.UpdatedAt = c.cfg.Now().UTC()
	if err := c.cfg.Sources.UpdateSource(r.Context(), src); err != nil {
		if cairn.ErrorCode(err) == cairn.EINVALID {
			v.Error = "Could not change the source: " + cairn.ErrorMessage(err)
			return c.renderSources(r, v, http.StatusBadRequest)
		}
		return "", 0, err
	}
	http.Redirect(w, r, "/console/sources?"+url.Values{"notice": {notice}}.Encode()+"#"+src.ID, http.StatusSeeOther)
	return "", 0, nil
}
