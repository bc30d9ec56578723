package main

// The web console in a real headless Chromium against a real Cairn started
// with no auth settings: first sign-up and sign-in through the form on
// localhost and 127.0.0.1, the overview's numbers, an event appearing in
// the live tail, a journey's sessions and endless scroll, account
// administration, and a member refused the admin views (UI and API).
// Screenshots of each view at 1280 and 400 px go to the test's artifact
// directory (go test -artifacts), or CAIRN_SCREENSHOTS when set; their
// paths are logged.

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// newContextTab opens url in a fresh browser context (its own cookies).
func (b *browser) newContextTab(url string) *tab {
	var ctx struct{ BrowserContextID string }
	b.send("", "Target.createBrowserContext", map[string]any{}, &ctx)
	var target struct{ TargetID string }
	b.send("", "Target.createTarget", map[string]any{"url": url, "browserContextId": ctx.BrowserContextID}, &target)
	var att struct{ SessionID string }
	b.send("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	return &tab{b: b, session: att.SessionID}
}

// navigate loads url in the tab and waits until the page has loaded.
func (p *tab) navigate(url string) {
	p.b.t.Helper()
	p.b.send(p.session, "Page.navigate", map[string]any{"url": url}, nil)
	p.waitFor(`location.href === ` + strconv.Quote(url) + ` && document.readyState === "complete"`)
}

// screenshot saves the page at the given width as dir/name-width.png.
func (p *tab) screenshot(dir, name string, width, height int) {
	p.b.t.Helper()
	p.b.send(p.session, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}, nil)
	// Let layout settle at the new width before capturing.
	p.evalInto(nil, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`)
	var shot struct{ Data string }
	p.b.send(p.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		p.b.t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.b.t.Fatal(err)
	}
	p.b.t.Logf("screenshot: %s", path)
	p.b.send(p.session, "Emulation.clearDeviceMetricsOverride", map[string]any{}, nil)
}

// fillAndSubmit fills the sign-in form (mode "in" or "up") and submits it.
func (p *tab) signInForm(mode, email, password string) {
	p.b.t.Helper()
	// Wait for the console script to handle the form (it is deferred).
	p.waitFor(`document.querySelector("[data-signin][data-ready]")`)
	p.eval(`(() => {
		const box = document.querySelector("[data-signin]");
		if (box.dataset.mode !== ` + strconv.Quote(mode) + `) box.querySelector("[data-mode-switch=` + mode + `]").click();
		const f = document.getElementById("auth-form");
		f.email.value = ` + strconv.Quote(email) + `;
		f.password.value = ` + strconv.Quote(password) + `;
		if (f.name) f.name.value = "Console Tester";
		f.requestSubmit();
	})()`)
}

func screenshotDir(t *testing.T) string {
	if d := os.Getenv("CAIRN_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

func TestConsoleInChromium(t *testing.T) {
	bin := chromiumPath(t)
	port := freePort(t)
	// No BETTER_AUTH_URL: a fresh development server.
	p := startCairn(t, "", "PORT="+port)
	local, loopback := "http://localhost:"+port, "http://127.0.0.1:"+port
	shots := screenshotDir(t)
	b := startBrowser(t, bin)
	const adminEmail, password = "admin@example.com", "correct-horse-9"

	// Events to look at: a journey of 130 events in 3 sessions, and a few
	// others of different types.
	var batch []string
	base := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
	for i := range 130 {
		batch = append(batch, fmt.Sprintf(`{"eventId":"j-%03d","userId":"journey-user","sessionId":"sess-%d","type":"page_view","payload":{"url":"/p/%d","n":%d},"occurredAt":%q}`,
			i, i/50, i, i, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)))
	}
	for i, typ := range []string{"search", "purchase", "add_to_cart", "button_click"} {
		batch = append(batch, fmt.Sprintf(`{"userId":"user-%d","sessionId":"s","type":%q,"payload":{"i":%d}}`, i, typ, i))
	}
	if status, _, body := p.do("POST", "/events", []byte("["+strings.Join(batch, ",")+"]")); status != 202 {
		t.Fatalf("POST /events: %d %s", status, body)
	}
	p.do("POST", "/events", []byte(`{"userId":"u","sessionId":"s","type":"not-a-type"}`)) // one rejection

	// First visit, on localhost, to a deep link: the first-account form;
	// after signing up the browser is back on that view, as the admin.
	first := b.open(local + "/console/live")
	first.waitFor(`document.querySelector("[data-signin]") && document.title.startsWith("Create the first account")`)
	first.screenshot(shots, "signin", 1280, 800)
	first.screenshot(shots, "signin", 400, 800)
	first.signInForm("up", adminEmail, password)
	first.waitFor(`document.querySelector("[data-live]") && document.querySelector(".badge").textContent === "admin"`)

	// The same account signs in on the other loopback name (its own cookies).
	tb := b.newContextTab(loopback + "/console")
	tb.waitFor(`document.querySelector("[data-signin]") && document.querySelector("[data-signin]").dataset.mode === "in"`)
	tb.signInForm("in", adminEmail, password)
	tb.waitFor(`document.querySelector(".tiles")`)

	// Accounts (admin): create a member through the form.
	const memberEmail = "member@example.com"
	tb.navigate(loopback + "/console/accounts")
	tb.eval(`(() => { const f = document.querySelector('form[action="/console/accounts"]');
		f.email.value = "` + memberEmail + `"; f.name.value = "A Member"; f.password.value = "` + password + `"; f.requestSubmit(); })()`)
	tb.waitFor(`document.querySelector(".notice") && document.querySelector(".notice").textContent.includes("` + memberEmail + `")`)

	// The member cannot reach the admin views: no menu entry, a 403 page,
	// and the admin API refuses too.
	mtab := b.newContextTab(local + "/console/accounts")
	mtab.signInForm("in", memberEmail, password)
	mtab.waitFor(`document.title.startsWith("Admins only")`)
	var member struct {
		Nav    bool
		Status int
	}
	mtab.evalInto(&member, `(async () => ({
		Nav: !!document.querySelector('header nav a[href="/console/accounts"]'),
		Status: (await fetch("/users", {credentials: "same-origin"})).status }))()`)
	if member.Nav || member.Status != 403 {
		t.Errorf("member: accounts link shown %v, GET /users %d; want hidden and 403", member.Nav, member.Status)
	}
	var posted int
	mtab.evalInto(&posted, `(async () => (await fetch("/console/accounts", {method: "POST", credentials: "same-origin",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "email=x%40example.com&name=X&password=correct-horse-9&role=admin"})).status)()`)
	if posted != 403 {
		t.Errorf("member POST /console/accounts: %d, want 403", posted)
	}
	mtab.screenshot(shots, "forbidden", 1280, 500)
	// The member's view of sources is refused too.
	mtab.navigate(local + "/console/sources")
	mtab.waitFor(`document.title.startsWith("Admins only")`)
	var apiStatus int
	mtab.evalInto(&apiStatus, `(async () => (await fetch("/api/sources", {credentials: "same-origin"})).status)()`)
	if apiStatus != 403 {
		t.Errorf("member GET /api/sources: %d, want 403", apiStatus)
	}

	p.waitDrained()
	tb.navigate(loopback + "/console")
	var tiles map[string]string
	tb.evalInto(&tiles, `Object.fromEntries([...document.querySelectorAll("[data-metric]")].map(e => [e.dataset.metric, e.textContent]))`)
	if tiles["accepted"] != "134" || tiles["stored"] != "134" || tiles["rejected"] != "1" || tiles["storedTotal"] != "134" {
		t.Errorf("overview tiles %v, want 134 accepted and stored, 1 rejected", tiles)
	}
	// Keyboard: the first Tab reaches "Skip to content", the next ones the menu.
	var focused []string
	for range 3 {
		tb.b.send(tb.session, "Input.dispatchKeyEvent", map[string]any{"type": "keyDown", "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9}, nil)
		tb.b.send(tb.session, "Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9}, nil)
		var text string
		tb.evalInto(&text, `document.activeElement.textContent.trim()`)
		focused = append(focused, text)
	}
	if strings.Join(focused, "|") != "Skip to content|Cairn|Overview" {
		t.Errorf("Tab order %q, want Skip to content, Cairn, Overview", focused)
	}
	tb.screenshot(shots, "overview", 1280, 1500)
	tb.screenshot(shots, "overview", 400, 2400)

	// Live: an event posted after the page is open appears in it.
	tb.navigate(loopback + "/console/live")
	tb.waitFor(`document.getElementById("live-status").textContent.startsWith("Live")`)
	for i := range 3 {
		body := fmt.Sprintf(`{"userId":"live-user","sessionId":"live-sess","type":"search","payload":{"query":"laptop %d"}}`, i)
		if status, _, b := p.do("POST", "/events", []byte(body)); status != 202 {
			t.Fatalf("POST /events: %d %s", status, b)
		}
	}
	tb.waitFor(`document.querySelectorAll("#live-rows tr").length === 3 && document.getElementById("live-rows").textContent.includes("live-user")`)
	tb.waitFor(`document.getAnimations().length === 0`) // the new rows' highlight has faded
	tb.screenshot(shots, "live", 1280, 700)
	tb.screenshot(shots, "live", 400, 900)
	// A filter by user: other users' events do not show.
	tb.navigate(loopback + "/console/live?userId=live-user")
	tb.waitFor(`document.getElementById("live-status").textContent.startsWith("Live")`)
	p.do("POST", "/events", []byte(`{"userId":"someone-else","sessionId":"s","type":"search"}`))
	p.do("POST", "/events", []byte(`{"userId":"live-user","sessionId":"s","type":"purchase"}`))
	tb.waitFor(`document.querySelectorAll("#live-rows tr").length === 1`)
	var liveText string
	tb.evalInto(&liveText, `document.getElementById("live-rows").textContent`)
	if strings.Contains(liveText, "someone-else") || !strings.Contains(liveText, "purchase") {
		t.Errorf("filtered live rows %q", liveText)
	}

	// Journey: sessions, newest first, and endless scroll past the first page.
	tb.navigate(loopback + "/console/users/journey-user")
	tb.waitFor(`document.querySelectorAll("ol.events li").length >= 50`)
	tb.eval(`document.querySelector("ol.events li details").open = true`)
	tb.screenshot(shots, "journey", 1280, 1100)
	tb.screenshot(shots, "journey", 400, 1400)
	// Scrolling to the end loads the older pages (50 events each).
	tb.waitFor(`(document.querySelector(".more") && document.querySelector(".more").scrollIntoView(),
		document.querySelectorAll("ol.events li").length === 130 && !document.querySelector(".more"))`)
	var sessions []string
	tb.evalInto(&sessions, `[...document.querySelectorAll("section.session")].map(s => s.dataset.session + ":" + s.querySelectorAll("li").length)`)
	if strings.Join(sessions, ",") != "sess-2:30,sess-1:50,sess-0:50" {
		t.Errorf("journey sessions %v, want sess-2:30, sess-1:50, sess-0:50 (merged across pages)", sessions)
	}
	var firstLast []string
	tb.evalInto(&firstLast, `[...document.querySelectorAll("ol.events li summary .type")].length ? [document.querySelector("ol.events li .payload").textContent, [...document.querySelectorAll("ol.events li .payload")].pop().textContent] : []`)
	if len(firstLast) != 2 || !strings.Contains(firstLast[0], `"/p/129"`) || !strings.Contains(firstLast[1], `"/p/0"`) {
		t.Errorf("journey first/last payloads %v, want /p/129 then /p/0", firstLast)
	}
	// The link to watch the user live.
	var liveHref string
	tb.evalInto(&liveHref, `[...document.querySelectorAll("a")].find(a => a.textContent === "Watch live").getAttribute("href")`)
	if liveHref != "/console/live?userId=journey-user" {
		t.Errorf("watch-live link %q", liveHref)
	}

	// Users: the tracked-users index lists the journey user with its
	// counts, and a prefix search keeps only matching users.
	tb.navigate(loopback + "/console/users")
	tb.waitFor(`document.querySelector("main table tbody tr")`)
	var journeyRow string
	tb.evalInto(&journeyRow, `(() => { const a = [...document.querySelectorAll("main table tbody a")].find(a => a.textContent === "journey-user");
		return a ? [...a.closest("tr").querySelectorAll("td")].map(td => td.textContent.trim()).join("|") : "" })()`)
	if cells := strings.Split(journeyRow, "|"); len(cells) != 5 || cells[2] != "130" || cells[3] != "3" {
		t.Errorf("users row of journey-user %q, want 130 events and 3 sessions", journeyRow)
	}
	tb.screenshot(shots, "users", 1280, 700)
	tb.screenshot(shots, "users", 400, 1000)
	tb.eval(`(() => { const f = document.querySelector('input[name="prefix"]').form; f.prefix.value = "user-"; f.requestSubmit(); })()`)
	tb.waitFor(`location.search.includes("prefix=user-") && document.querySelector("main table tbody a")`)
	var prefixed []string
	tb.evalInto(&prefixed, `[...document.querySelectorAll("main table tbody a")].map(a => a.textContent)`)
	if strings.Join(prefixed, ",") != "user-0,user-1,user-2,user-3" {
		t.Errorf("users with prefix user-: %v, want user-0..user-3", prefixed)
	}

	// Accounts (admin): the list, and a role change.
	tb.navigate(loopback + "/console/accounts")
	tb.eval(`(() => { const f = [...document.querySelectorAll("form.inline")].find(f => f.email.value === "` + memberEmail + `");
		f.role.value = "admin"; f.requestSubmit(); })()`)
	tb.waitFor(`document.querySelector(".notice") && document.querySelector(".notice").textContent.includes("` + memberEmail + ` is now admin")`)
	tb.screenshot(shots, "accounts", 1280, 700)
	tb.screenshot(shots, "accounts", 400, 1100)

	// Sources (admin): create one through the form; its write key is shown
	// with snippets that carry it, and rotating replaces it.
	tb.navigate(loopback + "/console/sources")
	tb.eval(`(() => { const f = document.querySelector('form[action="/console/sources"]'); f.name.value = "web shop"; f.requestSubmit(); })()`)
	tb.waitFor(`document.querySelector(".notice") && document.querySelector("section.source code.key")`)
	var key string
	tb.evalInto(&key, `document.querySelector("section.source code.key").textContent`)
	var snippetsCarryKey bool
	tb.evalInto(&snippetsCarryKey, `[...document.querySelectorAll("section.source pre.snippet")].length === 4 &&
		[...document.querySelectorAll("section.source pre.snippet")].every(p => p.textContent.includes(`+strconv.Quote(key)+`))`)
	if len(key) != 32 || !snippetsCarryKey {
		t.Errorf("source write key %q; all four snippets carry it: %v", key, snippetsCarryKey)
	}
	tb.eval(`window.confirm = () => true; document.querySelector('form input[value="rotate"]').form.requestSubmit()`)
	tb.waitFor(`document.querySelector(".notice") && document.querySelector(".notice").textContent.includes("New write key") &&
		document.querySelector("section.source code.key").textContent !== ` + strconv.Quote(key))

	// The (rotated) key then works on POST /events and the tracking API,
	// and those events show in Live filtered to that source, while an
	// event without a key stays out.
	var srcID string
	tb.evalInto(&key, `document.querySelector("section.source code.key").textContent`)
	tb.evalInto(&srcID, `document.querySelector("section.source").id`)
	tb.navigate(loopback + "/console/live?sourceId=" + srcID)
	tb.waitFor(`document.getElementById("live-status").textContent.startsWith("Live")`)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
	if status, _, b := p.do("POST", "/events", []byte(`{"userId":"no-source-user","sessionId":"s","type":"search"}`)); status != 202 {
		t.Fatalf("POST /events without a key: %d %s", status, b)
	}
	if status, _, b := p.do("POST", "/events", []byte(`{"userId":"keyed-user","sessionId":"s","type":"search","payload":{"via":"events"}}`), "Authorization", basic); status != 202 {
		t.Errorf("POST /events with the source's key: %d %s, want 202", status, b)
	}
	if status, _, b := p.do("POST", "/v1/track", []byte(`{"userId":"tracked-user","event":"Signed Up","properties":{"plan":"pro"}}`), "Authorization", basic); status != 200 {
		t.Errorf("POST /v1/track with the source's key: %d %s, want 200", status, b)
	}
	tb.waitFor(`document.querySelectorAll("#live-rows tr").length === 2`)
	var sourceRows string
	tb.evalInto(&sourceRows, `document.getElementById("live-rows").textContent`)
	if !strings.Contains(sourceRows, "keyed-user") || !strings.Contains(sourceRows, "tracked-user") || strings.Contains(sourceRows, "no-source-user") {
		t.Errorf("live rows filtered to source %s: %q, want keyed-user and tracked-user only", srcID, sourceRows)
	}
	// An identify with an anonymous id and traits: the journey view shows
	// the merged id and the traits.
	if status, _, b := p.do("POST", "/v1/identify", []byte(`{"userId":"tracked-user","anonymousId":"anon-7","traits":{"plan":"pro"}}`), "Authorization", basic); status != 200 {
		t.Errorf("POST /v1/identify: %d %s, want 200", status, b)
	}
	if status, _, b := p.do("POST", "/v1/track", []byte(`{"anonymousId":"anon-7","event":"Viewed Pricing"}`), "Authorization", basic); status != 200 {
		t.Errorf("POST /v1/track anonymous: %d %s, want 200", status, b)
	}
	// Wait until the pipeline stored them (the profile lists the link).
	waitFor(t, 30*time.Second, "tracked-user's profile lists anon-7 and its merged journey has 3 events", func() bool {
		var got string
		tb.evalInto(&got, `(async () => {
			const p = await fetch("/users/tracked-user", {credentials: "same-origin"});
			const j = await fetch("/users/tracked-user/journey", {credentials: "same-origin"});
			return p.ok && j.ok ? (await p.json()).anonymousIds.join(",") + ":" + (await j.json()).events.length : "" })()`)
		return got == "anon-7:3"
	})
	tb.navigate(loopback + "/console/users/tracked-user")
	tb.waitFor(`document.querySelector("[data-merged-ids]") && document.querySelector("[data-trait=plan]")`)
	var merged, plan string
	tb.evalInto(&merged, `document.querySelector("[data-merged-ids]").textContent`)
	tb.evalInto(&plan, `document.querySelector("[data-trait=plan]").textContent`)
	if merged != "anon-7" || plan != `"pro"` {
		t.Errorf("journey of tracked-user: merged ids %q, trait plan %q; want anon-7 and \"pro\"", merged, plan)
	}
	// Those events came without a session id: the journey groups them by
	// their derived session, the one the journey API returns.
	var groups struct{ View, API []string }
	tb.evalInto(&groups, `(async () => {
		const j = await (await fetch("/users/tracked-user/journey", {credentials: "same-origin"})).json();
		return {View: [...document.querySelectorAll("section.session")].map(s => s.dataset.session + ":" + s.querySelectorAll("li").length),
			API: [...new Set(j.events.map(e => e.sessionId))].map(id => id + ":" + j.events.filter(e => e.sessionId === id).length)} })()`)
	if len(groups.View) != 1 || !strings.HasPrefix(groups.View[0], cairn.DerivedSessionPrefix) || !strings.HasSuffix(groups.View[0], ":3") ||
		strings.Join(groups.View, ",") != strings.Join(groups.API, ",") {
		t.Errorf("journey of tracked-user: sessions %v, want one derived session of 3 events, as the API's %v", groups.View, groups.API)
	}
	tb.screenshot(shots, "journey-merged", 1280, 800)
	// The Sources view counts them in its events/s.
	tb.navigate(loopback + "/console/sources")
	tb.waitFor(`document.querySelector("[data-source-rate]") && document.querySelector("[data-source-rate]").textContent !== "0" && document.querySelector("svg.spark")`)
	// Its screenshot is taken now, with events counted.
	tb.eval(`document.querySelector("details.snippets").open = true`)
	tb.screenshot(shots, "sources", 1280, 1300)
	tb.screenshot(shots, "sources", 400, 1800)

	// An open live stream does not hold up shutdown.
	tb.navigate(loopback + "/console/live")
	tb.waitFor(`document.getElementById("live-status").textContent.startsWith("Live")`)
	start := time.Now()
	p.Stop()
	if d := time.Since(start); d > 5*time.Second || strings.Contains(p.Logs(), "in-flight requests cut short") {
		t.Errorf("shutdown with a live stream open took %v (log: cut short = %v)", d, strings.Contains(p.Logs(), "in-flight requests cut short"))
	}
}

// freePort returns a free loopback port.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}
