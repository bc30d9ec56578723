// Package console is Cairn's web console: server-rendered HTML pages
// (html/template) for the overview, the live tail, tracked users and their
// journeys, and account administration, with their small stylesheet and
// script embedded in the binary (go:embed). Nothing is loaded from another
// site, there is no build step, and no third-party code is vendored: the
// CSS and JavaScript under assets/ are Cairn's own (same licence as the
// rest of the repository).
//
// Every page works from its address alone (/console, /console/live,
// /console/users, /console/users/{userId}, /console/insights, /console/sources,
// /console/accounts): without a
// session it shows the sign-in form, which signs in through the Better
// Auth endpoints and reloads the same address. Package http mounts
// Routes on Cairn's mux and puts the session's principal in the request
// context; the console only reads it. Admin pages refuse members with 403.
//
// Pages read only in-memory state and single store pages (one journey
// page, one listing page), so their server time does not grow with the
// number of stored events; the ingest rates come from the live feed's
// in-memory history and reset when the process restarts.
package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Config is what the console reads from.
type Config struct {
	// Ingester gives the pipeline's counters. Required.
	Ingester cairn.Ingester
	// Store serves journeys, the event count and health. Required.
	Store cairn.EventStore
	// Feed is the live feed with the in-memory ingest history. Required.
	Feed cairn.LiveFeed
	// Accounts manages accounts; nil hides the account views and sign-up.
	Accounts cairn.AccountAdmin
	// Sources keeps the sources; nil hides the Sources view.
	Sources cairn.SourceStore
	// TrackedUsers lists tracked users; nil leaves the Users view with
	// the go-to-journey box only.
	TrackedUsers cairn.TrackedUserStore
	// Insights answers the Insights view; nil shows it as unavailable.
	Insights cairn.Insights
	// EventTypes are the accepted event types, offered as live filters
	// (cairn.DefaultEventTypes when empty).
	EventTypes []string
	// SessionGap is the inactivity that ends a derived session in the
	// journey view, as in the journey API (cairn.DefaultSessionGap if 0).
	SessionGap time.Duration
	// Logger receives the console's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

// Console serves the web console.
type Console struct {
	cfg     Config
	pages   map[string]*template.Template
	started time.Time
}

// New parses the embedded templates and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Ingester == nil || cfg.Store == nil || cfg.Feed == nil {
		return nil, fmt.Errorf("console: Ingester, Store and Feed are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.EventTypes) == 0 {
		cfg.EventTypes = cairn.DefaultEventTypes
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}, started: cfg.Now()}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: parse layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: list templates: %w", err)
	}
	for _, name := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if page == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, name)
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", name, err)
		}
		c.pages[page] = t
	}
	return c, nil
}

// Routes returns the console's routes: net/http pattern → handler.
func (c *Console) Routes() map[string]http.Handler {
	assets, _ := fs.Sub(assetFS, "assets") // cannot fail: the directory is embedded
	files := http.StripPrefix("/console/assets/", http.FileServerFS(assets))
	return map[string]http.Handler{
		"GET /{$}":                    http.RedirectHandler("/console", http.StatusFound),
		"GET /console":                c.page(c.overview, false),
		"GET /console/live":           c.page(c.livePage, false),
		"GET /console/users":          c.page(c.usersPage, false),
		"GET /console/users/{userId}": c.page(c.journeyPage, false),
		"GET /console/insights":       c.page(c.insightsPage, false),
		"GET /console/accounts":       c.page(c.accountsPage, true),
		"POST /console/accounts":      c.page(c.createAccount, true),
		"POST /console/accounts/{id}": c.page(c.updateAccount, true),
		"GET /console/sources":        c.page(c.sourcesPage, true),
		"POST /console/sources":       c.page(c.createSource, true),
		"POST /console/sources/{id}":  c.page(c.updateSource, true),
		"GET /console/assets/{file...}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=300")
			files.ServeHTTP(w, r)
		}),
	}
}

// view is what every page template receives.
type view struct {
	Title     string
	Nav       string // the current section, for the menu
	Principal *cairn.Principal
	Path      string // the request's path and query, for the sign-in form
	Notice    string
	Error     string
	Data      any
}

// pageFunc renders one page: it returns the template name, the status
// and the view's Data, or an error.
type pageFunc func(w http.ResponseWriter, r *http.Request, v *view) (string, int, error)

// page wraps a page: the sign-in form without a session, 403 for members
// on admin pages, same-origin checks on posts, and rendering.
func (c *Console) page(fn pageFunc, admin bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		v := &view{Principal: cairn.PrincipalFromContext(r.Context()), Path: r.URL.RequestURI(), Notice: r.URL.Query().Get("notice")}
		if v.Principal == nil {
			c.signIn(w, r, v)
			return
		}
		if admin && !v.Principal.IsAdmin() {
			v.Title, v.Data = "Admins only", "This view is for admins. Ask an admin of this Cairn for the admin role."
			c.render(w, r, "forbidden", http.StatusForbidden, v)
			return
		}
		if r.Method == http.MethodPost && !sameOrigin(r) {
			v.Title, v.Data = "Refused", "This form was not sent from this Cairn's own pages."
			c.render(w, r, "forbidden", http.StatusForbidden, v)
			return
		}
		name, status, err := fn(w, r, v)
		if err != nil {
			c.fail(w, r, v, err)
			return
		}
		if name == "" {
			return // the page answered itself (redirect, fragment)
		}
		c.render(w, r, name, status, v)
	})
}

// sameOrigin reports whether a form post comes from this site's pages: its
// Origin (or, without one, Sec-Fetch-Site) says so.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin"
}

// signIn renders the sign-in (or first sign-up) form.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request, v *view) {
	data := struct{ SignupOpen, FirstAccount bool }{}
	if a := c.cfg.Accounts; a != nil {
		data.SignupOpen = a.SignupOpen()
		if has, err := a.HasUsers(r.Context()); err == nil && !has {
			data.FirstAccount = data.SignupOpen
		}
	}
	v.Title, v.Data = "Sign in", data
	if data.FirstAccount {
		v.Title = "Create the first account"
	}
	c.render(w, r, "signin", http.StatusOK, v)
}

// fail renders an error page for err, logging internal errors.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	status := http.StatusInternalServerError
	switch cairn.ErrorCode(err) {
	case cairn.EINVALID:
		status = http.StatusBadRequest
	case cairn.EFORBIDDEN:
		status = http.StatusForbidden
	case cairn.ENOTFOUND:
		status = http.StatusNotFound
	case cairn.EUNAVAILABLE:
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusInternalServerError {
		c.cfg.Logger.ErrorContext(r.Context(), "console page failed", "path", r.URL.Path, "err", err)
	}
	v.Title, v.Data = http.StatusText(status), cairn.ErrorMessage(err)
	c.render(w, r, "forbidden", status, v)
}

// render executes a page into a buffer, so a template error becomes a 500
// rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, status int, v *view) {
	t := c.pages[name]
	var buf bytes.Buffer
	if t == nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: no such template", "name", name)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: render", "name", name, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // a failed write means the client went away
}

// renderFragment executes one named template alone (endless scroll).
func (c *Console) renderFragment(w http.ResponseWriter, r *http.Request, page, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: render fragment", "name", name, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes()) // a failed write means the client went away
}
