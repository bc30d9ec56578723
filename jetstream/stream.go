// Package jetstream is Cairn's multi-node ingest path on NATS JetStream:
// ingest nodes publish each accepted event to a replicated stream and answer
// only once the stream has acknowledged every one (Ingester); writers read
// the stream through a shared durable pull consumer and feed the pipeline's
// batcher (Source, used with pipeline.NewBatcher), acknowledging messages
// only once the store holds them durably; and every node can follow the
// events any node accepted (Live) for the live tail.
//
// Each message is one event in the binary event codec
// (cairn.Event.AppendBinary) with its eventId as Nats-Msg-Id, so a publish
// retried within the stream's duplicate window is stored once, and the
// store's idempotent insert absorbs any later duplicate or redelivery.
//
// The stream (Conn.EnsureStream) uses file storage, work-queue retention
// (a message leaves the stream when a writer acknowledges it), discard-new
// limits (a full stream refuses publishes, which Ingest reports as
// EUNAVAILABLE, never by dropping accepted events) and republishes every
// stored message to a core subject for the live tail.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Defaults for the zero fields of Config.
const (
	// DefaultStream is the default Config.Stream.
	DefaultStream = "CAIRN_EVENTS"
	// DefaultReplicas is the default Config.Replicas.
	DefaultReplicas = 3
	// DefaultAckTimeout is the default Config.AckTimeout.
	DefaultAckTimeout = 5 * time.Second
	// DefaultDuplicateWindow is the default Config.DuplicateWindow.
	DefaultDuplicateWindow = 10 * time.Minute
	// DefaultMaxBytes is the default Config.MaxBytes (8 GiB).
	DefaultMaxBytes = 8 << 30
	// DefaultConsumer is the default Config.Consumer.
	DefaultConsumer = "cairn-writers"
	// DefaultAckWait is the default Config.AckWait.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxAckPending is the default Config.MaxAckPending.
	DefaultMaxAckPending = 20_000
)

