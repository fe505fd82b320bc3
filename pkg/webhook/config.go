package webhook

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// Defaults of [Config].
const (
	DefaultListenAddr      = ":8080"
	DefaultShutdownTimeout = 20 * time.Second
	DefaultLogFormat       = "json"
	// DefaultReadHeaderTimeout bounds the wait for a request's headers.
	// GitHub sends a delivery at once, in well under a second.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds the wait for a body once its headers are
	// in: GitHub gives up on the whole delivery after 10 s anyway.
	DefaultBodyTimeout = 10 * time.Second
	// DefaultBodyBytesInFlight bounds the body buffers of all deliveries
	// being read or handled at once: room for two 25 MiB bodies, or
	// thousands of the usual 20-30 KB ones.
	DefaultBodyBytesInFlight = 64 << 20
	// MaxPublishTimeout keeps a publish well inside GitHub's 10 s delivery
	// timeout, so that a slow JetStream is a 503 and not a timed-out
	// delivery of unknown outcome.
	MaxPublishTimeout = 9 * time.Second
)

// Config is the webhook's configuration, read from the environment by
// [ConfigFromEnv]. Every field's variable and default is one row of the
// table of [Env].
type Config struct {
	// ListenAddr is the address of POST /webhook (ARCHIVER_LISTEN_ADDR,
	// default ":8080"). It also serves /healthz, /readyz and /metrics
	// unless MetricsAddr is set.
	ListenAddr string
	// MetricsAddr, if set, moves /healthz, /readyz and /metrics to their
	// own listener, off the public webhook port (ARCHIVER_METRICS_ADDR,
	// default "").
	MetricsAddr string
	// NATS is the connection (NATS_URL, NATS_CREDS, ...; see
	// events.ConnEnv).
	NATS events.ConnConfig
	// Topology names and sizes the streams the webhook provisions and
	// publishes to (ARCHIVER_STREAM_REPLICAS, ARCHIVER_STREAM_MAX_AGE,
	// ARCHIVER_STREAM_MAX_BYTES, ARCHIVER_DEDUP_WINDOW, ...; see
	// events.TopologyEnv).
	Topology events.Topology
	// Secret is a webhook secret (GITHUB_WEBHOOK_SECRET).
	Secret string
	// SecretFile holds webhook secrets, one per line, blank lines ignored
	// (GITHUB_WEBHOOK_SECRET_FILE). During a rotation it holds the old and
	// the new secret. Secret and SecretFile may both be set; at least one
	// is required.
	SecretFile string
	// MaxBodyBytes bounds a delivery body (ARCHIVER_MAX_BODY_BYTES, default
	// 26214400, GitHub's 25 MiB maximum). Larger bodies get 413.
	MaxBodyBytes int64
	// BodyBytesInFlight bounds the memory of the body buffers of all
	// requests being handled at once (ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT,
	// default 67108864, 64 MiB). Buffers grow with the bytes that arrive and
	// are counted as they grow; a request that would pass the bound gets 503
	// with Retry-After. It must be at least MaxBodyBytes.
	BodyBytesInFlight int64
	// ReadHeaderTimeout bounds the wait for a request's headers; a slower
	// client's connection is closed (ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT,
	// default 10s).
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds the wait for a request's body once its headers
	// are in; a slower client gets 408 (ARCHIVER_WEBHOOK_BODY_TIMEOUT,
	// default 10s). It also bounds how long a slow client holds its share
	// of BodyBytesInFlight.
	BodyTimeout time.Duration
	// PublishTimeout bounds the wait for JetStream's acknowledgement; past
	// it the delivery gets 503 (ARCHIVER_PUBLISH_TIMEOUT, default 5s, at
	// most 9s).
	PublishTimeout time.Duration
	// ShutdownTimeout bounds the drain of in-flight deliveries after
	// SIGTERM (ARCHIVER_SHUTDOWN_TIMEOUT, default 20s). It must exceed
	// PublishTimeout.
	ShutdownTimeout time.Duration
	// LogLevel is debug, info, warn or error (ARCHIVER_LOG_LEVEL, default
	// info). Accepted runs log at info, ignored deliveries at debug.
	LogLevel slog.Level
	// LogFormat is json or text (ARCHIVER_LOG_FORMAT, default json).
	LogFormat string
	// Filter selects the runs to archive (ARCHIVER_FILTER_*; default all).
	Filter Filter
}

