package main

// Headless Chromium against a real Cairn: the API explorer at /api-docs
// renders every operation of the document from the embedded assets alone.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chromiumPath returns the Chromium binary (CAIRN_CHROMIUM, set by
// scripts/ci.d/30-chromium.sh, or /usr/bin/chromium). Without one the test
// is skipped, except in CI where it must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("CAIRN_CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s (scripts/ci.d/30-chromium.sh installs it): %v", bin, err)
		}
		t.Skipf("chromium not found at %s; run scripts/ci.d/30-chromium.sh or set CAIRN_CHROMIUM", bin)
	}
	return bin
}

// chromiumArgs are the flags every headless run uses, with a fresh profile.
func chromiumArgs(t *testing.T) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
	}
}

// runChromium runs a headless Chromium to completion (bounded by two
// minutes) and returns its standard output. Its whole process group is
// killed if it overruns.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(chromiumArgs(t), args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String(), 30))
	}
	return out
}

func TestDocsSwaggerUIInChromium(t *testing.T) {
	bin := chromiumPath(t)
	p := startMain(t, "")

	// The operations the document declares, as Swagger UI names them.
	resp, err := p.client.Get(p.URL + "/api-docs.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api-docs.json: %d %v", resp.StatusCode, err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Tags        []string `json:"tags"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.OperationID == "" || len(op.Tags) == 0 {
				t.Fatalf("%s %s: no operationId or tag", method, path)
			}
			want = append(want, "operations-"+op.Tags[0]+"-"+op.OperationID)
		}
	}
	if len(want) < 14 {
		t.Fatalf("only %d operations in the document", len(want))
	}

	// The rendered page: Swagger UI fetched /api-docs.json and drew every
	// operation. virtual-time-budget lets its scripts finish first.
	dom := string(runChromium(t, bin, "--virtual-time-budget=15000", "--dump-dom", p.URL+"/api-docs"))
	if strings.Contains(dom, "Failed to load API definition") {
		t.Fatalf("Swagger UI could not load the document:\n%s", clipDOM(dom))
	}
	rendered := map[string]bool{}
	for _, m := range regexp.MustCompile(`id="(operations-[^"]+)"`).FindAllStringSubmatch(dom, -1) {
		rendered[m[1]] = true
	}
	for _, id := range want {
		if !rendered[id] {
			t.Errorf("operation %s is not rendered", id)
		}
	}
	for _, text := range []string{"/users/{userId}/journey", "/api/auth/sign-in/email", "202 means durable", "OAS 3.1"} {
		if !strings.Contains(dom, text) && !strings.Contains(dom, strings.ReplaceAll(text, "/", "/\u200b")) {
			t.Errorf("the rendered page lacks %q", text)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", clipDOM(dom))
	}

	// A screenshot, as a CI artifact.
	shot := filepath.Join(t.TempDir(), "api-docs.png")
	runChromium(t, bin, "--virtual-time-budget=15000", "--window-size=1280,2400", "--screenshot="+shot, p.URL+"/api-docs")
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("no PNG screenshot at %s: %v", shot, err)
	}
	if len(png) < 50_000 {
		t.Errorf("screenshot is only %d bytes: the page looks blank", len(png))
	}
	t.Logf("screenshot of /api-docs: %s (%d bytes)", shot, len(png))
	if dir := os.Getenv("CAIRN_ARTIFACTS_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			kept := filepath.Join(dir, "api-docs.png")
			if err := os.WriteFile(kept, png, 0o644); err == nil {
				t.Logf("screenshot kept at %s", kept)
			}
		}
	}
}

// clipDOM shortens a DOM dump for a failure message.
func clipDOM(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "…"
	}
	return s
}

