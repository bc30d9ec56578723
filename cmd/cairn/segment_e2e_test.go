package main

// End-to-end tests with the real Segment SDKs against a real Cairn (issue
// 10, "Real clients, in CI"): @segment/analytics-node 3.1.0 run by Node and
// analytics-go v3.3.0 in this process (this file), @segment/analytics-next
// 1.84.3 in headless Chromium (segment_browser_e2e_test.go). Each test signs
// up the first (admin) account, creates a source with the admin API, lets
// the SDK send track/identify/page/group/alias with the source's write key,
// and proves through the journey API that every message it sent is stored
// exactly once with the tracking API's mapping (checkStored). A 503 forced
// by a full backlog and a 429 from the source's rate limit are retried by
// the SDKs without duplicates. The basic cases run against the real binary
// (embedded store) and against Main on MongoDB (FerretDB), the others
// against Main in process. Each test logs a table per SDK: messages sent,
// stored, duplicates, requests, retries and the statuses seen.
//
// The Node and browser SDKs live in the npm project test/segment-clients
// (scripts/ci.d/50-segment-clients.sh installs it and exports
// CAIRN_SEGMENT_CLIENTS_DIR). Without it, or without Node or Chromium, the
// tests skip locally and fail under CI=true.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/mongo/mongotest"
	analytics "github.com/segmentio/analytics-go/v3"
)

// segmentClientsDir returns the installed test/segment-clients project.
// Without it the test is skipped, except in CI where it must run.
func segmentClientsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CAIRN_SEGMENT_CLIENTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "test", "segment-clients")
	}
	for _, pkg := range []string{"analytics-node", "analytics-next"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@segment", pkg, "package.json")); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("@segment/%s not installed in %s (scripts/ci.d/50-segment-clients.sh runs npm ci): %v", pkg, dir, err)
			}
			t.Skipf("@segment/%s not installed in %s: run `source scripts/ci.d/50-segment-clients.sh`", pkg, dir)
		}
	}
	return dir
}

// nodePath returns the node binary; skipped without one, except in CI.
func nodePath(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node not found (scripts/ci.d/20-node.sh installs it): %v", err)
		}
		t.Skipf("node not found: %v", err)
	}
	return node
}

// sdkMessage is one message an SDK sent, as the SDK reported it (a JSON
// null is "").
type sdkMessage struct {
	Index       int    `json:"index"`
	Type        string `json:"type"`
	MessageID   string `json:"messageId"`
	UserID      string `json:"userId"`
	AnonymousID string `json:"anonymousId"`
	Event       string `json:"event"`
	Timestamp   string `json:"timestamp"`
	Failed      string `json:"failed"`
}

// sdkRow is one line of an SDK's table.
type sdkRow struct {
	Case                                        string
	Sent, Stored, Duplicates, Requests, Retries int
	Statuses                                    map[int]int
}

// sdkTable collects the rows of one SDK's subtests and logs them when the
// parent test ends.
type sdkTable struct {
	mu   sync.Mutex
	rows []sdkRow
}

// newSDKTable returns a table that t logs at its end.
func newSDKTable(t *testing.T, sdk string) *sdkTable {
	tb := &sdkTable{}
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		var b strings.Builder
		fmt.Fprintf(&b, "%s against Cairn:\n", sdk)
		fmt.Fprintf(&b, "| %-18s | %4s | %6s | %10s | %8s | %7s | %-22s |\n", "case", "sent", "stored", "duplicates", "requests", "retries", "statuses")
		fmt.Fprintf(&b, "|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 20), strings.Repeat("-", 6), strings.Repeat("-", 8),
			strings.Repeat("-", 12), strings.Repeat("-", 10), strings.Repeat("-", 9), strings.Repeat("-", 24))
		for _, r := range tb.rows {
			var st []string
			for _, code := range slices.Sorted(maps.Keys(r.Statuses)) {
				st = append(st, fmt.Sprintf("%d×%d", code, r.Statuses[code]))
			}
			fmt.Fprintf(&b, "| %-18s | %4d | %6d | %10d | %8d | %7d | %-22s |\n", r.Case, r.Sent, r.Stored, r.Duplicates, r.Requests, r.Retries, strings.Join(st, " "))
		}
		t.Log(b.String())
	})
	return tb
}

func (tb *sdkTable) add(r sdkRow) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rows = append(tb.rows, r)
}

