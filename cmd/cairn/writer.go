package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/jetstream"
	"github.com/cairn-dev/cairn/metrics"
	"github.com/cairn-dev/cairn/pipeline"
)

// checkMultiNode validates the settings multi-node mode needs: a store
// every node shares (MONGODB_URI) and one session secret for all ingest
// nodes.
func checkMultiNode(cfg Config) error {
	if cfg.MongoURI == "" {
		return &configError{"CAIRN_NATS_URL is set (multi-node mode) but MONGODB_URI is not: every node must share one MongoDB store; the embedded store is single-node only"}
	}
	if cfg.AuthSecret == "" {
		return &configError{"CAIRN_NATS_URL is set (multi-node mode) but BETTER_AUTH_SECRET is not: every node must sign sessions with the same secret"}
	}
	return nil
}

// natsConfig is the jetstream configuration from cfg.
func natsConfig(cfg Config, name string, log *slog.Logger) jetstream.Config {
	return jetstream.Config{
		URLs:            cfg.NatsURLs,
		Stream:          cfg.NatsStream,
		Replicas:        cfg.NatsReplicas,
		MaxBytes:        cfg.NatsMaxBytes,
		DuplicateWindow: cfg.NatsDuplicateWindow,
		AckTimeout:      cfg.NatsAckTimeout,
		AllowLossy:      cfg.NatsAllowLossy,
		Consumer:        cfg.NatsConsumer,
		AckWait:         cfg.NatsAckWait,
		Name:            name,
		Logger:          log,
	}
}

// connectNATS connects to the cluster and checks or creates the stream.
func connectNATS(ctx context.Context, cfg Config, log *slog.Logger) (*jetstream.Conn, error) {
	host, _ := os.Hostname()
	c, err := jetstream.Connect(ctx, natsConfig(cfg, "cairn "+host, log))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// runWriter is `cairn writer`: it reads the stream through the writers'
// shared durable consumer and stores the events in MongoDB with the
// pipeline's batcher (size/age triggers, retry with backoff, dead-letter
// file in the data dir), acknowledging them only once stored. It serves
// GET /metrics and GET /health on CAIRN_HOST:PORT. SIGTERM drains what it
// holds and stops; anything unacknowledged is redelivered to another writer.
func runWriter(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	cfg, err := loadConfig("writer", args, os.Getenv, ".env", stderr, nil)
	if err != nil {
		return err
	}
	if len(cfg.NatsURLs) == 0 {
		return &configError{"CAIRN_NATS_URL is not set: the writer reads the NATS JetStream stream that `cairn serve` publishes to in multi-node mode"}
	}
	if cfg.MongoURI == "" {
		return &configError{"MONGODB_URI is not set: the writer stores events in the MongoDB store every node shares"}
	}
	log := newLogger(cfg, stderr)
	boot := log.With("component", "bootstrap")
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	store, err := openMongoStore(ctx, cfg, log.With("component", "mongo"))
	if err != nil {
		return fmt.Errorf("open mongodb store: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Warn("close store", "err", err)
		}
	}()
	conn, err := connectNATS(ctx, cfg, log.With("component", "nats"))
	if err != nil {
		return err
	}
	defer conn.Close()
	src, err := jetstream.NewSource(ctx, conn, cfg.FlushSize)
	if err != nil {
		return err
	}
	obs := newObservability(log.With("component", "metrics"))
	b := pipeline.NewBatcher(src, store, pipeline.Options{ //nolint:contextcheck // the batcher outlives ctx: Close drains it
		FlushSize:      cfg.FlushSize,
		FlushInterval:  cfg.FlushInterval,
		DeadLetterPath: filepath.Join(cfg.DataDir, "deadletter.jsonl"),
		Logger:         log.With("component", "writer"),
		OnFlush:        obs.OnFlush,
	})
	if obs.Register != nil {
		obs.Register(b.Stats)
	}
	obs.RegisterStream(func() metrics.StreamStats {
		return metrics.StreamStats{ConsumerPending: src.Lag(), Redeliveries: src.Redeliveries()}
	})
	b.Start() //nolint:contextcheck // the batcher must outlive ctx (the signal context): Close drains and stops it

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		_, _ = b.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	srv := &http.Server{Handler: writerMux(obs, store, b), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("writer http server", "err", err)
		}
	}()
	boot.Info("listening", "role", "writer", "addr", ln.Addr().String(), "urls", strings.Join(cfg.NatsURLs, ","),
		"stream", cfg.NatsStream, "consumer", cfg.NatsConsumer)

	<-ctx.Done()
	log.Info("shutting down", "component", "shutdown")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	_ = srv.Shutdown(sctx) //nolint:contextcheck // shutdown outlives the signal context
	cancel()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	n, err := b.Close(dctx) //nolint:contextcheck // the drain outlives the signal context
	if err != nil {
		log.Warn("drain incomplete; the rest is redelivered from the stream", "flushed", n, "err", err)
	} else {
		log.Info("drained", "count", n)
	}
	return nil
}

// writerMux serves the writer's GET /metrics and GET /health (200 when the
// store answers, 503 otherwise, with the batcher's backlog).
func writerMux(obs *observability, store cairn.EventStore, b *pipeline.Batcher) http.Handler {
	mux := http.NewServeMux()
	if obs.Handler != nil {
		mux.Handle("GET /metrics", obs.Handler)
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, code := "ok", http.StatusOK
		if err := store.Ping(ctx); err != nil {
			status, code = "degraded", http.StatusServiceUnavailable
		}
		st := b.Stats()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"status":%q,"backlog":%d,"stored":%d,"flushFailures":%d}`+"\n", status, st.Backlog, st.Stored, st.FlushFailures)
	})
	return mux
}