// TestDocsTryItOutInChromium uses the explorer as a person would, through
// the Chrome DevTools protocol: in Swagger UI it calls the journey without a
// session (401), signs up with "Try it out", sends an event, and reads the
// journey back with the session cookie the browser kept.
func TestDocsTryItOutInChromium(t *testing.T) {
	bin := chromiumPath(t)
	p := startCairnAtBaseURL(t)

	b := startBrowser(t, bin)
	page := b.open(p.URL + "/api-docs")
	page.waitFor(`!!document.querySelector("#operations-Auth-signUpEmail")`)
	page.eval(tryItOutJS)

	call := func(op string, body string, params map[string]string) (status int, text string) {
		t.Helper()
		ps, _ := json.Marshal(params)
		var res struct {
			Status string `json:"status"`
			Text   string `json:"text"`
		}
		page.evalInto(&res, "tryItOut("+strconv.Quote(op)+", "+strconv.Quote(body)+", "+string(ps)+")")
		n, err := strconv.Atoi(res.Status)
		if err != nil {
			t.Fatalf("%s: no status in the rendered response: %+v", op, res)
		}
		return n, res.Text
	}

	user := "ui-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if st, text := call("getJourney", "", map[string]string{"userId": user}); st != http.StatusUnauthorized {
		t.Fatalf("journey before sign-in: %d, want 401\n%s", st, text)
	}
	signUp := `{"email":"` + user + `@example.com","password":"correct-horse-9","name":"Swagger User"}`
	if st, text := call("signUpEmail", signUp, nil); st != http.StatusOK {
		t.Fatalf("sign-up: %d, want 200\n%s", st, text)
	}
	event := `{"eventId":"` + user + `-1","userId":"` + user + `","sessionId":"s1","type":"page_view","payload":{"url":"/docs"}}`
	if st, text := call("ingestEvents", event, nil); st != http.StatusAccepted || !strings.Contains(text, user+"-1") {
		t.Fatalf("POST /events: %d, want 202 with the eventId\n%s", st, text)
	}
	// The event is readable within one flush interval; poll for it.
	waitFor(t, 15*time.Second, "the event in the journey", func() bool {
		st, text := call("getJourney", "", map[string]string{"userId": user})
		if st != http.StatusOK {
			t.Fatalf("journey after sign-in: %d, want 200 (the session cookie was not sent?)\n%s", st, text)
		}
		return strings.Contains(text, user+"-1")
	})
}

// startCairnAtBaseURL starts Cairn with BETTER_AUTH_URL set to the address
// it listens on, so a browser (or a request with that Origin) passes the
// origin checks of the account routes.
func startCairnAtBaseURL(t *testing.T) *proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return startMain(t, "", "PORT="+port, "BETTER_AUTH_URL=http://127.0.0.1:"+port)
}

// tryItOutJS drives one operation in Swagger UI: open it, "Try it out",
// fill the body and parameters, "Execute", and return the rendered status
// and response text.
const tryItOutJS = `
window.tryItOut = async function (opId, body, params) {
  const until = async (f, what) => {
    for (let i = 0; i < 200; i++) {
      const v = f();
      if (v) return v;
      await new Promise(r => setTimeout(r, 50));
    }
    throw new Error("timed out waiting for " + what + " in " + opId);
  };
  const setValue = (el, v) => {
    const proto = el.tagName === "TEXTAREA" ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, "value").set.call(el, v);
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("change", { bubbles: true }));
  };
  const op = await until(() => document.querySelector(".opblock[id$='-" + opId + "']"), "the operation");
  if (!op.classList.contains("is-open")) {
    (op.querySelector(".opblock-summary-control") || op.querySelector(".opblock-summary")).click();
  }
  const tryBtn = await until(() => op.querySelector(".try-out__btn"), "Try it out");
  if (!tryBtn.classList.contains("cancel")) tryBtn.click();
  await until(() => op.querySelector("button.execute"), "Execute");
  const clear = op.querySelector("button.btn-clear");
  if (clear) clear.click();
  // React may re-render a field after it is set: set until it sticks.
  const fill = async (sel, value, what) => {
    await until(() => {
      const el = op.querySelector(sel);
      if (!el) return false;
      if (el.value === value) return true;
      setValue(el, value);
      return false;
    }, what);
  };
  if (body) await fill("textarea.body-param__text", body, "the body");
  for (const [name, value] of Object.entries(params || {})) {
    await fill("tr[data-param-name='" + name + "'] input", value, "parameter " + name);
  }
  await new Promise(r => setTimeout(r, 100));
  op.querySelector("button.execute").click();
  const cell = await until(() => op.querySelector(".live-responses-table tbody .response-col_status"), "the response");
  const table = op.querySelector(".live-responses-table");
  return { status: cell.textContent.trim(), text: table.textContent };
};
true`