// sourceBody is a source as the admin API returns it.
type sourceBody struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	WriteKey  string `json:"writeKey"`
	Enabled   bool   `json:"enabled"`
	RateLimit struct {
		EventsPerSecond int `json:"eventsPerSecond"`
		Burst           int `json:"burst"`
	} `json:"rateLimit"`
}

// createSource creates a source with the admin API (p's client must carry
// an admin session: the first account signed up). eventsPerSecond 0 is
// unlimited.
func (p *proc) createSource(name string, eventsPerSecond, burst int) sourceBody {
	p.t.Helper()
	body := fmt.Sprintf(`{"name":%q,"rateLimit":{"eventsPerSecond":%d,"burst":%d}}`, name, eventsPerSecond, burst)
	status, _, b := p.do("POST", "/api/sources", []byte(body))
	if status != http.StatusCreated {
		p.t.Fatalf("POST /api/sources: %d %s", status, b)
	}
	src := decode[sourceBody](p.t, b)
	if src.ID == "" || len(src.WriteKey) < 22 || !src.Enabled || src.Name != name {
		p.t.Fatalf("POST /api/sources: unexpected source %s", b)
	}
	return src
}

// testIDs are the user, anonymous and group ids of one test run, unique so
// that a journey holds only what this run sent.
type testIDs struct{ User, Anon, Group string }

func newTestIDs(prefix string) testIDs {
	n := strconv.FormatInt(time.Now().UnixNano(), 36)
	return testIDs{User: prefix + "-user-" + n, Anon: prefix + "-anon-" + n, Group: prefix + "-group-" + n}
}

// importedAt is the client timestamp of the "Imported" track call: an
// import of 2024 data must stay in 2024.
const importedAt = "2024-03-04T05:06:07.890Z"

// journeyEvents walks user's whole journey (every page) and returns its
// events as JSON objects.
func (p *proc) journeyEvents(user string) []map[string]any {
	p.t.Helper()
	var out []map[string]any
	path := "/users/" + url.PathEscape(user) + "/journey?limit=100"
	for range 1000 {
		status, _, b := p.do("GET", path, nil)
		if status != http.StatusOK {
			p.t.Fatalf("GET %s: %d %s", path, status, b)
		}
		var j struct {
			Events     []map[string]any `json:"events"`
			NextCursor *string          `json:"nextCursor"`
		}
		if err := json.Unmarshal(b, &j); err != nil {
			p.t.Fatalf("GET %s: %v in %s", path, err, b)
		}
		out = append(out, j.Events...)
		if j.NextCursor == nil {
			return out
		}
		path = "/users/" + url.PathEscape(user) + "/journey?limit=100&cursor=" + url.QueryEscape(*j.NextCursor)
	}
	p.t.Fatal("journey pagination does not end")
	return nil
}

// wantUserID is the Cairn userId of a message: userId, else anonymousId.
func (m sdkMessage) wantUserID() string {
	if m.UserID != "" {
		return m.UserID
	}
	return m.AnonymousID
}

// wantType is the Cairn type of a message: the event name for track (a
// name starting with "$" gets one more "$"), "$" + the call otherwise.
func (m sdkMessage) wantType() string {
	if m.Type == "track" {
		if strings.HasPrefix(m.Event, "$") {
			return "$" + m.Event
		}
		return m.Event
	}
	return "$" + m.Type
}

