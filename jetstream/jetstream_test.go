package jetstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/jetstream"
	"github.com/cairn-dev/cairn/jetstream/natstest"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/pipeline"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

func events(prefix string, n int) []cairn.Event {
	now := time.Now().UTC().Truncate(time.Millisecond)
	out := make([]cairn.Event, n)
	for i := range out {
		out[i] = cairn.Event{EventID: fmt.Sprintf("%s-%d", prefix, i), UserID: "u-" + prefix, SessionID: "s", Type: "page_view",
			Payload: json.RawMessage(`{"i":1}`), OccurredAt: now, ReceivedAt: now}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func connect(t *testing.T, c *natstest.Cluster, cfg jetstream.Config) *jetstream.Conn {
	t.Helper()
	cfg.URLs = c.URLs()
	if cfg.Replicas == 0 {
		cfg.Replicas = c.Nodes()
	}
	conn, err := jetstream.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

func openStore(t *testing.T) *pebble.Store {
	t.Helper()
	ps, err := pebble.Open(filepath.Join(t.TempDir(), "store"), pebble.Options{DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	})
	return ps
}

// rawStream returns a plain JetStream client on c, for inspecting the stream.
func rawStream(t *testing.T, c *natstest.Cluster) natsjs.JetStream {
	t.Helper()
	nc, err := nats.Connect(c.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamMsgs(t *testing.T, js natsjs.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestIngestThroughStreamToStore: events published by Ingest (one request
// sent twice, as a retrying client would) reach the store exactly once
// through Source and the batcher, the stream empties as the writer
// acknowledges, and the live tail sees every stored event.
func TestIngestThroughStreamToStore(t *testing.T) {
	c := natstest.Start(t, natstest.Options{SyncAlways: true})
	conn := connect(t, c, jetstream.Config{})
	in := jetstream.NewIngester(conn)
	defer in.Close()

	liveCh := make(chan int, 100)
	stopLive, err := conn.Live(func(evs []cairn.Event) { liveCh <- len(evs) })
	if err != nil {
		t.Fatal(err)
	}
	defer stopLive()

	ctx := context.Background()
	for i := range 4 {
		if err := in.Ingest(ctx, events(fmt.Sprintf("r%d", i), 50)); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Ingest(ctx, events("r1", 50)); err != nil { // a client retry
		t.Fatal(err)
	}
	noID := events("x", 3)
	for i := range noID {
		noID[i].EventID = ""
	}
	if err := in.Ingest(ctx, noID); err != nil {
		t.Fatal(err)
	}
	if noID[0].EventID == "" {
		t.Fatal("Ingest assigned no eventId")
	}
	const want = 203
	js := rawStream(t, c)
	if n := streamMsgs(t, js, jetstream.DefaultStream); n != want {
		t.Fatalf("stream holds %d messages, want %d (the retried request deduplicated)", n, want)
	}
	if st := in.Stats(); st.Accepted != 253 {
		t.Fatalf("accepted %d, want 253", st.Accepted)
	}
	live := 0
	waitFor(t, "live tail", func() bool {
		for {
			select {
			case n := <-liveCh:
				live += n
			default:
				return live >= want
			}
		}
	})

	store := openStore(t)
	src, err := jetstream.NewSource(ctx, conn, 64)
	if err != nil {
		t.Fatal(err)
	}
	b := pipeline.NewBatcher(src, store, pipeline.Options{FlushSize: 64, FlushInterval: 10 * time.Millisecond})
	b.Start()
	waitFor(t, "stored", func() bool { n, _ := store.CountEvents(ctx); return n == want })
	waitFor(t, "stream drained by acks", func() bool { return streamMsgs(t, js, jetstream.DefaultStream) == 0 })
	if _, err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Stored != want || st.Duplicates != 0 || st.Backlog != 0 {
		t.Fatalf("batcher: stored %d, duplicates %d, backlog %d", st.Stored, st.Duplicates, st.Backlog)
	}
}

// TestClosedSourceRedelivers: messages a writer read but did not commit go
// back to the stream when it closes, and the next writer gets them all.
func TestClosedSourceRedelivers(t *testing.T) {
	c := natstest.Start(t, natstest.Options{})
	conn := connect(t, c, jetstream.Config{AckWait: time.Minute})
	in := jetstream.NewIngester(conn)
	defer in.Close()
	ctx := context.Background()
	if err := in.Ingest(ctx, events("a", 20)); err != nil {
		t.Fatal(err)
	}
	read := func(src *jetstream.Source, n int) []pipeline.Position {
		var got []pipeline.Position
		waitFor(t, "records", func() bool {
			for {
				_, pos, err := src.Next()
				if errors.Is(err, io.EOF) {
					return len(got) >= n
				} else if err != nil {
					t.Fatal(err)
				}
				got = append(got, pos)
			}
		})
		return got
	}
	s1, err := jetstream.NewSource(ctx, conn, 10)
	if err != nil {
		t.Fatal(err)
	}
	p1 := read(s1, 20)
	if err := s1.Commit(ctx, p1[4]); err != nil { // the first 5 are stored
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := jetstream.NewSource(ctx, conn, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close() //nolint:errcheck // Close never fails
	p2 := read(s2, 15)
	if len(p2) != 15 {
		t.Fatalf("second writer got %d records, want the 15 uncommitted", len(p2))
	}
	waitFor(t, "redeliveries counted", func() bool { return s2.Redeliveries() == 15 })
}

// TestLossyStreamRefused: an existing stream whose settings can lose
// acknowledged events is refused unless AllowLossy is set.
func TestLossyStreamRefused(t *testing.T) {
	c := natstest.Start(t, natstest.Options{})
	js := rawStream(t, c)
	cases := []struct {
		name   string
		mutate func(*natsjs.StreamConfig)
		lossy  bool
	}{
		{"DiscardOldWithLimit", func(sc *natsjs.StreamConfig) { sc.Discard, sc.MaxMsgs = natsjs.DiscardOld, 1000 }, true},
		{"MaxAge", func(sc *natsjs.StreamConfig) { sc.MaxAge = time.Hour }, true},
		{"Memory", func(sc *natsjs.StreamConfig) { sc.Storage = natsjs.MemoryStorage }, true},
		{"Interest", func(sc *natsjs.StreamConfig) { sc.Retention = natsjs.InterestPolicy }, true},
		{"DiscardNewWithLimit", func(sc *natsjs.StreamConfig) { sc.Discard, sc.MaxBytes = natsjs.DiscardNew, 1<<20 }, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("T%d", i)
			sc := natsjs.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name)}, Storage: natsjs.FileStorage,
				Retention: natsjs.WorkQueuePolicy, Discard: natsjs.DiscardNew}
			tc.mutate(&sc)
			if _, err := js.CreateStream(context.Background(), sc); err != nil {
				t.Fatal(err)
			}
			_, err := jetstream.Connect(context.Background(), jetstream.Config{URLs: c.URLs(), Stream: name, Replicas: 1})
			if tc.lossy != (err != nil) {
				t.Fatalf("lossy %v, Connect error %v", tc.lossy, err)
			}
			if err != nil && !strings.Contains(err.Error(), "CAIRN_NATS_ALLOW_LOSSY") {
				t.Fatalf("error does not say how to override: %v", err)
			}
			conn, err := jetstream.Connect(context.Background(), jetstream.Config{URLs: c.URLs(), Stream: name, Replicas: 1, AllowLossy: true})
			if err != nil {
				t.Fatalf("AllowLossy: %v", err)
			}
			conn.Close()
		})
	}
}

// TestIngestRefusals: a full stream and an unreachable one make Ingest
// fail with the typed EUNAVAILABLE errors (the HTTP layer's 503), never
// succeed.
func TestIngestRefusals(t *testing.T) {
	t.Run("StreamFull", func(t *testing.T) {
		c := natstest.Start(t, natstest.Options{})
		conn := connect(t, c, jetstream.Config{MaxBytes: 8 << 10})
		in := jetstream.NewIngester(conn)
		defer in.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			err = in.Ingest(context.Background(), events(fmt.Sprintf("f%d", i), 10))
		}
		if cairn.ErrorCode(err) != cairn.EUNAVAILABLE || !errors.Is(err, cairn.ErrBacklogFull) {
			t.Fatalf("full stream: %v", err)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		c := natstest.Start(t, natstest.Options{})
		conn := connect(t, c, jetstream.Config{AckTimeout: 500 * time.Millisecond, DuplicateWindow: time.Minute})
		in := jetstream.NewIngester(conn)
		defer in.Close()
		c.Kill(0)
		err := in.Ingest(context.Background(), events("u", 5))
		if cairn.ErrorCode(err) != cairn.EUNAVAILABLE || !errors.Is(err, cairn.ErrSpoolFailed) {
			t.Fatalf("stream down: %v", err)
		}
		c.Restart(0)
		c.WaitReady()
		waitFor(t, "ingest after restart", func() bool { return in.Ingest(context.Background(), events("u", 5)) == nil })
	})
	t.Run("Closed", func(t *testing.T) {
		c := natstest.Start(t, natstest.Options{})
		conn := connect(t, c, jetstream.Config{})
		in := jetstream.NewIngester(conn)
		in.Close()
		if err := in.Ingest(context.Background(), events("c", 1)); !errors.Is(err, cairn.ErrIngestClosed) {
			t.Fatalf("closed: %v", err)
		}
	})
}
