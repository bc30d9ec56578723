package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/betterauth"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/jetstream"
	"github.com/cairn-dev/cairn/mongo"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/wal"
	"github.com/joho/godotenv"

	"github.com/cairn-dev/cairn/auth"
)

// Config is Cairn's resolved configuration. It is parsed and validated once
// and passed down as a value.
type Config struct {
	Host            string
	Port            int
	DataDir         string
	Env             string // "development" or "production"
	LogLevel        slog.Level
	LogFormat       string // "text" or "json"
	FlushSize       int
	MaxFlushSize    int
	FlushInterval   time.Duration
	MaxBacklog      int64
	EventTypes      []string
	MaxFuture       time.Duration
	RequireWriteKey bool
	SessionGap      time.Duration
	ShutdownTimeout time.Duration
	DrainTimeout    time.Duration
	SegmentSize     int64
	StoreCache      int64
	// StoreCompactions bounds the embedded store's concurrent compactions.
	StoreCompactions int
	BodyMemory       int64

	MongoURI          string
	MongoWriteConcern string
	Retention         time.Duration

	// NATS JetStream (multi-node mode, when NatsURLs is set).
	NatsURLs            []string
	NatsStream          string
	NatsReplicas        int
	NatsAckTimeout      time.Duration
	NatsAllowLossy      bool
	NatsMaxBytes        int64
	NatsDuplicateWindow time.Duration
	NatsConsumer        string
	NatsAckWait         time.Duration

	AuthSecret     string
	AuthURL        string
	TrustedOrigins []string
	TrustedProxies []netip.Prefix
	Signup         auth.SignupPolicy

	PprofAddr        string
	PprofAllowRemote bool
	AccessLog        bool
}

// Addr returns the listen address.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Production reports whether Cairn runs in production mode.
func (c Config) Production() bool { return c.Env == "production" }

// setting is one configuration item: a flag, an environment variable, a
// default, and how to store the resolved value.
type setting struct {
	flag, env, def, help string
	set                  func(c *Config, v string) error
}

// offlineSettings are the settings the offline commands (export, users)
// use. The others matter only to the server: other subcommands still read
// and validate them from the environment, but do not offer them as flags
// (so their help lists only what they use).
var offlineSettings = map[string]bool{"data-dir": true, "env": true, "log-level": true, "log-format": true,
	"store-cache": true, "mongodb-uri": true, "mongo-write-concern": true, "retention": true}