// checkStored proves that every message the SDK sent between sentFrom and
// sentTo is stored exactly once, with the tracking API's mapping: eventId
// = messageId, userId = userId else anonymousId, type, occurredAt
// skew-corrected (close to the client timestamp, later by at most the time
// the SDK spent retrying), the payload the message as sent without the write
// key, and sourceId = the source. It waits
// until the messages are readable and the backlog is empty, and returns
// how many were stored and how many extra copies were found.
func checkStored(t *testing.T, p *proc, src sourceBody, msgs []sdkMessage, sentFrom, sentTo time.Time) (stored, duplicates int) {
	t.Helper()
	byUser := map[string][]sdkMessage{}
	for _, m := range msgs {
		if m.MessageID == "" {
			t.Fatalf("message %d (%s) has no messageId", m.Index, m.Type)
		}
		if m.Failed != "" {
			t.Errorf("the SDK reports message %d (%s %s) as not delivered: %s", m.Index, m.Type, m.MessageID, m.Failed)
		}
		byUser[m.wantUserID()] = append(byUser[m.wantUserID()], m)
	}
	// own returns the events of user's journey that are recorded under
	// user itself (a journey may also merge events of linked ids).
	own := func(user string) map[string][]map[string]any {
		got := map[string][]map[string]any{}
		for _, e := range p.journeyEvents(user) {
			if e["userId"] == user {
				id, _ := e["eventId"].(string)
				got[id] = append(got[id], e)
			}
		}
		return got
	}
	defer func() {
		if t.Failed() {
			for user, want := range byUser {
				var got []string
				for _, e := range p.journeyEvents(user) {
					got = append(got, fmt.Sprintf("%v %v %v", e["eventId"], e["userId"], e["type"]))
				}
				var sent []string
				for _, m := range want {
					sent = append(sent, m.MessageID+" "+m.Type)
				}
				t.Logf("user %s: sent %q; journey %q", user, sent, got)
			}
		}
	}()
	waitFor(t, 30*time.Second, fmt.Sprintf("the %d messages in the journeys", len(msgs)), func() bool {
		for user, want := range byUser {
			got := own(user)
			for _, m := range want {
				if len(got[m.MessageID]) == 0 {
					return false
				}
			}
		}
		return true
	})
	p.waitDrained() // whatever copy is still on its way is in the store now
	retryWindow := sentTo.Sub(sentFrom) + time.Second
	for _, user := range slices.Sorted(maps.Keys(byUser)) {
		got := own(user)
		want := map[string]bool{}
		for _, m := range byUser[user] {
			want[m.MessageID] = true
			copies := got[m.MessageID]
			if len(copies) == 0 {
				t.Errorf("message %d (%s %s) is not in %s's journey", m.Index, m.Type, m.MessageID, user)
				continue
			}
			stored++
			if len(copies) > 1 {
				duplicates += len(copies) - 1
				t.Errorf("message %s is stored %d times", m.MessageID, len(copies))
			}
			e := copies[0]
			if e["type"] != m.wantType() {
				t.Errorf("message %s (%s %q): type %v, want %q", m.MessageID, m.Type, m.Event, e["type"], m.wantType())
			}
			ts, err := time.Parse(time.RFC3339Nano, m.Timestamp)
			if err != nil {
				t.Errorf("message %s: SDK timestamp %q: %v", m.MessageID, m.Timestamp, err)
				continue
			}
			occ, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e["occurredAt"]))
			if err != nil {
				t.Errorf("message %s: occurredAt %v: %v", m.MessageID, e["occurredAt"], err)
			} else if d := occ.Sub(ts); d < -time.Second || d > retryWindow {
				t.Errorf("message %s: occurredAt %s is %s from the client timestamp %s (want within [-1s, %s])",
					m.MessageID, occ.Format(time.RFC3339Nano), d, m.Timestamp, retryWindow)
			}
			if imported, _ := time.Parse(time.RFC3339Nano, importedAt); !ts.Equal(imported) {
				if occ.Before(sentFrom.Add(-time.Second)) || occ.After(sentTo.Add(time.Second)) {
					t.Errorf("message %s: occurredAt %s is not within the send window %s – %s", m.MessageID, occ, sentFrom, sentTo)
				}
			}
			payload, _ := e["payload"].(map[string]any)
			if payload["type"] != m.Type || payload["messageId"] != m.MessageID {
				t.Errorf("message %s: payload is not the message as sent: %v", m.MessageID, payload)
			}
			if _, ok := payload["writeKey"]; ok {
				t.Errorf("message %s: the payload keeps the write key", m.MessageID)
			}
			if m.Type == "track" && payload["event"] != m.Event {
				t.Errorf("message %s: payload event %v, want %q", m.MessageID, payload["event"], m.Event)
			}
			if sid := e["sourceId"]; sid != src.ID {
				t.Errorf("message %s: sourceId %v, want %s", m.MessageID, sid, src.ID)
			}
		}
		for id, copies := range got {
			if !want[id] {
				duplicates += len(copies)
				t.Errorf("%s's journey has event %s (%v) that the SDK did not send (a retry stored under a new id?)", user, id, copies[0]["type"])
			}
		}
	}
	return stored, duplicates
}

