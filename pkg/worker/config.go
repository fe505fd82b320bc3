package worker

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/attest"
	"github.com/artifact-archiver/artifact-archiver/pkg/destination"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// Defaults of [ServiceConfig] that are the worker binary's own; the others
// are archive's, ghclient's and events'.
const (
	DefaultMetricsAddr   = ":9090"
	DefaultShutdownGrace = 60 * time.Second
)

// ServiceConfig is the worker binary's whole configuration, read from the
// environment by [ServiceConfigFromEnv]. Every field's variable and default
// is one row of the table of [Env].
type ServiceConfig struct {
	NATS     events.ConnConfig
	Topology events.Topology

	GitHubAPIURL  string
	GitHubToken   string
	AppID         int64
	AppPrivateKey []byte

	Destination    string
	ForcePathStyle bool
	// S3 are the storage class, encryption and Object Lock of new objects
	// in an s3:// destination.
	S3 destination.S3Writes

	Concurrency   int
	RunSlots      int // 0: Concurrency
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
	// Attestations turns on the lookup and archiving of each archived
	// artifact's attestations (ARCHIVER_ATTESTATIONS, default false; off
	// on GitHub Enterprise Server, which has none); see
	// archive.Config.Attestations.
	Attestations bool
	// TrustedRootSources is ARCHIVER_TRUSTED_ROOTS as given (default
	// empty: Sigstore Public Good through TUF), for attest.NewSources: the
	// trusted roots of the daily snapshot (archive.Config.TrustedRoots).
	TrustedRootSources string
	LogLevel           slog.Level
	LogFormat          string
}

// Env is the worker's environment table: every variable it reads, with its
// default and help, for -h and the README.
func Env() *service.Env { return new(ServiceConfig).env() }

// env binds c's fields to their variables and sets their defaults.
func (c *ServiceConfig) env() *service.Env {
	var e service.Env
	destination.Env(&e, &c.Destination, "", &c.ForcePathStyle)
	destination.S3WritesEnv(&e, &c.S3)
	e.String(&c.GitHubAPIURL, "GITHUB_API_URL", ghclient.DefaultAPIURL, "REST API root; `https://HOST/api/v3` for GitHub Enterprise Server")
	e.Int64(&c.AppID, "GITHUB_APP_ID", 0, "GitHub App id, with `GITHUB_APP_PRIVATE_KEY`: an installation token per event's installation, cached and refreshed").
		DefaultText("")
	e.Secret(&c.AppPrivateKey, "GITHUB_APP_PRIVATE_KEY", "the App's PEM private key")
	e.String(&c.GitHubToken, "GITHUB_TOKEN", "", "use this token for every request instead of App credentials")
	e.Int(&c.Concurrency, "ARCHIVER_CONCURRENCY", archive.DefaultConcurrency, "artifact transfers in flight per worker")
	e.Int(&c.RunSlots, "ARCHIVER_RUN_SLOTS", 0, "runs pulled at once per worker").DefaultText("`ARCHIVER_CONCURRENCY`")
	e.Bytes(&c.PartSize, "ARCHIVER_PART_SIZE", archive.DefaultPartSize,
		"smallest multipart part. Smaller artifacts are one PUT. Larger artifacts use parts of max(this, size/10 000), so files up to S3's 5 TiB limit fit")
	e.Duration(&c.EmptyListWait, "ARCHIVER_EMPTY_LIST_WAIT", archive.DefaultEmptyListWait,
		"retry an empty artifact list for this long after the event (artifacts can appear late)")
	e.Bool(&c.Delete, "ARCHIVER_DELETE_FROM_GITHUB", false, "delete verified artifacts at GitHub after the manifest is written")
	e.Bool(&c.DeleteDryRun, "ARCHIVER_DELETE_DRY_RUN", false, "only log what would be deleted")
	e.Bool(&c.AllowHTTP, "ARCHIVER_ALLOW_HTTP_DOWNLOADS", false,
		"accept `http://` download URLs and non-public (loopback, private, link-local) download addresses (simulators only)")
	e.List(&c.DownloadHosts, "ARCHIVER_DOWNLOAD_HOSTS", "comma-separated allowed redirect hosts. `.suffix` matches subdomains").
		DefaultText("any https host")
	e.String(&c.MetricsAddr, "ARCHIVER_METRICS_ADDR", DefaultMetricsAddr, "`/metrics`, `/healthz`, `/readyz`")
	e.Duration(&c.ShutdownGrace, "ARCHIVER_SHUTDOWN_GRACE", DefaultShutdownGrace,
		"on SIGTERM: stop pulling, let in-flight runs finish this long, hand the rest back, exit 0")
	e.Duration(&c.Heartbeat, "ARCHIVER_HEARTBEAT_INTERVAL", 0, "how often a running job tells JetStream it is alive").
		DefaultText("`ARCHIVER_ACK_WAIT`/4")
	e.Duration(&c.LeaseTTL, "ARCHIVER_LEASE_TTL", archive.DefaultLeaseTTL,
		"lifetime of an artifact's transfer lease, renewed every third of it. Other workers wait for a live lease instead of downloading the artifact again")
	e.Duration(&c.StallTimeout, "ARCHIVER_STALL_TIMEOUT", ghclient.DefaultStallTimeout,
		"a download that delivers no byte for this long is retried with backoff")
	e.Bool(&c.Attestations, "ARCHIVER_ATTESTATIONS", false,
		"look up each archived artifact's attestations (Sigstore bundles) and store them next to it, with a daily trusted root snapshot. "+
			"Needs the App permission `attestations: read`; not on GitHub Enterprise Server. A failed lookup is recorded and retried, never fails the artifact")
	e.String(&c.TrustedRootSources, "ARCHIVER_TRUSTED_ROOTS", "",
		"comma-separated `https://`, `http://` or `file://` URLs of trusted_root.json (or JSONL) for the daily snapshot; "+
			"add GitHub's own instance (`gh attestation trusted-root`) for private repositories").
		DefaultText("Sigstore Public Good via TUF")
	events.ConnEnv(&e, &c.NATS)
	events.TopologyEnv(&e, &c.Topology)
	events.ConsumerEnv(&e, &c.Topology)
	service.LogEnv(&e, &c.LogLevel, &c.LogFormat)
	return &e
}

// ServiceConfigFromEnv reads and validates the configuration. The App's
// key file (GITHUB_APP_PRIVATE_KEY_FILE) is read here.
func ServiceConfigFromEnv(getenv func(string) string) (ServiceConfig, error) {
	var c ServiceConfig
	if err := c.env().Parse(getenv); err != nil {
		return ServiceConfig{}, err
	}
	c.RunSlots = cmp.Or(c.RunSlots, c.Concurrency)
	c.Topology = c.Topology.WithDefaults()
	if err := c.Topology.Validate(); err != nil {
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
	case c.TrustedRootSources != "" && !c.Attestations:
		return errors.New("ARCHIVER_TRUSTED_ROOTS needs ARCHIVER_ATTESTATIONS=true")
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
	case service.CheckLogFormat(c.LogFormat) != nil:
		return fmt.Errorf("ARCHIVER_LOG_FORMAT=%q: want json or text", c.LogFormat)
	}
	if c.Attestations {
		if _, err := attest.NewSources(c.TrustedRootSources, nil); err != nil {
			return fmt.Errorf("ARCHIVER_TRUSTED_ROOTS: %w", err)
		}
	}
	return c.S3.Validate()
}
