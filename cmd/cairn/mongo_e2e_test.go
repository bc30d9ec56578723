package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/mongo/mongotest"
	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

type statsBody struct {
	Accepted      int64 `json:"accepted"`
	Stored        int64 `json:"stored"`
	Duplicates    int64 `json:"duplicatesIgnored"`
	DeadLettered  int64 `json:"deadLettered"`
	FlushFailures int64 `json:"flushFailures"`
}

// mongoEvents returns a driver handle on the events collection of db.
func mongoEvents(t *testing.T, srv *mongotest.Server, db string) *driver.Collection {
	t.Helper()
	c, err := driver.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Disconnect(context.Background()); err != nil {
			t.Errorf("disconnect: %v", err)
		}
	})
	return c.Database(db).Collection("events")
}

// storedIDs returns how many documents each _id has in coll.
func storedIDs(t *testing.T, coll *driver.Collection) map[string]int {
	t.Helper()
	cur, err := coll.Find(t.Context(), bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatalf("find ids: %v", err)
	}
	defer func() {
		if err := cur.Close(context.Background()); err != nil {
			t.Errorf("close cursor: %v", err)
		}
	}()
	out := map[string]int{}
	for cur.Next(t.Context()) {
		id, _ := cur.Current.Lookup("_id").StringValueOK()
		out[id]++
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("find ids: %v", err)
	}
	return out
}

func (p *proc) health() (int, healthBody) {
	p.t.Helper()
	status, _, b := p.do("GET", "/health", nil)
	return status, decode[healthBody](p.t, b)
}

func (p *proc) stats() statsBody {
	p.t.Helper()
	_, _, b := p.do("GET", "/stats", nil)
	return decode[statsBody](p.t, b)
}

func TestMongoE2EIngestJourneyRestart(t *testing.T) {
	srv := mongotest.Start(t)
	db := mongotest.DatabaseName(t)
	p := startMain(t, "", "MONGODB_URI="+srv.DatabaseURI(db), "CAIRN_FLUSH_INTERVAL=50ms")
	p.login()

	var batch []string
	for i := range 20 {
		batch = append(batch, fmt.Sprintf(`{"eventId":"m-%02d","userId":"mongo-user","sessionId":"s","type":"purchase","payload":{"amount":%d.5,"a.b":{"$k":[%d]}},"occurredAt":%d}`,
			i, i, i, time.Date(2025, 12, 16, 0, 0, i, 0, time.UTC).UnixMilli()))
	}
	body := []byte("[" + strings.Join(batch, ",") + "]")
	for range 2 { // the second post is a client retry: stored once
		if status, _, b := p.do("POST", "/events", body); status != http.StatusAccepted {
			t.Fatalf("post: %d %s", status, b)
		}
	}
	p.waitDrained()

	ids := p.journeyIDs("mongo-user", 7)
	if len(ids) != 20 || ids[0] != "m-19" || ids[19] != "m-00" {
		t.Fatalf("journey = %v, want m-19 … m-00", ids)
	}
	status, _, b := p.do("GET", "/users/mongo-user/journey?limit=1", nil)
	if status != http.StatusOK {
		t.Fatalf("journey: %d %s", status, b)
	}
	j := decode[journeyBody](t, b)
	if got := fmt.Sprint(j.Events[0].Payload); got != "map[a.b:map[$k:[19]] amount:19.5]" {
		t.Errorf("payload = %s, want the posted payload", got)
	}
	if status, h := p.health(); status != http.StatusOK || h.Database != "connected" {
		t.Errorf("health = %d %+v, want 200 connected", status, h)
	}

	// Directly in MongoDB: one document per event, seed-shaped.
	coll := mongoEvents(t, srv, db)
	if n, err := coll.CountDocuments(t.Context(), bson.D{{Key: "userId", Value: "mongo-user"}}); err != nil || n != 20 {
		t.Fatalf("documents = %d, %v; want 20", n, err)
	}
	var raw bson.Raw
	if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "m-03"}}).Decode(&raw); err != nil {
		t.Fatalf("find m-03: %v", err)
	}
	if raw.Lookup("occurredAt").Type != bson.TypeDateTime || raw.Lookup("payload", "amount").Type != bson.TypeDouble {
		t.Errorf("document shape: %s", raw)
	}

	// Restart Cairn: the data is in MongoDB, not in the process.
	p.Stop()
	p.restart()
	p.login()
	if ids := p.journeyIDs("mongo-user", 50); len(ids) != 20 {
		t.Fatalf("after restart journey has %d events, want 20", len(ids))
	}
}

