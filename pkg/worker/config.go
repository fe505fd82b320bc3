package worker

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

// ServiceConfig is the worker binary's whole configuration, read from the
// environment by [ServiceConfigFromEnv]. Every field's default is in Env.
type ServiceConfig struct {
	NATS     events.ConnConfig
	Topology events.Topology

	GitHubAPIURL  string
	GitHubToken   string
	AppID         int64
	AppPrivateKey []byte

	Destination    string
	ForcePathStyle bool

	Concurrency   int
	RunSlots      int
	PartSize      int64
	EmptyListWait time.Duration
	Delete        bool
	DeleteDryRun  bool
	AllowHTTP     bool
	DownloadHosts []string
	MetricsAddr   string
	ShutdownGrace time.Duration
	// Heartbeat is the interval of in-progress acks (0: AckWait/4).
	Heartbeat    time.Duration
	LeaseTTL     time.Duration
	StallTimeout time.Duration
	LogLevel     string
	LogFormat    string
}

// Env documents every variable the worker reads, with its default.
var Env = [][2]string{
	{"ARCHIVER_DESTINATION", "where the archive lives: s3://bucket/prefix or file:///path (required)"},
	{"ARCHIVER_S3_FORCE_PATH_STYLE", "path-style S3 URLs, for MinIO and other S3-compatibles (default false)"},
	{"AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...", "the standard AWS SDK chain (IRSA, instance roles, ...)"},
	{"GITHUB_API_URL", "GitHub REST API root (default " + ghclient.DefaultAPIURL + "; GHES: https://HOST/api/v3)"},
	{"GITHUB_TOKEN", "a token for every request (instead of App credentials)"},
	{"GITHUB_APP_ID", "GitHub App id, for installation tokens"},
	{"GITHUB_APP_PRIVATE_KEY / GITHUB_APP_PRIVATE_KEY_FILE", "the App's PEM private key, inline or as a file"},
	{"ARCHIVER_CONCURRENCY", "artifact transfers in flight per worker (default 4)"},
	{"ARCHIVER_RUN_SLOTS", "runs processed at once per worker (default ARCHIVER_CONCURRENCY)"},
	{"ARCHIVER_PART_SIZE", "minimum multipart part size in bytes; smaller artifacts are one PUT (default 16777216)"},
	{"ARCHIVER_EMPTY_LIST_WAIT", "retry an empty artifact list this long after the event (default 2m)"},
	{"ARCHIVER_DELETE_FROM_GITHUB", "delete verified artifacts from GitHub after the manifest is written (default false)"},
	{"ARCHIVER_DELETE_DRY_RUN", "log what would be deleted instead of deleting (default false)"},
	{"ARCHIVER_ALLOW_HTTP_DOWNLOADS", "accept http:// download URLs and non-public download addresses (loopback, private, link-local), for simulators only (default false)"},
	{"ARCHIVER_DOWNLOAD_HOSTS", "comma-separated allowed redirect hosts, .suffix for subdomains (default any https host)"},
	{"ARCHIVER_METRICS_ADDR", "address of /metrics, /healthz, /readyz (default :9090)"},
	{"ARCHIVER_SHUTDOWN_GRACE", "on SIGTERM, let in-flight runs finish this long, then hand them back (default 60s)"},
	{"ARCHIVER_HEARTBEAT_INTERVAL", "how often a running job tells JetStream it is alive (default ARCHIVER_ACK_WAIT/4)"},
	{"ARCHIVER_LEASE_TTL", "lifetime of an artifact's transfer lease, renewed every third of it; other workers wait for a live lease (default 2m)"},
	{"ARCHIVER_STALL_TIMEOUT", "a download that delivers no byte this long is retried with backoff (default 60s)"},
	{"ARCHIVER_LOG_LEVEL", "debug, info, warn, error (default info)"},
	{"ARCHIVER_LOG_FORMAT", "json or text (default json)"},
}

