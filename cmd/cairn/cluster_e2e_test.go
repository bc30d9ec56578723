package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/jetstream"
	"github.com/cairn-dev/cairn/jetstream/natstest"
	"github.com/cairn-dev/cairn/mongo/mongotest"
)

// Multi-node end-to-end tests: real nats-server processes (a 3-node
// JetStream cluster with sync_interval: always), FerretDB, and the cairn
// binary as ingest nodes (`serve` with CAIRN_NATS_URL) and writers
// (`cairn writer`). They need CAIRN_NATS_SERVER_BIN and CAIRN_FERRETDB_BIN
// (scripts/ci.d/60-nats.sh and 10-ferretdb.sh) and skip without them,
// except under CI=true.

// clusterEnv is the environment every node of a test cluster shares.
func clusterEnv(nats *natstest.Cluster, mongoURI string, extra ...string) []string {
	return append([]string{
		"CAIRN_NATS_URL=" + strings.Join(nats.URLs(), ","),
		"CAIRN_NATS_REPLICAS=" + strconv.Itoa(nats.Nodes()),
		"MONGODB_URI=" + mongoURI,
		"BETTER_AUTH_SECRET=cluster-e2e-secret-0123456789abcdef0123456789",
		"CAIRN_NATS_ACK_TIMEOUT=3s",
		"CAIRN_NATS_ACK_WAIT=3s",
		"CAIRN_FLUSH_INTERVAL=50ms",
		"CAIRN_ACCESS_LOG=false",
		"CAIRN_LOG_LEVEL=info",
	}, extra...)
}

// loadClient sends batches with client eventIds to a set of ingest nodes,
// moving to the next node (same eventIds) after anything but a 202, as a
// client behind a load balancer retries. It records every eventId that was
// acknowledged.
type loadClient struct {
	urls   []string
	client *http.Client

	mu        sync.Mutex
	acked     map[string]string // eventId -> userId
	lastAck   time.Time
	longest   time.Duration // longest gap between two acknowledged requests
	n503      atomic.Int64
	nOther    atomic.Int64 // transport errors (a killed node) and other statuses
	n503NoRA  atomic.Int64 // 503 without Retry-After
	requests  atomic.Int64
	ackedReqs atomic.Int64
}