func settings() []setting {
	return []setting{
		{"host", "CAIRN_HOST", "", "interface to listen on (empty = all)", func(c *Config, v string) error { c.Host = v; return nil }},
		{"port", "PORT", "3000", "TCP port to listen on (0 = any free port)", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return errors.New("must be a port number 0-65535")
			}
			c.Port = n
			return nil
		}},
		{"data-dir", "CAIRN_DATA_DIR", "./data", "directory for the spool and the embedded store", func(c *Config, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("must not be empty")
			}
			c.DataDir = v
			return nil
		}},
		{"env", "CAIRN_ENV", "", "development or production (falls back to NODE_ENV)", func(c *Config, v string) error {
			switch v {
			case "", "development", "dev", "test":
				c.Env = "development"
			case "production", "prod":
				c.Env = "production"
			default:
				return errors.New("must be development or production")
			}
			return nil
		}},
		{"log-level", "CAIRN_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return errors.New("must be debug, info, warn or error")
			}
			return nil
		}},
		{"log-format", "CAIRN_LOG_FORMAT", "", "text or json (default: json in production, text otherwise)", func(c *Config, v string) error {
			if v != "" && v != "text" && v != "json" {
				return errors.New("must be text or json")
			}
			c.LogFormat = v
			return nil
		}},
		{"flush-size", "CAIRN_FLUSH_SIZE", "500", "events waiting that trigger a store write", intSetter(100000, func(c *Config) *int { return &c.FlushSize })},
		{"max-flush-size", "CAIRN_MAX_FLUSH_SIZE", "10000", "most events one store write takes when a backlog waits (at least the flush size)", intSetter(100000, func(c *Config) *int { return &c.MaxFlushSize })},
		{"flush-interval", "CAIRN_FLUSH_INTERVAL", "1s", "longest an event waits before a store write", func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil || d < time.Millisecond {
				return errors.New("must be a duration of at least 1ms (e.g. 1s, 250ms)")
			}
			c.FlushInterval = d
			return nil
		}},
		{"max-backlog", "CAIRN_MAX_BACKLOG", "1000000", "unflushed events above which POST /events answers 503", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return errors.New("must be a positive integer")
			}
			c.MaxBacklog = n
			return nil
		}},
		{"event-types", "CAIRN_EVENT_TYPES", "", "comma-separated accepted event types (default: the seed's ten)", func(c *Config, v string) error {
			c.EventTypes = splitList(v)
			for _, t := range c.EventTypes {
				if len(t) > 64 {
					return fmt.Errorf("type %.20q… is longer than 64 bytes", t)
				}
			}
			return nil
		}},
		{"max-future", "CAIRN_MAX_FUTURE", "24h", "how far ahead of the server clock occurredAt may be", func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil || d < 0 {
				return errors.New("must be a non-negative duration (e.g. 24h)")
			}
			c.MaxFuture = d
			return nil
		}},
		{"require-write-key", "CAIRN_REQUIRE_WRITE_KEY", "false", "POST /events refuses requests without a source's write key (true or false)", func(c *Config, v string) error {
			switch v {
			case "true":
				c.RequireWriteKey = true
			case "false":
				c.RequireWriteKey = false
			default:
				return errors.New("must be true or false")
			}
			return nil
		}},
		{"session-gap", "CAIRN_SESSION_GAP", "30m", "inactivity that ends a derived session in journeys (events without sessionId)", func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil || d < time.Minute || d > 24*time.Hour {
				return errors.New("must be a duration from 1m to 24h (e.g. 30m)")
			}
			c.SessionGap = d
			return nil
		}},
		{"shutdown-timeout", "CAIRN_SHUTDOWN_TIMEOUT", "10s", "how long shutdown waits for in-flight requests", durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"drain-timeout", "CAIRN_DRAIN_TIMEOUT", "30s", "how long shutdown spends writing the backlog to the store", durationSetter(func(c *Config) *time.Duration { return &c.DrainTimeout })},
		{"segment-size", "CAIRN_SPOOL_SEGMENT_SIZE", strconv.Itoa(wal.DefaultSegmentSize), "spool segment size in bytes", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1<<16 || n > 1<<30 {
				return errors.New("must be an integer from 65536 to 1073741824")
			}
			c.SegmentSize = n
			return nil
		}},
		{"store-cache", "CAIRN_STORE_CACHE", formatSize(pebble.DefaultCacheSize), "embedded store block cache (e.g. 128MiB, 1GiB)", func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil || n < 8<<20 {
				return errors.New("must be a size of at least 8MiB (e.g. 128MiB, 1GiB)")
			}
			c.StoreCache = n
			return nil
		}},
		{"store-compactions", "CAIRN_STORE_COMPACTIONS", strconv.Itoa(pebble.DefaultMaxCompactions), "embedded store: most concurrent compactions (each keeps a core busy)", intSetter(16, func(c *Config) *int { return &c.StoreCompactions })},
		{"body-memory", "CAIRN_BODY_MEMORY", formatSize(cairnhttp.DefaultBodyMemory), "memory for request bodies being decoded, all requests together (e.g. 256MiB)", func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil || n < 32<<20 {
				return errors.New("must be a size of at least 32MiB (e.g. 256MiB, 1GiB)")
			}
			c.BodyMemory = n
			return nil
		}},
		{"mongodb-uri", "MONGODB_URI", "", "MongoDB connection string; empty = embedded store", func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "mongodb://") && !strings.HasPrefix(v, "mongodb+srv://") {
				return errors.New("must start with mongodb:// or mongodb+srv://")
			}
			c.MongoURI = v
			return nil
		}},
		{"mongo-write-concern", "CAIRN_MONGO_WRITE_CONCERN", mongo.DefaultWriteConcern, "MongoDB write concern: majority or a number of nodes ≥ 1", func(c *Config, v string) error {
			if _, err := mongo.ParseWriteConcern(v); err != nil {
				return errors.New("must be majority or an integer ≥ 1")
			}
			c.MongoWriteConcern = v
			return nil
		}},
		{"retention", "CAIRN_RETENTION", "", "delete events older than this (e.g. 90d); empty = keep forever", func(c *Config, v string) error {
			if v == "" {
				c.Retention = 0
				return nil
			}
			d, err := parseDuration(v)
			if err != nil || d < time.Hour {
				return errors.New("must be a duration of at least 1h (e.g. 90d, 720h)")
			}
			c.Retention = d
			return nil
		}},
		{"nats-url", "CAIRN_NATS_URL", "", "comma-separated NATS server URLs; set = multi-node mode (serve publishes to JetStream, writer consumes)", func(c *Config, v string) error {
			c.NatsURLs = splitList(v)
			for _, u := range c.NatsURLs {
				if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
					return errors.New("must be comma-separated nats:// or tls:// URLs")
				}
			}
			return nil
		}},
		{"nats-stream", "CAIRN_NATS_STREAM", jetstream.DefaultStream, "JetStream stream name (subject: its lower-cased name with dots)", func(c *Config, v string) error {
			if v == "" || strings.ContainsAny(v, ". *>") {
				return errors.New("must be a name without spaces, dots or wildcards")
			}
			c.NatsStream = v
			return nil
		}},
		{"nats-replicas", "CAIRN_NATS_REPLICAS", strconv.Itoa(jetstream.DefaultReplicas), "stream replicas when creating it (1-5)", intSetter(5, func(c *Config) *int { return &c.NatsReplicas })},
		{"nats-ack-timeout", "CAIRN_NATS_ACK_TIMEOUT", jetstream.DefaultAckTimeout.String(), "how long a request waits for the stream's acks (retrying) before 503", func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil || d < 10*time.Millisecond {
				return errors.New("must be a duration of at least 10ms (e.g. 5s)")
			}
			c.NatsAckTimeout = d
			return nil
		}},
		{"nats-allow-lossy", "CAIRN_NATS_ALLOW_LOSSY", "false", "start against an existing stream whose settings can lose events (true or false)", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.NatsAllowLossy = b
			return nil
		}},
		{"nats-max-bytes", "CAIRN_NATS_MAX_BYTES", formatSize(jetstream.DefaultMaxBytes), "stream size limit when creating it; full = publishes refused (503)", func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil || n < 1<<20 {
				return errors.New("must be a size of at least 1MiB (e.g. 8GiB)")
			}
			c.NatsMaxBytes = n
			return nil
		}},
		{"nats-duplicate-window", "CAIRN_NATS_DUPLICATE_WINDOW", jetstream.DefaultDuplicateWindow.String(), "how long the stream deduplicates msg ids (eventIds); must exceed the ack timeout", func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil || d < time.Second {
				return errors.New("must be a duration of at least 1s (e.g. 10m)")
			}
			c.NatsDuplicateWindow = d
			return nil
		}},
		{"nats-consumer", "CAIRN_NATS_CONSUMER", jetstream.DefaultConsumer, "the writers' shared durable consumer", func(c *Config, v string) error {
			if v == "" || strings.ContainsAny(v, ". *>") {
				return errors.New("must be a name without spaces, dots or wildcards")
			}
			c.NatsConsumer = v
			return nil
		}},
		{"nats-ack-wait", "CAIRN_NATS_ACK_WAIT", jetstream.DefaultAckWait.String(), "how long before a dead writer's unacknowledged events are redelivered", func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil || d < time.Second {
				return errors.New("must be a duration of at least 1s (e.g. 30s)")
			}
			c.NatsAckWait = d
			return nil
		}},
		{"auth-secret", "BETTER_AUTH_SECRET", "", "secret signing session cookies (required in production)", func(c *Config, v string) error { c.AuthSecret = v; return nil }},
		{"auth-url", "BETTER_AUTH_URL", "", "public base URL of this server (e.g. https://cairn.example.com)", func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
				return errors.New("must be an http:// or https:// URL")
			}
			c.AuthURL = strings.TrimRight(v, "/")
			return nil
		}},
		{"trusted-origins", "BETTER_AUTH_TRUSTED_ORIGINS", "", "comma-separated origins allowed to call with credentials", func(c *Config, v string) error {
			c.TrustedOrigins = splitList(v)
			return nil
		}},
		{"trusted-proxies", "CAIRN_TRUSTED_PROXIES", "", "comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For is believed", func(c *Config, v string) error {
			p, err := betterauth.ParseTrustedProxies(v)
			if err != nil {
				return fmt.Errorf("must be comma-separated IP addresses or CIDR prefixes: %w", err)
			}
			c.TrustedProxies = p
			return nil
		}},
		{"signup", "CAIRN_SIGNUP", "", "open or closed (default: open in development, closed in production)", func(c *Config, v string) error {
			p, err := auth.ParseSignupPolicy(v)
			c.Signup = p
			return err
		}},
		{"access-log", "CAIRN_ACCESS_LOG", "true", "one info-level log line per request (true or false)", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.AccessLog = b
			return nil
		}},
		{"pprof-addr", "CAIRN_PPROF_ADDR", "", "address for the pprof server (empty = off)", func(c *Config, v string) error { c.PprofAddr = v; return nil }},
		{"pprof-allow-remote", allowRemotePprofEnv, "false", "let pprof listen on a non-loopback address (true or false)", func(c *Config, v string) error {
			switch v {
			case "true":
				c.PprofAllowRemote = true
			case "false":
				c.PprofAllowRemote = false
			default:
				return errors.New("must be true or false")
			}
			return nil
		}},
	}
}