// Env is the webhook's environment table: every variable it reads, with
// its default and help, for -h and the README.
func Env() *service.Env { return new(Config).env() }

// env binds c's fields to their variables and sets their defaults.
func (c *Config) env() *service.Env {
	var e service.Env
	e.String(&c.Secret, "GITHUB_WEBHOOK_SECRET", "", "the webhook secret (this or the file is required)")
	e.String(&c.SecretFile, "GITHUB_WEBHOOK_SECRET_FILE", "", "one secret per line, blank lines ignored. During a rotation, list the old and the new one")
	e.String(&c.ListenAddr, "ARCHIVER_LISTEN_ADDR", DefaultListenAddr, "`POST /webhook`, plus `/healthz`, `/readyz` and `/metrics` unless `ARCHIVER_METRICS_ADDR` is set")
	e.String(&c.MetricsAddr, "ARCHIVER_METRICS_ADDR", "", "a separate address for the health and metrics endpoints, off the public webhook port").
		DefaultText("the listen address")
	e.Bytes(&c.MaxBodyBytes, "ARCHIVER_MAX_BODY_BYTES", DefaultMaxBodyBytes, "larger bodies get 413")
	e.Bytes(&c.BodyBytesInFlight, "ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT", DefaultBodyBytesInFlight,
		"body buffer bytes of all requests at once. Buffers grow with the bytes that arrive; past this, 503 with `Retry-After`. At least `ARCHIVER_MAX_BODY_BYTES`")
	e.Duration(&c.ReadHeaderTimeout, "ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT", DefaultReadHeaderTimeout, "a client slower to send its headers is disconnected")
	e.Duration(&c.BodyTimeout, "ARCHIVER_WEBHOOK_BODY_TIMEOUT", DefaultBodyTimeout,
		"a client slower to send its body after the headers gets 408 (GitHub sends a delivery at once)")
	e.Duration(&c.PublishTimeout, "ARCHIVER_PUBLISH_TIMEOUT", events.DefaultPublishTimeout,
		"how long to wait for the JetStream ack before answering 503; at most 9s (GitHub allows 10 s)")
	e.Duration(&c.ShutdownTimeout, "ARCHIVER_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout,
		"on SIGTERM, the time allowed to finish in-flight publishes (must exceed the publish timeout)")
	e.List(&c.Filter.ReposAllow, "ARCHIVER_FILTER_REPOS_ALLOW", "comma-separated `owner/name` globs to archive").DefaultText("all")
	e.List(&c.Filter.ReposDeny, "ARCHIVER_FILTER_REPOS_DENY", "comma-separated `owner/name` globs to skip. Deny wins over allow").DefaultText("none")
	e.List(&c.Filter.Workflows, "ARCHIVER_FILTER_WORKFLOWS", "comma-separated globs on the workflow name, path or file name").DefaultText("all")
	e.List(&c.Filter.Branches, "ARCHIVER_FILTER_BRANCHES", "comma-separated globs on the head branch").DefaultText("all")
	e.List(&c.Filter.Conclusions, "ARCHIVER_FILTER_CONCLUSIONS",
		"comma-separated conclusions, e.g. `success,failure`. All by default: failed runs often carry the most useful artifacts").DefaultText("all")
	events.ConnEnv(&e, &c.NATS)
	// The consumer's variables (events.ConsumerEnv) are the worker's; the
	// webhook provisions only the streams.
	events.TopologyEnv(&e, &c.Topology)
	service.LogEnv(&e, &c.LogLevel, &c.LogFormat)
	return &e
}