// postFillers posts n anonymous seed-API events (no write key), to bring
// the backlog to the flush size or close to the 503 limit.
func (p *proc) postFillers(n int) {
	p.t.Helper()
	if n <= 0 {
		return
	}
	evs := make([]string, n)
	for i := range evs {
		evs[i] = `{"userId":"filler","sessionId":"s","type":"page_view"}`
	}
	if status, _, b := p.do("POST", "/events", []byte("["+strings.Join(evs, ",")+"]")); status != http.StatusAccepted {
		p.t.Fatalf("POST /events (%d fillers): %d %s", n, status, b)
	}
}

// backlog returns the number of events accepted but not yet stored.
func (p *proc) backlog() int64 {
	p.t.Helper()
	_, _, b := p.do("GET", "/health", nil)
	return decode[healthBody](p.t, b).BufferSize
}

// Settings of the 503 cases: nothing is flushed by time, FlushSize events
// waiting are flushed at once, and more than MaxBacklog waiting is a 503.
// The test fills the backlog to backlog503Fill, so that the SDK's batch
// (more than 2 messages) is refused with 503; when it sees the 503 it posts
// 2 more fillers, reaching the flush size: the backlog is flushed, and the
// SDK's retry is accepted. At the end it tops the backlog up to the flush
// size again so that everything reaches the store.
const (
	flushSize503  = 10
	backlog503Env = "CAIRN_MAX_BACKLOG=10"
	backlogFill   = 8
)

func startMain503(t *testing.T) *proc {
	return startMain(t, "", "CAIRN_FLUSH_INTERVAL=1h", "CAIRN_FLUSH_SIZE="+strconv.Itoa(flushSize503), backlog503Env)
}

// flushRest tops the backlog up to the flush size so that it is written.
func (p *proc) flushRest() {
	p.t.Helper()
	if n := p.backlog(); n > 0 {
		p.postFillers(flushSize503 - int(n)%flushSize503)
	}
}

// basicServer is a Cairn the basic cases run against.
type basicServer struct {
	name  string // subtest and table name
	start func(t *testing.T) *proc
}

// basicServers: the real binary on the embedded store, and Main in process
// on MongoDB (FerretDB; skipped without it, except in CI).
func basicServers() []basicServer {
	return []basicServer{
		{"binary", func(t *testing.T) *proc { return startCairn(t, "", "CAIRN_FLUSH_INTERVAL=50ms") }},
		{"MongoDB", func(t *testing.T) *proc {
			srv := mongotest.Start(t)
			return startMain(t, "", "CAIRN_FLUSH_INTERVAL=50ms", "MONGODB_URI="+srv.DatabaseURI(mongotest.DatabaseName(t)))
		}},
	}
}

// nodeCall is one call of the Node client's plan: the analytics-node
// method and its argument.
type nodeCall struct {
	Method string         `json:"method"`
	Arg    map[string]any `json:"arg"`
}

// nodeCalls are the calls every Node case makes: track (anonymous, then
// identified), identify linking the anonymous id, page, group, alias, a
// track whose name starts with "$", and a track of 2024 data.
func nodeCalls(ids testIDs) []nodeCall {
	return []nodeCall{
		{"track", map[string]any{"anonymousId": ids.Anon, "event": "Viewed Pricing", "properties": map[string]any{"plan": "pro"}}},
		{"identify", map[string]any{"userId": ids.User, "anonymousId": ids.Anon, "traits": map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"}}},
		{"track", map[string]any{"userId": ids.User, "event": "Order Completed", "properties": map[string]any{"orderId": "o-1001", "revenue": 42.5}}},
		{"page", map[string]any{"userId": ids.User, "category": "Docs", "name": "Getting Started", "properties": map[string]any{"variant": "B"}}},
		{"group", map[string]any{"userId": ids.User, "groupId": ids.Group, "traits": map[string]any{"name": "Analytical Engines"}}},
		{"alias", map[string]any{"userId": ids.User, "previousId": ids.Anon}},
		{"track", map[string]any{"userId": ids.User, "event": "$internal"}},
		{"track", map[string]any{"userId": ids.User, "event": "Imported", "timestamp": importedAt}},
	}
}

// nodeLine is one line the Node client prints (see node-client.mjs).
type nodeLine struct {
	Kind       string       `json:"kind"`
	At         string       `json:"at"`
	RetryCount *string      `json:"retryCount"`
	MessageIDs []string     `json:"messageIds"`
	Status     int          `json:"status"`
	RetryAfter *string      `json:"retryAfter"`
	RateLimit  *string      `json:"rateLimitReset"`
	Index      int          `json:"index"`
	MessageID  string       `json:"messageId"`
	Error      *string      `json:"error"`
	Messages   []sdkMessage `json:"messages"`
}

// nodeRun is a running Node client.
type nodeRun struct {
	Lines  <-chan nodeLine // closed when its output ends
	cmd    *exec.Cmd
	stderr *strings.Builder
	all    []nodeLine
}

// startNodeClient runs test/segment-clients/node-client.mjs against p with
// the write key and plan ({"calls":[…], "flushAt": n, …}). Its process
// group is killed if it is still running after two minutes or at the end
// of the test.
func startNodeClient(t *testing.T, node, dir string, p *proc, writeKey string, plan map[string]any) *nodeRun {
	t.Helper()
	planJSON, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, node, "node-client.mjs", string(planJSON))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CAIRN_URL="+p.URL, "CAIRN_WRITE_KEY="+writeKey)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &nodeRun{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node: %v", err)
	}
	lines := make(chan nodeLine, 100)
	r.Lines = lines
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			var l nodeLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				text := sc.Text()
				l = nodeLine{Kind: "text", Error: &text}
			}
			lines <- l
		}
		_, _ = io.Copy(io.Discard, stdout) // drain the rest; the scanner's error was reported
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // after Kill when still running; a no-op error otherwise
	})
	return r
}