// browser is a headless Chromium driven over --remote-debugging-pipe.
type browser struct {
	t       *testing.T
	w       *os.File
	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply
	// onEvent, when set, is called (on the reading goroutine, so it must
	// not send commands) with every DevTools event, e.g. Network.*.
	onEvent func(method string, params json.RawMessage)
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startBrowser starts Chromium with the DevTools protocol on a pipe (fd 3
// in, fd 4 out) and kills its process group at the end of the test.
func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(chromiumArgs(t), "--remote-debugging-pipe", "--window-size=1280,2000", "about:blank")...)
	cmd.ExtraFiles = []*os.File{inR, outW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// The child has its own copies of its pipe ends.
	if err := inR.Close(); err != nil {
		t.Error(err)
	}
	if err := outW.Close(); err != nil {
		t.Error(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // chromium is killed at the end of the test: its exit status says nothing
		close(done)
	}()
	b := &browser{t: t, w: inW, waiting: map[int]chan cdpReply{}}
	go b.read(outR)
	t.Cleanup(func() {
		if err := inW.Close(); err != nil {
			t.Error(err)
		}
		// ESRCH: the group already exited (chromium may leave when its pipe closes).
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill chromium: %v", err)
		}
		<-done
		if err := outR.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", tail(stderr.String(), 20))
		}
	})
	return b
}

// read dispatches the replies to commands, and events to onEvent.
func (b *browser) read(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			cdpReply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil {
			continue
		}
		if m.ID == 0 {
			b.mu.Lock()
			on := b.onEvent
			b.mu.Unlock()
			if on != nil && m.Method != "" {
				on(m.Method, m.Params)
			}
			continue
		}
		b.mu.Lock()
		ch := b.waiting[m.ID]
		delete(b.waiting, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

// send runs one DevTools command (in a page session when session != "").
func (b *browser) send(session, method string, params any, result any) {
	b.t.Helper()
	if err := b.trySend(session, method, params, result); err != nil {
		b.t.Fatal(err)
	}
}

// cdpError is an error answered by the browser to a DevTools command.
type cdpError struct{ method, message string }

func (e *cdpError) Error() string { return "cdp " + e.method + ": " + e.message }

// trySend is send returning the failure instead of failing the test: a
// *cdpError for an error the browser answered.
func (b *browser) trySend(session, method string, params any, result any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	enc, _ := json.Marshal(msg)
	if _, err := b.w.Write(append(enc, 0)); err != nil {
		return fmt.Errorf("cdp %s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return &cdpError{method: method, message: r.Error.Message}
		}
		if result != nil {
			if err := json.Unmarshal(r.Result, result); err != nil {
				return fmt.Errorf("cdp %s: %w", method, err)
			}
		}
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("cdp %s: no reply within 60s", method)
	}
}

type tab struct {
	b       *browser
	session string
}

// open creates a tab showing url.
func (b *browser) open(url string) *tab {
	var target struct{ TargetID string }
	b.send("", "Target.createTarget", map[string]any{"url": url}, &target)
	var att struct{ SessionID string }
	b.send("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	return &tab{b: b, session: att.SessionID}
}

// evalInto evaluates a JavaScript expression in the page, awaiting a
// promise, and decodes its JSON value into v.
func (p *tab) evalInto(v any, expr string) {
	p.b.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	p.b.send(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &res)
	if e := res.ExceptionDetails; e != nil {
		msg := e.Text
		if e.Exception != nil {
			msg = e.Exception.Description
		}
		p.b.t.Fatalf("javascript %.80q: %s", expr, msg)
	}
	if v != nil {
		if err := json.Unmarshal(res.Result.Value, v); err != nil {
			p.b.t.Fatalf("javascript %.80q returned %s: %v", expr, res.Result.Value, err)
		}
	}
}

func (p *tab) eval(expr string) { p.evalInto(nil, expr) }

// waitFor polls a JavaScript condition until it holds (30 s at most). While
// the page navigates (a form submit, a redirect) the browser answers that
// the page's context is gone; that counts as "not yet".
func (p *tab) waitFor(cond string) {
	p.b.t.Helper()
	waitFor(p.b.t, 30*time.Second, cond, func() bool {
		var res struct {
			Result struct {
				Value bool `json:"value"`
			} `json:"result"`
		}
		err := p.b.trySend(p.session, "Runtime.evaluate", map[string]any{
			"expression": "(() => { try { return !!(" + cond + ") } catch (e) { return false } })()", "returnByValue": true}, &res)
		var ce *cdpError
		if errors.As(err, &ce) {
			return false // navigating: no context to evaluate in yet
		} else if err != nil {
			p.b.t.Fatal(err)
		}
		return res.Result.Value
	})
}