// intSetter returns a setting's parser for an integer from 1 to hi into
// the field of a Config.
func intSetter(hi int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > hi {
			return fmt.Errorf("must be an integer from 1 to %d", hi)
		}
		*field(c) = n
		return nil
	}
}

// durationSetter returns a setting's parser for a non-negative duration
// into the field of a Config.
func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := parseDuration(v)
		if err != nil || d < 0 {
			return errors.New("must be a non-negative duration (e.g. 10s)")
		}
		*field(c) = d
		return nil
	}
}

// parseDuration parses a Go duration, also accepting a whole number of days
// ("90d").
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("invalid duration %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// formatSize formats a byte count as parseSize reads it, in the largest unit
// that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// parseSize parses a byte count with an optional KiB, MiB or GiB suffix.
func parseSize(v string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			v, mult = n, m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("invalid size %q", v)
	}
	return n * mult, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// configError is a configuration problem; main prints it as one line.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// loadConfig resolves the configuration for a subcommand: flags > environment
// > .env file in the working directory > defaults. getenv and dotenvPath are
// injected for tests; extra, if set, registers the subcommand's own flags.
// Only serve and writer offer every setting as a flag. `-h` prints the subcommand's
// flags and returns flag.ErrHelp; an unknown flag or a stray argument is a
// one-line configError.
func loadConfig(name string, args []string, getenv func(string) string, dotenvPath string, stderr io.Writer, extra func(*flag.FlagSet)) (Config, error) {
	fs := flag.NewFlagSet("cairn "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by main as one line
	if extra != nil {
		extra(fs)
	}
	list := settings()
	values := make(map[string]*string, len(list))
	for _, s := range list {
		if name != "serve" && name != "writer" && !offlineSettings[s.flag] {
			continue
		}
		values[s.flag] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.help, s.env, s.def))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "Usage: cairn %s [flags]\n\nFlags:\n", name)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return Config{}, err
		}
		return Config{}, &configError{err.Error()}
	}
	if fs.NArg() > 0 {
		return Config{}, &configError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })

	dotenv := map[string]string{}
	if dotenvPath != "" {
		m, err := godotenv.Read(dotenvPath)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return Config{}, &configError{fmt.Sprintf("cannot read %s: %v", dotenvPath, err)}
		}
		if m != nil {
			dotenv = m
		}
	}
	lookup := func(key string) (string, bool) {
		if v := getenv(key); v != "" {
			return v, true
		}
		v, ok := dotenv[key]
		return v, ok && v != ""
	}
	var c Config
	for _, s := range list {
		v, src := s.def, "default"
		if e, ok := lookup(s.env); ok {
			v, src = e, s.env
		} else if s.env == "CAIRN_ENV" {
			if e, ok := lookup("NODE_ENV"); ok {
				v, src = e, "NODE_ENV"
			}
		}
		if setFlags[s.flag] {
			v, src = *values[s.flag], "--"+s.flag
		}
		if err := s.set(&c, v); err != nil {
			if src == "default" {
				src = s.env
			}
			return Config{}, &configError{fmt.Sprintf("invalid %s=%q: %v", src, v, err)}
		}
	}
	if err := checkPprofAddr(c.PprofAddr, c.PprofAllowRemote); c.PprofAddr != "" && err != nil {
		return Config{}, err
	}
	if len(c.NatsURLs) > 0 && c.NatsDuplicateWindow <= c.NatsAckTimeout {
		return Config{}, &configError{fmt.Sprintf("CAIRN_NATS_DUPLICATE_WINDOW=%v must exceed CAIRN_NATS_ACK_TIMEOUT=%v (publishes are retried that long)",
			c.NatsDuplicateWindow, c.NatsAckTimeout)}
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
		if c.Production() {
			c.LogFormat = "json"
		}
	}
	return c, nil
}

// newLogger builds the process's logger from the configuration.
func newLogger(c Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