// wait collects the remaining lines, waits for the client to exit 0 and
// returns the messages it reports as sent.
func (r *nodeRun) wait(t *testing.T) []sdkMessage {
	t.Helper()
	for l := range r.Lines {
		r.all = append(r.all, l)
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("node client: %v\nstderr:\n%s", err, tail(r.stderr.String(), 30))
	}
	for _, l := range r.all {
		if l.Kind == "delivered" && l.Error != nil {
			t.Errorf("analytics-node reports message %d (%s) as failed: %s", l.Index, l.MessageID, *l.Error)
		}
		if l.Kind == "done" {
			return l.Messages
		}
	}
	t.Fatalf("the node client printed no result\nstderr:\n%s", tail(r.stderr.String(), 30))
	return nil
}

// row summarizes the client's requests: how many, how many retries
// (X-Retry-Count set), and the statuses answered.
func (r *nodeRun) row(name string, msgs []sdkMessage, stored, dups int) sdkRow {
	row := sdkRow{Case: name, Sent: len(msgs), Stored: stored, Duplicates: dups, Statuses: map[int]int{}}
	for _, l := range r.all {
		switch l.Kind {
		case "request":
			row.Requests++
			if l.RetryCount != nil {
				row.Retries++
			}
		case "response":
			row.Statuses[l.Status]++
		}
	}
	return row
}