// ServiceConfigFromEnv reads and validates the configuration.
func ServiceConfigFromEnv(getenv func(string) string) (ServiceConfig, error) {
	c := ServiceConfig{
		NATS:          events.ConnConfigFromEnv(getenv),
		GitHubAPIURL:  cmp.Or(getenv("GITHUB_API_URL"), ghclient.DefaultAPIURL),
		GitHubToken:   getenv("GITHUB_TOKEN"),
		Destination:   getenv("ARCHIVER_DESTINATION"),
		MetricsAddr:   cmp.Or(getenv("ARCHIVER_METRICS_ADDR"), ":9090"),
		LogLevel:      cmp.Or(getenv("ARCHIVER_LOG_LEVEL"), "info"),
		LogFormat:     cmp.Or(getenv("ARCHIVER_LOG_FORMAT"), "json"),
		Concurrency:   4,
		PartSize:      16 << 20,
		EmptyListWait: 2 * time.Minute,
		ShutdownGrace: 60 * time.Second,
		LeaseTTL:      archive.DefaultLeaseTTL,
		StallTimeout:  ghclient.DefaultStallTimeout,
	}
	var errs []error
	p := parser{getenv: getenv, errs: &errs}
	c.ForcePathStyle = p.bool("ARCHIVER_S3_FORCE_PATH_STYLE", false)
	c.Delete = p.bool("ARCHIVER_DELETE_FROM_GITHUB", false)
	c.DeleteDryRun = p.bool("ARCHIVER_DELETE_DRY_RUN", false)
	c.AllowHTTP = p.bool("ARCHIVER_ALLOW_HTTP_DOWNLOADS", false)
	c.Concurrency = p.int("ARCHIVER_CONCURRENCY", c.Concurrency)
	c.RunSlots = p.int("ARCHIVER_RUN_SLOTS", c.Concurrency)
	c.PartSize = int64(p.int("ARCHIVER_PART_SIZE", int(c.PartSize)))
	c.EmptyListWait = p.duration("ARCHIVER_EMPTY_LIST_WAIT", c.EmptyListWait)
	c.ShutdownGrace = p.duration("ARCHIVER_SHUTDOWN_GRACE", c.ShutdownGrace)
	c.Heartbeat = p.duration("ARCHIVER_HEARTBEAT_INTERVAL", 0)
	c.LeaseTTL = p.duration("ARCHIVER_LEASE_TTL", c.LeaseTTL)
	c.StallTimeout = p.duration("ARCHIVER_STALL_TIMEOUT", c.StallTimeout)
	c.AppID = int64(p.int("GITHUB_APP_ID", 0))
	if hosts := getenv("ARCHIVER_DOWNLOAD_HOSTS"); hosts != "" {
		for _, h := range strings.Split(hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.DownloadHosts = append(c.DownloadHosts, h)
			}
		}
	}
	switch key, file := getenv("GITHUB_APP_PRIVATE_KEY"), getenv("GITHUB_APP_PRIVATE_KEY_FILE"); {
	case key != "":
		c.AppPrivateKey = []byte(key)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("GITHUB_APP_PRIVATE_KEY_FILE: %w", err))
		}
		c.AppPrivateKey = b
	}
	topo, err := events.TopologyFromEnv(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c.Topology = topo
	if err := errors.Join(errs...); err != nil {
		return ServiceConfig{}, err
	}
	return c, c.Validate()
}

// Validate names the field and the rule that is broken.
func (c ServiceConfig) Validate() error {
	switch {
	case c.Destination == "":
		return errors.New("ARCHIVER_DESTINATION is required (s3://bucket/prefix or file:///path)")
	case c.GitHubToken == "" && (c.AppID == 0 || len(c.AppPrivateKey) == 0):
		return errors.New("GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE)")
	case c.Concurrency < 1 || c.Concurrency > 256:
		return fmt.Errorf("ARCHIVER_CONCURRENCY=%d: want 1..256", c.Concurrency)
	case c.RunSlots < 1 || c.RunSlots > c.Topology.MaxAckPending:
		return fmt.Errorf("ARCHIVER_RUN_SLOTS=%d: want 1..ARCHIVER_MAX_ACK_PENDING (%d)", c.RunSlots, c.Topology.MaxAckPending)
	case c.PartSize < 5<<20 || c.PartSize > 5<<30:
		return fmt.Errorf("ARCHIVER_PART_SIZE=%d: S3 parts are 5 MiB..5 GiB", c.PartSize)
	case c.DeleteDryRun && !c.Delete:
		return errors.New("ARCHIVER_DELETE_DRY_RUN=true needs ARCHIVER_DELETE_FROM_GITHUB=true")
	case c.ShutdownGrace <= 0:
		return fmt.Errorf("ARCHIVER_SHUTDOWN_GRACE=%s: must be positive", c.ShutdownGrace)
	case c.ShutdownGrace >= c.Topology.AckWait*10:
		return fmt.Errorf("ARCHIVER_SHUTDOWN_GRACE=%s: keep it under 10×ARCHIVER_ACK_WAIT (%s)", c.ShutdownGrace, c.Topology.AckWait)
	case c.Heartbeat < 0:
		return fmt.Errorf("ARCHIVER_HEARTBEAT_INTERVAL=%s: must not be negative", c.Heartbeat)
	case c.LeaseTTL < 3*time.Second:
		return fmt.Errorf("ARCHIVER_LEASE_TTL=%s: want at least 3s", c.LeaseTTL)
	case c.StallTimeout < time.Second:
		return fmt.Errorf("ARCHIVER_STALL_TIMEOUT=%s: want at least 1s", c.StallTimeout)
	case c.LogFormat != "json" && c.LogFormat != "text":
		return fmt.Errorf("ARCHIVER_LOG_FORMAT=%q: want json or text", c.LogFormat)
	}
	return nil
}

type parser struct {
	getenv func(string) string
	errs   *[]error
}

func (p parser) bool(name string, def bool) bool {
	s := p.getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		*p.errs = append(*p.errs, fmt.Errorf("%s=%q: want true or false", name, s))
	}
	return v
}

func (p parser) int(name string, def int) int {
	s := p.getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		*p.errs = append(*p.errs, fmt.Errorf("%s=%q: not an integer", name, s))
	}
	return v
}

func (p parser) duration(name string, def time.Duration) time.Duration {
	s := p.getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		*p.errs = append(*p.errs, fmt.Errorf("%s=%q: not a duration", name, s))
	}
	return v
}
