package webhook

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
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
// [ConfigFromEnv]. Every field's default is applied there.
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

// EnvVar documents one environment variable for -h.
type EnvVar struct {
	Name, Help string
}

// Env lists every environment variable the webhook reads, with its default.
func Env() []EnvVar {
	vars := []EnvVar{
		{"GITHUB_WEBHOOK_SECRET", "webhook secret (this or the file is required)"},
		{"GITHUB_WEBHOOK_SECRET_FILE", "file of webhook secrets, one per line, for rotation"},
		{"ARCHIVER_LISTEN_ADDR", "listen address of POST /webhook (default " + DefaultListenAddr + ")"},
		{"ARCHIVER_METRICS_ADDR", "separate address for /healthz /readyz /metrics (default: the listen address)"},
		{"ARCHIVER_MAX_BODY_BYTES", "largest body accepted, else 413 (default " + strconv.Itoa(DefaultMaxBodyBytes) + ")"},
		{"ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT", "body buffer bytes of all requests at once, else 503; >= max body bytes (default " + strconv.Itoa(DefaultBodyBytesInFlight) + ")"},
		{"ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT", "wait for a request's headers, else the connection is closed (default " + DefaultReadHeaderTimeout.String() + ")"},
		{"ARCHIVER_WEBHOOK_BODY_TIMEOUT", "wait for a request's body after its headers, else 408 (default " + DefaultBodyTimeout.String() + ")"},
		{"ARCHIVER_PUBLISH_TIMEOUT", "wait for the JetStream ack, else 503; at most 9s (default " + events.DefaultPublishTimeout.String() + ")"},
		{"ARCHIVER_SHUTDOWN_TIMEOUT", "drain time after SIGTERM, > publish timeout (default " + DefaultShutdownTimeout.String() + ")"},
		{"ARCHIVER_LOG_LEVEL", "debug, info, warn or error (default info)"},
		{"ARCHIVER_LOG_FORMAT", "json or text (default " + DefaultLogFormat + ")"},
		{"ARCHIVER_FILTER_REPOS_ALLOW", "comma-separated owner/name globs to archive (default: all)"},
		{"ARCHIVER_FILTER_REPOS_DENY", "comma-separated owner/name globs to skip; wins over allow (default: none)"},
		{"ARCHIVER_FILTER_WORKFLOWS", "comma-separated globs on workflow name, path or file name (default: all)"},
		{"ARCHIVER_FILTER_BRANCHES", "comma-separated globs on the head branch (default: all)"},
		{"ARCHIVER_FILTER_CONCLUSIONS", "comma-separated conclusions, e.g. success,failure (default: all)"},
	}
	for _, kv := range events.ConnEnv {
		vars = append(vars, EnvVar{kv[0], kv[1]})
	}
	// The consumer settings are the worker's; the webhook reads the rest.
	consumerOnly := []string{"ARCHIVER_CONSUMER", "ARCHIVER_ACK_WAIT", "ARCHIVER_MAX_DELIVER", "ARCHIVER_MAX_ACK_PENDING"}
	for _, kv := range events.TopologyEnv {
		if !slices.Contains(consumerOnly, kv[0]) {
			vars = append(vars, EnvVar{kv[0], kv[1]})
		}
	}
	return vars
}

// Usage writes the -h text.
func Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: webhook [-h]

Receives GitHub workflow_run deliveries on POST /webhook and stores each
completed run as an event in NATS JetStream, answering 202 only once it is
stored. Also serves GET /healthz, /readyz and /metrics.

Environment:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range Env() {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Help)
	}
	tw.Flush()
}

// ConfigFromEnv reads the configuration through getenv and applies the
// defaults. It fails on values that do not parse, naming the variable;
// rules are checked by [Config.Validate].
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		ListenAddr:  cmp.Or(getenv("ARCHIVER_LISTEN_ADDR"), DefaultListenAddr),
		MetricsAddr: getenv("ARCHIVER_METRICS_ADDR"),
		NATS:        events.ConnConfigFromEnv(getenv),
		Secret:      getenv("GITHUB_WEBHOOK_SECRET"),
		SecretFile:  getenv("GITHUB_WEBHOOK_SECRET_FILE"),
		LogFormat:   strings.ToLower(cmp.Or(getenv("ARCHIVER_LOG_FORMAT"), DefaultLogFormat)),
		Filter: Filter{
			ReposAllow:  list(getenv("ARCHIVER_FILTER_REPOS_ALLOW")),
			ReposDeny:   list(getenv("ARCHIVER_FILTER_REPOS_DENY")),
			Workflows:   list(getenv("ARCHIVER_FILTER_WORKFLOWS")),
			Branches:    list(getenv("ARCHIVER_FILTER_BRANCHES")),
			Conclusions: list(getenv("ARCHIVER_FILTER_CONCLUSIONS")),
		},
	}
	var err error
	if c.Topology, err = events.TopologyFromEnv(getenv); err != nil {
		return Config{}, fmt.Errorf("webhook: %w", err)
	}
	var errs []error
	for _, n := range []struct {
		name string
		dst  *int64
		def  int64
	}{
		{"ARCHIVER_MAX_BODY_BYTES", &c.MaxBodyBytes, DefaultMaxBodyBytes},
		{"ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT", &c.BodyBytesInFlight, DefaultBodyBytesInFlight},
	} {
		*n.dst = n.def
		if s := getenv(n.name); s != "" {
			if *n.dst, err = strconv.ParseInt(s, 10, 64); err != nil {
				errs = append(errs, fmt.Errorf("webhook: %s=%q: not an integer", n.name, s))
			}
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{
		{"ARCHIVER_PUBLISH_TIMEOUT", &c.PublishTimeout, events.DefaultPublishTimeout},
		{"ARCHIVER_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, DefaultShutdownTimeout},
		{"ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT", &c.ReadHeaderTimeout, DefaultReadHeaderTimeout},
		{"ARCHIVER_WEBHOOK_BODY_TIMEOUT", &c.BodyTimeout, DefaultBodyTimeout},
	} {
		*d.dst = d.def
		if s := getenv(d.name); s != "" {
			if *d.dst, err = time.ParseDuration(s); err != nil {
				errs = append(errs, fmt.Errorf("webhook: %s=%q: not a duration", d.name, s))
			}
		}
	}
	if s := getenv("ARCHIVER_LOG_LEVEL"); s != "" {
		if err := c.LogLevel.UnmarshalText([]byte(s)); err != nil {
			errs = append(errs, fmt.Errorf("webhook: ARCHIVER_LOG_LEVEL=%q: want debug, info, warn or error", s))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// list splits a comma-separated value, dropping blanks.
func list(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
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
	case c.LogFormat != "json" && c.LogFormat != "text":
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

// NewLogger returns the slog logger of the configuration, writing to w.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