func TestE2ESegmentNode(t *testing.T) {
	dir := segmentClientsDir(t)
	node := nodePath(t)
	tb := newSDKTable(t, "@segment/analytics-node 3.1.0")

	for _, srv := range basicServers() {
		t.Run("Basic/"+srv.name, func(t *testing.T) {
			p := srv.start(t)
			p.login()
			src := p.createSource("node-backend", 0, 0)
			ids := newTestIDs("node")
			from := time.Now()
			run := startNodeClient(t, node, dir, p, src.WriteKey, map[string]any{"calls": nodeCalls(ids), "flushAt": 4})
			msgs := run.wait(t)
			to := time.Now()
			if len(msgs) != len(nodeCalls(ids)) {
				t.Fatalf("the client reports %d messages, want %d", len(msgs), len(nodeCalls(ids)))
			}
			stored, dups := checkStored(t, p, src, msgs, from, to)
			row := run.row("basic, "+srv.name, msgs, stored, dups)
			tb.add(row)
			if row.Statuses[http.StatusOK] != row.Requests || row.Requests != 2 {
				t.Errorf("want 2 batches of 4 answered 200: %+v", row)
			}
		})
	}

	t.Run("Retry503", func(t *testing.T) {
		p := startMain503(t)
		p.login()
		src := p.createSource("node-retry", 0, 0)
		ids := newTestIDs("node503")
		p.postFillers(backlogFill)
		calls := nodeCalls(ids)[:5]
		from := time.Now()
		run := startNodeClient(t, node, dir, p, src.WriteKey, map[string]any{"calls": calls, "flushAt": len(calls)})
		var first []string
		unblocked := false
		for l := range run.Lines {
			run.all = append(run.all, l)
			if l.Kind == "request" && first == nil {
				first = l.MessageIDs
			}
			if l.Kind == "request" && l.RetryCount != nil && !slices.Equal(l.MessageIDs, first) {
				t.Errorf("the retry sends messageIds %v, the first attempt %v", l.MessageIDs, first)
			}
			if l.Kind == "response" && l.Status == http.StatusServiceUnavailable && !unblocked {
				if l.RetryAfter == nil {
					t.Errorf("503 without Retry-After")
				}
				p.postFillers(flushSize503 - backlogFill) // reaches the flush size: the backlog is written
				unblocked = true
			}
		}
		msgs := run.wait(t)
		to := time.Now()
		p.flushRest()
		stored, dups := checkStored(t, p, src, msgs, from, to)
		row := run.row("503 then retry", msgs, stored, dups)
		tb.add(row)
		if row.Statuses[http.StatusServiceUnavailable] == 0 || row.Retries == 0 || row.Statuses[http.StatusOK] != 1 {
			t.Errorf("want a 503, a retry and one 200: %+v", row)
		}
	})

	t.Run("RateLimit429", func(t *testing.T) {
		p := startMain(t, "", "CAIRN_FLUSH_INTERVAL=50ms")
		p.login()
		src := p.createSource("node-limited", 2, 3)
		ids := newTestIDs("node429")
		calls := nodeCalls(ids)
		calls = append(calls, nodeCall{"track", map[string]any{"userId": ids.User, "event": "Extra"}})
		from := time.Now()
		// One batch in flight at a time: analytics-node forgets its
		// rate-limit state when any request succeeds, so a batch running
		// beside a successful one may be retried before Retry-After.
		run := startNodeClient(t, node, dir, p, src.WriteKey, map[string]any{"calls": calls, "flushAt": 3, "sequentialBatches": true})
		msgs := run.wait(t)
		to := time.Now()
		stored, dups := checkStored(t, p, src, msgs, from, to)
		row := run.row("429 honoured", msgs, stored, dups)
		tb.add(row)
		if row.Statuses[http.StatusTooManyRequests] == 0 {
			t.Fatalf("no 429 from a source limited to 2 events/s (burst 3) for %d events: %+v", len(calls), row)
		}
		// analytics-node honours Retry-After: after a 429 with Retry-After
		// n, it sends that batch again n seconds later at the earliest.
		var waits []string
		defer func() { t.Logf("analytics-node's waits after a 429: %s", strings.Join(waits, ", ")) }()
		for i, l := range run.all {
			if l.Kind != "response" || l.Status != http.StatusTooManyRequests {
				continue
			}
			if l.RetryAfter == nil || l.RateLimit == nil {
				t.Errorf("429 without Retry-After or X-RateLimit-Reset: %+v", l)
				continue
			}
			secs, err := strconv.ParseFloat(*l.RetryAfter, 64)
			if err != nil {
				t.Errorf("Retry-After %q: %v", *l.RetryAfter, err)
				continue
			}
			at, _ := time.Parse(time.RFC3339Nano, l.At)
			retried := false
			for _, next := range run.all[i+1:] {
				if next.Kind == "request" && slices.Equal(next.MessageIDs, l.MessageIDs) {
					nextAt, _ := time.Parse(time.RFC3339Nano, next.At)
					wait := time.Duration(math.Max(secs, 1) * float64(time.Second))
					d := nextAt.Sub(at)
					if d < wait-50*time.Millisecond {
						t.Errorf("after a 429 with Retry-After %s the batch was sent again %s later", *l.RetryAfter, d)
					}
					waits = append(waits, fmt.Sprintf("Retry-After %s → %s", *l.RetryAfter, d.Round(time.Millisecond)))
					retried = true
					break
				}
			}
			if !retried {
				t.Errorf("the batch %v answered 429 was not sent again", l.MessageIDs)
			}
		}
	})
}

// goRecorder is an http.RoundTripper that records every request
// analytics-go makes (its messages, whether it is a retry) and the status
// answered, and reports each status on Statuses.
type goRecorder struct {
	base     http.RoundTripper
	Statuses chan int

	mu        sync.Mutex
	seen      map[string]bool
	messages  []sdkMessage
	requests  int
	retries   int
	statuses  map[int]int
	got429    map[string]time.Time // batch (its first messageId) → when it was last answered 429
	intervals []time.Duration      // between a 429 and the batch's next attempt
}

func newGoRecorder() *goRecorder {
	return &goRecorder{base: http.DefaultTransport, Statuses: make(chan int, 1000), seen: map[string]bool{}, statuses: map[int]int{}, got429: map[string]time.Time{}}
}