func newLoadClient(urls []string) *loadClient {
	return &loadClient{urls: urls, acked: map[string]string{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

// Acked returns the number of acknowledged events.
func (l *loadClient) Acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// send posts one batch until a node acknowledges it, stop is closed, or
// maxAttempts (if > 0) attempts were made.
func (l *loadClient) send(worker, seq int, stop <-chan struct{}, maxAttempts int) {
	var ids, users []string
	var body bytes.Buffer
	body.WriteByte('[')
	for k := range 10 {
		id := fmt.Sprintf("w%d-%d-%d", worker, seq, k)
		user := fmt.Sprintf("cu-%d", (worker*7+seq+k)%12)
		if k > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"eventId":%q,"userId":%q,"sessionId":"s","type":"page_view","payload":{"k":%d}}`, id, user, k)
		ids, users = append(ids, id), append(users, user)
	}
	body.WriteByte(']')
	for attempt := 0; maxAttempts <= 0 || attempt < maxAttempts; attempt++ {
		select {
		case <-stop:
			return
		default:
		}
		url := l.urls[(worker+seq+attempt)%len(l.urls)]
		l.requests.Add(1)
		resp, err := l.client.Post(url+"/events", "application/json", bytes.NewReader(body.Bytes()))
		if err != nil {
			l.nOther.Add(1)
			backoff(stop, attempt)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			l.ackedReqs.Add(1)
			now := time.Now()
			l.mu.Lock()
			for i, id := range ids {
				l.acked[id] = users[i]
			}
			if !l.lastAck.IsZero() && now.Sub(l.lastAck) > l.longest {
				l.longest = now.Sub(l.lastAck)
			}
			l.lastAck = now
			l.mu.Unlock()
			return
		case http.StatusServiceUnavailable:
			l.n503.Add(1)
			if resp.Header.Get("Retry-After") == "" {
				l.n503NoRA.Add(1)
			}
		default:
			l.nOther.Add(1)
		}
		backoff(stop, attempt)
	}
}

// backoff waits a little before a client retry (or until stop).
func backoff(stop <-chan struct{}, attempt int) {
	select {
	case <-time.After(time.Duration(min(attempt+1, 10)) * 20 * time.Millisecond):
	case <-stop:
	}
}

// run drives workers senders until stop is closed; the returned wait
// function blocks until they have finished.
func (l *loadClient) run(workers int, stop <-chan struct{}) func() {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				l.send(w, seq, stop, 0)
			}
		})
	}
	return wg.Wait
}

// waitMoreAcked waits until n more events than now are acknowledged.
func (l *loadClient) waitMoreAcked(t *testing.T, n int, what string) time.Duration {
	t.Helper()
	start, target := time.Now(), l.Acked()+n
	waitFor(t, 60*time.Second, what, func() bool { return l.Acked() >= target })
	return time.Since(start)
}

// verifyExactlyOnce checks through the journey API that every
// acknowledged event is stored exactly once, and returns the number stored.
func verifyExactlyOnce(t *testing.T, p *proc, acked map[string]string) int {
	t.Helper()
	want := map[string]map[string]bool{}
	for id, u := range acked {
		if want[u] == nil {
			want[u] = map[string]bool{}
		}
		want[u][id] = true
	}
	stored, lost, doubled := 0, 0, 0
	for u, ids := range want {
		seen := map[string]int{}
		for _, id := range p.journeyIDs(u, 1000) {
			seen[id]++
		}
		for id, n := range seen {
			stored++
			if n > 1 {
				doubled++
				t.Errorf("event %s of %s stored %d times", id, u, n)
			}
		}
		for id := range ids {
			if seen[id] == 0 {
				lost++
				if lost <= 10 {
					t.Errorf("acknowledged event %s of %s is not stored", id, u)
				}
			}
		}
	}
	if lost > 0 || doubled > 0 {
		t.Fatalf("acknowledged %d: %d lost, %d doubled", len(acked), lost, doubled)
	}
	return stored
}

// waitAllStored polls the journey totals until every acknowledged event is
// in the store (or fails with the count).
func waitAllStored(t *testing.T, coll func() map[string]int, acked map[string]string) {
	t.Helper()
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d acknowledged events stored", len(acked)), func() bool {
		got := coll()
		for id := range acked {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
}

// TestClusterE2EKillNodes: a 3-node JetStream cluster (sync_interval:
// always), FerretDB, two ingest nodes and two writers, under load through
// both ingest nodes with client eventIds. In each round the NATS stream
// leader, an ingest node and a writer are killed with SIGKILL at random
// moments and restarted. Afterwards every acknowledged event is stored
// exactly once (journey API), and no 503 came without Retry-After.
func TestClusterE2EKillNodes(t *testing.T) {
	nats := natstest.Start(t, natstest.Options{Nodes: 3, SyncAlways: true})
	srv := mongotest.Start(t)
	db := mongotest.DatabaseName(t)
	env := clusterEnv(nats, srv.DatabaseURI(db)+"?serverSelectionTimeoutMS=2000")

	var ingest []*proc
	var urls []string
	for range 2 {
		// A fixed port: clients keep the node's URL across its restarts.
		port := freePort(t)
		p := startCairn(t, "", append(env, "PORT="+port)...)
		ingest = append(ingest, p)
		urls = append(urls, "http://127.0.0.1:"+port)
	}
	var writers []*proc
	for range 2 {
		writers = append(writers, startCairnCmd(t, "writer", "", env...))
	}

	load := newLoadClient(urls)
	stop := make(chan struct{})
	wait := load.run(4, stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wait()
		}
	}()
	load.waitMoreAcked(t, 300, "first acknowledgements")

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	const rounds = 3
	var stalls []time.Duration
	for round := range rounds {
		load.waitMoreAcked(t, 50+rnd.IntN(300), "load before killing the leader")
		leader := nats.Leader(jetstream.DefaultStream)
		if leader < 0 {
			t.Fatal("no stream leader")
		}
		nats.Kill(leader)
		stall := load.waitMoreAcked(t, 100, "acks after the NATS leader died")
		stalls = append(stalls, stall)
		t.Logf("round %d: killed NATS leader n%d; next acks after %s", round, leader, stall.Round(time.Millisecond))
		nats.Restart(leader)

		load.waitMoreAcked(t, 50+rnd.IntN(300), "load before killing an ingest node")
		vi := rnd.IntN(len(ingest))
		ingest[vi].Kill()
		d := load.waitMoreAcked(t, 50, "acks with one ingest node down")
		t.Logf("round %d: killed ingest node %d; 50 more events acked after %s", round, vi, d.Round(time.Millisecond))
		ingest[vi].restart()

		load.waitMoreAcked(t, 50+rnd.IntN(300), "load before killing a writer")
		wi := rnd.IntN(len(writers))
		writers[wi].Kill()
		d = load.waitMoreAcked(t, 50, "acks with one writer down")
		t.Logf("round %d: killed writer %d; 50 more events acked after %s", round, wi, d.Round(time.Millisecond))
		writers[wi].restart()
		nats.WaitReady()
	}
	load.waitMoreAcked(t, 100, "acks after the last round")
	close(stop)
	wait()
	stopped = true

	coll := mongoEvents(t, srv, db)
	start := time.Now()
	waitAllStored(t, func() map[string]int { return storedIDs(t, coll) }, load.acked)
	drain := time.Since(start)
	ingest[0].login()
	stored := verifyExactlyOnce(t, ingest[0], load.acked)
	if n := load.n503NoRA.Load(); n > 0 {
		t.Errorf("%d 503 answers without Retry-After", n)
	}
	t.Logf("acknowledged %d events (%d requests acked of %d sent; %d answered 503, %d transport errors/other), stored %d, lost 0, doubled 0; "+
		"leader-failover stalls %v; longest gap between acks %s; drained %s after load stopped",
		len(load.acked), load.ackedReqs.Load(), load.requests.Load(), load.n503.Load(), load.nOther.Load(), stored,
		stalls, load.longest.Round(time.Millisecond), drain.Round(time.Millisecond))
}

// TestClusterE2EStoreDown: with the store down, the writer backs off, the
// ingest node keeps acknowledging (the stream holds the backlog) until the
// stream is full, then answers 503 with Retry-After; when the store is back
// everything acknowledged drains into it exactly once. (A single NATS
// server and a 1 MiB stream keep it short; the outage lasts as long as
// filling the stream takes, a few seconds, not the 60 s.)
func TestClusterE2EStoreDown(t *testing.T) {
	nats := natstest.Start(t, natstest.Options{Nodes: 1, SyncAlways: true})
	srv := mongotest.Start(t)
	db := mongotest.DatabaseName(t)
	env := clusterEnv(nats, srv.DatabaseURI(db)+"?serverSelectionTimeoutMS=500", "CAIRN_NATS_MAX_BYTES=1MiB")
	port := freePort(t)
	ing := startCairn(t, "", append(env, "PORT="+port)...)
	wr := startCairnCmd(t, "writer", "", env...)
	url := "http://127.0.0.1:" + port

	load := newLoadClient([]string{url})
	never := make(chan struct{})
	for seq := range 5 {
		load.send(0, seq, never, 0)
	}
	coll := mongoEvents(t, srv, db)
	waitAllStored(t, func() map[string]int { return storedIDs(t, coll) }, load.acked)

	srv.Stop()
	// Ingest keeps acknowledging into the stream until it is full.
	down := time.Now()
	for seq := 5; load.n503.Load() == 0; seq++ {
		if seq > 20000 {
			t.Fatal("the stream never filled up")
		}
		load.send(0, seq, never, 1)
		if load.nOther.Load() > 0 {
			t.Fatalf("request %d failed with neither 202 nor 503", seq)
		}
	}
	full := time.Since(down)
	acked := load.Acked()
	if n := load.n503NoRA.Load(); n > 0 {
		t.Errorf("%d 503 answers without Retry-After", n)
	}
	// The writer's own endpoints are not the HTTP API: a plain client.
	if hb := plainGet(t, wr.URL+"/health"); !strings.Contains(hb, `"degraded"`) {
		t.Errorf("writer health with the store down: %s", hb)
	}
	if mb := plainGet(t, wr.URL+"/metrics"); !strings.Contains(string(mb), "cairn_stream_consumer_pending") || !strings.Contains(string(mb), `cairn_flush_duration_seconds_count{result="error"}`) {
		t.Errorf("writer metrics lack the stream lag or failed flushes")
	}

	srv.Restart()
	start := time.Now()
	waitAllStored(t, func() map[string]int { return storedIDs(t, coll) }, load.acked)
	drain := time.Since(start)
	ing.login()
	stored := verifyExactlyOnce(t, ing, load.acked)
	_, _, im := ing.do("GET", "/metrics", nil)
	if !strings.Contains(string(im), `cairn_stream_publish_duration_seconds_count{result="ok"}`) {
		t.Errorf("ingest metrics lack the publish latency")
	}
	t.Logf("store down: acknowledged %d events into the stream in %s until it was full (then 503 + Retry-After); "+
		"stored %d exactly once, drained %s after the store came back", acked, full.Round(time.Millisecond), stored, drain.Round(time.Millisecond))
}

// plainGet fetches url with a client that does not check the OpenAPI
// document (for the writer's endpoints) and returns the body.
func plainGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // a test's one-shot request
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only body
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b)
}

// TestClusterE2ELiveAcrossNodes: the live tail of one ingest node shows an
// event accepted by another (the stream republishes what it stores).
func TestClusterE2ELiveAcrossNodes(t *testing.T) {
	nats := natstest.Start(t, natstest.Options{Nodes: 1})
	srv := mongotest.Start(t)
	env := clusterEnv(nats, srv.DatabaseURI(mongotest.DatabaseName(t)))
	a := startCairn(t, "", env...)
	b := startCairn(t, "", env...)
	b.login()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", b.URL+"/api/live?userId=live-user", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A plain client (the OpenAPI-checking one reads whole bodies) with b's session.
	resp, err := (&http.Client{Jar: b.client.Jar}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only stream
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/live on node b: %d", resp.StatusCode)
	}
	body := `{"eventId":"live-across-1","userId":"live-user","sessionId":"s","type":"page_view"}`
	if status, _, rb := a.do("POST", "/events", []byte(body)); status != http.StatusAccepted {
		t.Fatalf("POST /events on node a: %d %s", status, rb)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data:") && strings.Contains(line, "live-across-1") {
			return
		}
	}
	t.Fatalf("node b's live stream ended without the event accepted by node a: %v", sc.Err())
}