func TestMongoE2EUnreachableAtStart(t *testing.T) {
	srv := mongotest.Start(t)
	db := mongotest.DatabaseName(t)
	uri := srv.DatabaseURI(db) + "?serverSelectionTimeoutMS=500"
	srv.Stop() // nothing listens on the URI's port

	p := startMain(t, "", "MONGODB_URI="+uri, "CAIRN_FLUSH_INTERVAL=50ms")
	var acked []string
	for i := range 10 {
		var batch []string
		for k := range 5 {
			batch = append(batch, fmt.Sprintf(`{"userId":"offline","sessionId":"s","type":"page_view","payload":{"i":%d}}`, i*5+k))
		}
		status, _, b := p.do("POST", "/events", []byte("["+strings.Join(batch, ",")+"]"))
		if status != http.StatusAccepted {
			t.Fatalf("post while MongoDB is down: %d %s", status, b)
		}
		acked = append(acked, decode[acceptedBody](t, b).EventIDs...)
	}
	status, h := p.health()
	if status != http.StatusServiceUnavailable || h.Status != "degraded" || h.Database != "disconnected" || h.BufferSize != int64(len(acked)) {
		t.Fatalf("health while MongoDB is down = %d %+v, want 503 degraded disconnected with %d buffered", status, h, len(acked))
	}

	start := time.Now()
	srv.Restart()
	p.waitDrained()
	drain := time.Since(start)
	if status, h := p.health(); status != http.StatusOK || h.Database != "connected" {
		t.Fatalf("health after MongoDB started = %d %+v", status, h)
	}
	p.login()
	got := storedIDs(t, mongoEvents(t, srv, db))
	for _, id := range acked {
		if got[id] != 1 {
			t.Errorf("acknowledged event %s stored %d times", id, got[id])
		}
	}
	if ids := p.journeyIDs("offline", 100); len(ids) != len(acked) {
		t.Errorf("journey has %d events, want %d", len(ids), len(acked))
	}
	st := p.stats()
	t.Logf("MongoDB down at start: acknowledged %d, stored %d, drained %s after MongoDB started (flush failures %d)",
		len(acked), len(got), drain.Round(time.Millisecond), st.FlushFailures)
}

// FerretDB stops in the middle of concurrent ingest and comes back: every
// event acknowledged with a 202 is stored exactly once.
func TestMongoE2EOutageUnderLoad(t *testing.T) {
	srv := mongotest.Start(t)
	db := mongotest.DatabaseName(t)
	p := startMain(t, "", "MONGODB_URI="+srv.DatabaseURI(db)+"?serverSelectionTimeoutMS=500", "CAIRN_FLUSH_INTERVAL=50ms")

	var (
		mu       sync.Mutex
		acked    []string
		refused  atomic.Int64
		requests atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := newClient(t)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ { // bounded; normally stopped much earlier
				select {
				case <-stop:
					return
				default:
				}
				var batch []string
				for k := range 10 {
					batch = append(batch, fmt.Sprintf(`{"userId":"load-%d","sessionId":"s%d","type":"page_view","payload":{"w":%d,"i":%d,"k":%d}}`, w, i, w, i, k))
				}
				req, _ := http.NewRequestWithContext(t.Context(), "POST", p.URL+"/events", strings.NewReader("["+strings.Join(batch, ",")+"]"))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				requests.Add(1)
				if err != nil {
					refused.Add(1)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close() //nolint:errcheck // the body was read to the end (a read error counts as a refusal); closing only releases the connection
				if resp.StatusCode != http.StatusAccepted || err != nil {
					refused.Add(1)
					time.Sleep(10 * time.Millisecond) // pacing, not a wait: back off after a refusal
					continue
				}
				time.Sleep(5 * time.Millisecond) // a steady load, not a flood
				var body acceptedBody
				if err := json.Unmarshal(b, &body); err != nil {
					t.Errorf("202 body %q: %v", b, err)
					return
				}
				mu.Lock()
				acked = append(acked, body.EventIDs...)
				mu.Unlock()
			}
		}()
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitAcked := func(n int, max time.Duration) {
		waitFor(t, max, fmt.Sprintf("%d acknowledged events", n), func() bool { return ackedCount() >= n })
	}

	waitAcked(300, 20*time.Second)
	beforeOutage := ackedCount()
	stopBegan := time.Now()
	srv.Stop()
	// Keep MongoDB down until the batcher has failed to write to it and
	// 200 more events were acknowledged meanwhile (the spool absorbs them).
	waitAcked(beforeOutage+200, 10*time.Second)
	waitFor(t, 30*time.Second, "a failed flush while MongoDB is down", func() bool {
		return scrapeMetrics(t, p.URL)["cairn_flush_failures_total"] > 0
	})
	duringOutage := ackedCount() - beforeOutage
	srv.Restart()
	restarted := time.Now()
	outage := restarted.Sub(stopBegan)
	waitAcked(ackedCount()+300, 10*time.Second)
	close(stop)
	wg.Wait()
	p.waitDrained()
	drain := time.Since(restarted)

	got := storedIDs(t, mongoEvents(t, srv, db))
	missing, dups := 0, 0
	seen := map[string]bool{}
	for _, id := range acked {
		if seen[id] {
			t.Fatalf("eventId %s acknowledged twice", id)
		}
		seen[id] = true
		switch got[id] {
		case 0:
			missing++
		case 1:
		default:
			dups++
		}
	}
	p.login()
	st := p.stats()
	t.Logf("outage under load: %d requests (%d refused or failed), acknowledged %d (%d while MongoDB was stopping or down for %s), stored %d, missing %d, duplicated %d; drained %s after restart; /stats stored=%d flushFailures=%d",
		requests.Load(), refused.Load(), len(acked), duringOutage, outage.Round(time.Millisecond), len(got), missing, dups,
		drain.Round(time.Millisecond), st.Stored, st.FlushFailures)
	if missing != 0 || dups != 0 || len(got) != len(acked) {
		t.Fatalf("acknowledged %d, stored %d: %d missing, %d duplicated", len(acked), len(got), missing, dups)
	}
	if duringOutage == 0 {
		t.Errorf("no event was acknowledged while MongoDB was down: the spool should absorb them")
	}
	if st.FlushFailures == 0 {
		t.Errorf("/stats shows no flush failure across the outage")
	}
}