func (g *goRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close() // fully read above; a close error changes nothing
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(strings.NewReader(string(body)))
	var b struct {
		Batch []sdkMessage `json:"batch"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("recorder: analytics-go sent a body that is not a batch: %w", err)
	}
	key := ""
	if len(b.Batch) > 0 {
		key = b.Batch[0].MessageID
	}
	g.mu.Lock()
	if at, ok := g.got429[key]; ok {
		g.intervals = append(g.intervals, time.Since(at).Round(time.Millisecond))
		delete(g.got429, key)
	}
	g.requests++
	retry := false
	for _, m := range b.Batch {
		if g.seen[m.MessageID] {
			retry = true
			continue
		}
		g.seen[m.MessageID] = true
		m.Index = len(g.messages)
		g.messages = append(g.messages, m)
	}
	if retry {
		g.retries++
	}
	g.mu.Unlock()
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.statuses[resp.StatusCode]++
	if resp.StatusCode == http.StatusTooManyRequests {
		g.got429[key] = time.Now()
	}
	g.mu.Unlock()
	select {
	case g.Statuses <- resp.StatusCode:
	default:
	}
	return resp, nil
}

func (g *goRecorder) row(name string, stored, dups int) sdkRow {
	g.mu.Lock()
	defer g.mu.Unlock()
	return sdkRow{Case: name, Sent: len(g.messages), Stored: stored, Duplicates: dups, Requests: g.requests, Retries: g.retries, Statuses: maps.Clone(g.statuses)}
}

func (g *goRecorder) sent() []sdkMessage {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.messages)
}

// goCallback counts analytics-go's delivery reports.
type goCallback struct{ ok, failed atomic.Int64 }

func (c *goCallback) Success(analytics.Message)        { c.ok.Add(1) }
func (c *goCallback) Failure(analytics.Message, error) { c.failed.Add(1) }

// goLogger sends analytics-go's log lines to a buffer the test prints on
// failure (t.Logf must not be called after the test ends).
type goLogger struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *goLogger) Logf(format string, args ...any) { l.printf("INFO "+format, args...) }
func (l *goLogger) Errorf(format string, args ...any) {
	l.printf("ERROR "+format, args...)
}
func (l *goLogger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

// goMessages are the calls every analytics-go case makes (as nodeCalls).
func goMessages(ids testIDs) []analytics.Message {
	imported, _ := time.Parse(time.RFC3339Nano, importedAt)
	return []analytics.Message{
		analytics.Track{AnonymousId: ids.Anon, Event: "Viewed Pricing", Properties: analytics.NewProperties().Set("plan", "pro")},
		analytics.Identify{UserId: ids.User, AnonymousId: ids.Anon, Traits: analytics.NewTraits().SetName("Ada Lovelace").SetEmail("ada@example.com")},
		analytics.Track{UserId: ids.User, Event: "Order Completed", Properties: analytics.NewProperties().Set("orderId", "o-1001").SetRevenue(42.5)},
		analytics.Page{UserId: ids.User, Name: "Getting Started", Properties: analytics.NewProperties().SetCategory("Docs").Set("variant", "B")},
		analytics.Group{UserId: ids.User, GroupId: ids.Group, Traits: analytics.NewTraits().SetName("Analytical Engines")},
		analytics.Alias{UserId: ids.User, PreviousId: ids.Anon},
		analytics.Track{UserId: ids.User, Event: "$internal"},
		analytics.Track{UserId: ids.User, Event: "Imported", Timestamp: imported},
	}
}

// runGoClient sends msgs to p with analytics-go (Endpoint = p.URL,
// batchSize messages a batch: it must divide len(msgs), as batches go only
// when full), waits until the client reports every message delivered or
// failed, and closes it. During the run, onStatus is called in the test's
// goroutine with every status Cairn answered.
func runGoClient(t *testing.T, p *proc, writeKey string, msgs []analytics.Message, batchSize int, onStatus func(int)) *goRecorder {
	t.Helper()
	if len(msgs)%batchSize != 0 {
		t.Fatalf("batch size %d does not divide %d messages", batchSize, len(msgs))
	}
	rec := newGoRecorder()
	cb := &goCallback{}
	logs := &goLogger{}
	client, err := analytics.NewWithConfig(writeKey, analytics.Config{
		Endpoint:  p.URL,
		Interval:  time.Hour, // batches go when full, the rest on Close
		BatchSize: batchSize,
		Transport: rec,
		Callback:  cb,
		Logger:    logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := client.Enqueue(m); err != nil {
			t.Fatalf("enqueue %T: %v", m, err)
		}
	}
	// Close would abort the retries in progress (and drop their messages):
	// wait until every message was reported delivered or failed first.
	timeout := time.After(2 * time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for cb.ok.Load()+cb.failed.Load() < int64(len(msgs)) {
		select {
		case st := <-rec.Statuses:
			if onStatus != nil {
				onStatus(st)
			}
		case <-tick.C:
		case <-timeout:
			t.Fatalf("analytics-go did not deliver within 2 minutes\n%s", logs.b.String())
		}
	}
	if err := client.Close(); err != nil {
		t.Fatalf("analytics-go Close: %v", err)
	}
	if n := cb.failed.Load(); n != 0 || cb.ok.Load() != int64(len(msgs)) {
		t.Errorf("analytics-go delivered %d and failed %d of %d messages\n%s", cb.ok.Load(), n, len(msgs), logs.b.String())
	}
	if t.Failed() {
		t.Logf("analytics-go log:\n%s", logs.b.String())
	}
	return rec
}

func TestE2ESegmentGo(t *testing.T) {
	tb := newSDKTable(t, "analytics-go v3.3.0")

	for _, srv := range basicServers() {
		t.Run("Basic/"+srv.name, func(t *testing.T) {
			p := srv.start(t)
			p.login()
			src := p.createSource("go-backend", 0, 0)
			ids := newTestIDs("go")
			from := time.Now()
			rec := runGoClient(t, p, src.WriteKey, goMessages(ids), 4, nil)
			to := time.Now()
			msgs := rec.sent()
			if len(msgs) != len(goMessages(ids)) {
				t.Fatalf("analytics-go sent %d messages, want %d", len(msgs), len(goMessages(ids)))
			}
			stored, dups := checkStored(t, p, src, msgs, from, to)
			row := rec.row("basic, "+srv.name, stored, dups)
			tb.add(row)
			if row.Requests != 2 || row.Statuses[http.StatusOK] != 2 {
				t.Errorf("want 2 batches of 4 answered 200: %+v", row)
			}
		})
	}

	t.Run("Retry503", func(t *testing.T) {
		p := startMain503(t)
		p.login()
		src := p.createSource("go-retry", 0, 0)
		ids := newTestIDs("go503")
		p.postFillers(backlogFill)
		msgs := goMessages(ids)[:5]
		unblocked := false
		from := time.Now()
		rec := runGoClient(t, p, src.WriteKey, msgs, len(msgs), func(st int) {
			if st == http.StatusServiceUnavailable && !unblocked {
				p.postFillers(flushSize503 - backlogFill) // reaches the flush size: the backlog is written
				unblocked = true
			}
		})
		to := time.Now()
		p.flushRest()
		stored, dups := checkStored(t, p, src, rec.sent(), from, to)
		row := rec.row("503 then retry", stored, dups)
		tb.add(row)
		if row.Statuses[http.StatusServiceUnavailable] == 0 || row.Retries == 0 || row.Statuses[http.StatusOK] != 1 {
			t.Errorf("want a 503, a retry and one 200: %+v", row)
		}
	})

	t.Run("RateLimit429", func(t *testing.T) {
		p := startMain(t, "", "CAIRN_FLUSH_INTERVAL=50ms")
		p.login()
		src := p.createSource("go-limited", 2, 3)
		ids := newTestIDs("go429")
		msgs := append(goMessages(ids), analytics.Track{UserId: ids.User, Event: "Extra"})
		from := time.Now()
		rec := runGoClient(t, p, src.WriteKey, msgs, 3, nil)
		to := time.Now()
		stored, dups := checkStored(t, p, src, rec.sent(), from, to)
		row := rec.row("429 retried", stored, dups)
		tb.add(row)
		if row.Statuses[http.StatusTooManyRequests] == 0 || row.Retries == 0 {
			t.Errorf("want a 429 from a source limited to 2 events/s (burst 3) for %d events, and retries: %+v", len(msgs), row)
		}
		rec.mu.Lock()
		t.Logf("analytics-go waits after a 429 (its own backoff; it ignores Retry-After): %v", rec.intervals)
		rec.mu.Unlock()
	})
}