// Config configures the connection, the stream and the consumer.
type Config struct {
	// URLs are the NATS servers to connect to (any of the cluster's nodes).
	URLs []string
	// Stream is the stream's name (DefaultStream if empty). Its subject is
	// the lower-cased name with "." for "_" ("cairn.events"), and the live
	// tail's subject that plus ".live".
	Stream string
	// Replicas is the stream's replication factor (DefaultReplicas if zero).
	Replicas int
	// MaxBytes bounds the stream (DefaultMaxBytes if zero); once full it
	// refuses publishes.
	MaxBytes int64
	// DuplicateWindow is how long the stream remembers message ids
	// (DefaultDuplicateWindow if zero). It must exceed AckTimeout, the
	// horizon over which Ingest retries a publish.
	DuplicateWindow time.Duration
	// AckTimeout is how long Ingest waits for the stream to acknowledge a
	// request's events, retrying, before it answers EUNAVAILABLE
	// (DefaultAckTimeout if zero).
	AckTimeout time.Duration
	// AllowLossy lets EnsureStream accept an existing stream whose settings
	// can lose acknowledged events (memory storage, discard-old limits, a
	// maximum age, interest retention); otherwise it refuses.
	AllowLossy bool
	// Consumer is the writers' shared durable consumer (DefaultConsumer if
	// empty).
	Consumer string
	// AckWait is how long a writer may hold a message before the stream
	// redelivers it (DefaultAckWait if zero); a live writer extends it for
	// messages waiting on a slow store.
	AckWait time.Duration
	// MaxAckPending bounds the messages delivered and not yet acknowledged
	// across all writers (DefaultMaxAckPending if zero).
	MaxAckPending int
	// Name is the client connection's name, shown by the server.
	Name string
	// Logger receives the connection's logs.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Replicas <= 0 {
		c.Replicas = DefaultReplicas
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.Consumer == "" {
		c.Consumer = DefaultConsumer
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Subject returns the subject events are published on.
func (c Config) Subject() string {
	return strings.ReplaceAll(strings.ToLower(c.withDefaults().Stream), "_", ".")
}

// LiveSubject returns the core subject the stream republishes stored events to.
func (c Config) LiveSubject() string { return c.Subject() + ".live" }

// Conn is a connection to the NATS cluster with the stream checked.
type Conn struct {
	cfg Config
	nc  *nats.Conn
	js  natsjs.JetStream
	log *slog.Logger
}

// Connect connects to cfg.URLs (reconnecting forever to any of them
// afterwards) and checks or creates the stream (EnsureStream).
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	if len(cfg.URLs) == 0 {
		return nil, errors.New("jetstream: no NATS URL")
	}
	if cfg.DuplicateWindow <= cfg.AckTimeout {
		return nil, fmt.Errorf("jetstream: duplicate window %v must exceed the ack timeout %v (the publish retry horizon)",
			cfg.DuplicateWindow, cfg.AckTimeout)
	}
	log := cfg.Logger
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","),
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("nats error", "err", err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect to %s: %w", strings.Join(cfg.URLs, ","), err)
	}
	// A publish unanswered for a third of the ack timeout (its server died,
	// or the stream's leader moved) fails and Ingest retries it with the
	// same msg id, so a request survives a failover within its ack timeout.
	js, err := natsjs.New(nc, natsjs.WithPublishAsyncMaxPending(65536),
		natsjs.WithPublishAsyncTimeout(max(cfg.AckTimeout/3, 100*time.Millisecond)))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c := &Conn{cfg: cfg, nc: nc, js: js, log: log}
	if err := c.retry(ctx, "check stream", c.EnsureStream); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// startTimeout bounds how long start-up requests (stream check, consumer
// creation) are retried while the cluster elects leaders or restarts.
const startTimeout = 60 * time.Second

// refusal is an error retrying cannot fix (a lossy or foreign stream).
type refusal struct{ error }

// retry calls fn until it succeeds, returns a refusal, ctx ends, or
// startTimeout has passed, logging each failure.
func (c *Conn) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	deadline := time.Now().Add(startTimeout)
	wait := 250 * time.Millisecond
	for {
		err := fn(ctx)
		var r refusal
		if err == nil {
			return nil
		} else if errors.As(err, &r) {
			return r.error
		} else if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		c.log.Warn(what+" failed; retrying", "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// Config returns the connection's configuration with defaults filled in.
func (c *Conn) Config() Config { return c.cfg }

// Close closes the connection.
func (c *Conn) Close() { c.nc.Close() }

// streamConfig is the stream Cairn creates.
func (c *Conn) streamConfig() natsjs.StreamConfig {
	return natsjs.StreamConfig{
		Name:        c.cfg.Stream,
		Description: "Cairn accepted events, waiting for the writers",
		Subjects:    []string{c.cfg.Subject()},
		Retention:   natsjs.WorkQueuePolicy,
		MaxBytes:    c.cfg.MaxBytes,
		MaxMsgs:     -1,
		Discard:     natsjs.DiscardNew,
		Storage:     natsjs.FileStorage,
		Replicas:    c.cfg.Replicas,
		Duplicates:  c.cfg.DuplicateWindow,
		RePublish:   &natsjs.RePublish{Source: c.cfg.Subject(), Destination: c.cfg.LiveSubject()},
	}
}

// Lossy lists the settings of sc that can lose acknowledged events (none
// for the stream Cairn creates).
func Lossy(sc natsjs.StreamConfig) []string {
	var out []string
	if sc.Storage == natsjs.MemoryStorage {
		out = append(out, "memory storage (lost when the servers restart)")
	}
	if sc.Discard == natsjs.DiscardOld && (sc.MaxBytes > 0 || sc.MaxMsgs > 0 || sc.MaxMsgsPerSubject > 0) {
		out = append(out, "discard-old with limits (a full stream drops the oldest, unwritten events)")
	}
	if sc.MaxAge > 0 {
		out = append(out, fmt.Sprintf("max age %v (events not written by then expire)", sc.MaxAge))
	}
	if sc.Retention == natsjs.InterestPolicy {
		out = append(out, "interest retention (events published while no consumer exists are dropped)")
	}
	return out
}

// EnsureStream creates the stream if it does not exist. An existing stream
// is checked: EnsureStream refuses one whose settings can lose acknowledged
// events (see Lossy) unless Config.AllowLossy is set, and logs other
// differences (replicas, duplicate window, no live republish).
func (c *Conn) EnsureStream(ctx context.Context) error {
	want := c.streamConfig()
	s, err := c.js.Stream(ctx, want.Name)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		if _, err := c.js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("jetstream: create stream %s: %w", want.Name, err)
		}
		c.log.Info("stream created", "stream", want.Name, "subject", want.Subjects[0], "replicas", want.Replicas,
			"max_bytes", want.MaxBytes, "duplicate_window", want.Duplicates)
		return nil
	}
	if err != nil {
		return fmt.Errorf("jetstream: look up stream %s: %w", want.Name, err)
	}
	got := s.CachedInfo().Config
	if !subjectCovered(got.Subjects, want.Subjects[0]) {
		return refusal{fmt.Errorf("jetstream: stream %s does not take subject %s (its subjects: %v)", want.Name, want.Subjects[0], got.Subjects)}
	}
	if lossy := Lossy(got); len(lossy) > 0 {
		if !c.cfg.AllowLossy {
			return refusal{fmt.Errorf("jetstream: stream %s can lose acknowledged events: %s (fix the stream, or set CAIRN_NATS_ALLOW_LOSSY=true to accept it)",
				want.Name, strings.Join(lossy, "; "))}
		}
		c.log.Warn("stream can lose acknowledged events (allowed)", "stream", want.Name, "settings", strings.Join(lossy, "; "))
	}
	if got.Replicas < want.Replicas {
		c.log.Warn("stream has fewer replicas than configured", "stream", want.Name, "replicas", got.Replicas, "want", want.Replicas)
	}
	if got.Duplicates <= c.cfg.AckTimeout {
		c.log.Warn("stream's duplicate window is not longer than the ack timeout: a retried publish may be stored twice (the store still ignores the copy)",
			"stream", want.Name, "duplicate_window", got.Duplicates, "ack_timeout", c.cfg.AckTimeout)
	}
	if got.RePublish == nil || got.RePublish.Destination != c.cfg.LiveSubject() {
		c.log.Warn("stream does not republish to the live subject: the live tail shows no events", "stream", want.Name,
			"live_subject", c.cfg.LiveSubject())
	}
	return nil
}

func subjectCovered(subjects []string, subj string) bool {
	for _, s := range subjects {
		if s == subj || s == ">" || strings.HasSuffix(s, ".>") && strings.HasPrefix(subj, strings.TrimSuffix(s, ">")) {
			return true
		}
	}
	return false
}