// ConfigFromEnv reads the configuration through getenv and applies the
// defaults. It fails on values that do not parse, naming the variable;
// rules are checked by [Config.Validate].
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	if err := c.env().Parse(getenv); err != nil {
		return Config{}, fmt.Errorf("webhook: %w", err)
	}
	c.Topology = c.Topology.WithDefaults()
	return c, nil
}

// Validate names the first field that breaks a rule.
func (c Config) Validate() error {
	switch {
	case c.ListenAddr == "":
		return errors.New("webhook: ARCHIVER_LISTEN_ADDR is empty")
	case c.MetricsAddr != "" && c.MetricsAddr == c.ListenAddr && !strings.HasSuffix(c.ListenAddr, ":0"):
		return fmt.Errorf("webhook: ARCHIVER_METRICS_ADDR %q must differ from ARCHIVER_LISTEN_ADDR", c.MetricsAddr)
	case c.Secret == "" && c.SecretFile == "":
		return errors.New("webhook: GITHUB_WEBHOOK_SECRET or GITHUB_WEBHOOK_SECRET_FILE is required")
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("webhook: ARCHIVER_MAX_BODY_BYTES %d: must be positive", c.MaxBodyBytes)
	case c.BodyBytesInFlight < c.MaxBodyBytes:
		return fmt.Errorf("webhook: ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT %d must be at least ARCHIVER_MAX_BODY_BYTES %d, so that the largest body fits", c.BodyBytesInFlight, c.MaxBodyBytes)
	case c.ReadHeaderTimeout <= 0:
		return fmt.Errorf("webhook: ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT %s: must be positive", c.ReadHeaderTimeout)
	case c.BodyTimeout <= 0:
		return fmt.Errorf("webhook: ARCHIVER_WEBHOOK_BODY_TIMEOUT %s: must be positive", c.BodyTimeout)
	case c.PublishTimeout <= 0 || c.PublishTimeout > MaxPublishTimeout:
		return fmt.Errorf("webhook: ARCHIVER_PUBLISH_TIMEOUT %s: want >0 and <= %s (GitHub gives up after 10s)", c.PublishTimeout, MaxPublishTimeout)
	case c.ShutdownTimeout <= c.PublishTimeout:
		return fmt.Errorf("webhook: ARCHIVER_SHUTDOWN_TIMEOUT %s must exceed ARCHIVER_PUBLISH_TIMEOUT %s, so that in-flight publishes finish", c.ShutdownTimeout, c.PublishTimeout)
	case service.CheckLogFormat(c.LogFormat) != nil:
		return fmt.Errorf("webhook: ARCHIVER_LOG_FORMAT %q: want json or text", c.LogFormat)
	}
	if err := c.Filter.Validate(); err != nil {
		return err
	}
	if err := c.Topology.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}

// LoadSecrets returns the secrets of Secret and SecretFile, reading the
// file with readFile (os.ReadFile). It fails if there are none.
func (c Config) LoadSecrets(readFile func(string) ([]byte, error)) (Secrets, error) {
	s := NewSecrets(c.Secret)
	if c.SecretFile != "" {
		data, err := readFile(c.SecretFile)
		if err != nil {
			return Secrets{}, fmt.Errorf("webhook: read GITHUB_WEBHOOK_SECRET_FILE: %w", err)
		}
		s = s.Merge(ParseSecrets(data))
	}
	if s.Len() == 0 {
		return Secrets{}, errors.New("webhook: no webhook secret configured (GITHUB_WEBHOOK_SECRET_FILE holds only blank lines?)")
	}
	return s, nil
}

// NewLogger returns the slog logger of the configuration, writing to w
// (see service.NewLogger). A format that Validate rejects logs JSON.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	log, err := service.NewLogger(w, c.LogLevel, c.LogFormat)
	if err != nil {
		log, _ = service.NewLogger(w, c.LogLevel, service.LogJSON)
	}
	return log
}
