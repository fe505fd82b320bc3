//go:build integration

package integration

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// Stack is one running artifact-archiver system: NATS JetStream, MinIO, the
// GitHub simulator, the webhook and any number of workers. The process and
// docker modes implement it; every test is written against it alone.
//
// Methods fail the test that started the stack (t.Fatal) instead of
// returning errors; call them from that test's goroutine.
type Stack interface {
	// Mode is "process" or "docker".
	Mode() string

	// Sim steers and observes the GitHub simulator (its /_ghsim/ API).
	Sim() *SimClient
	// WebhookURL is where signed deliveries are POSTed.
	WebhookURL() string
	// WebhookMetricsURL is the webhook's /metrics.
	WebhookMetricsURL() string

	// StartWorker starts one more worker and waits until it is ready
	// (its /readyz answers 200: NATS connected, consumer provisioned).
	StartWorker() Worker
	// Workers returns every worker started so far, killed ones included.
	Workers() []Worker

	// NATSURL is a URL for the test's own connections (assertions); it can
	// change when NATS restarts, so ask again after a restart.
	NATSURL() string
	// StopNATS stops nats-server gracefully (SIGTERM), KillNATS with
	// SIGKILL; both keep its store for StartNATS. RestartNATS is StopNATS,
	// then StartNATS. With a cluster they act on every node.
	StopNATS()
	KillNATS()
	StartNATS()
	RestartNATS()

	// StopMinIO kills the S3 server (MinIO, or versitygw with
	// StackConfig.S3Backend) with SIGKILL, as a crash would, keeping its
	// data for StartMinIO, which waits until it serves again.
	StopMinIO()
	StartMinIO()
	// S3 returns a client for the S3 server as it is reachable now (path
	// style, the root credentials). Bucket and Prefix locate the archive.
	S3() *s3.Client
}

// ClusterStack is a Stack whose NATS is a 3-node cluster (docker mode only),
// with per-node faults.
type ClusterStack interface {
	Stack
	// KillNATSNode kills node i (0-based) with SIGKILL.
	KillNATSNode(i int)
	// StartNATSNode starts node i again.
	StartNATSNode(i int)
	// PartitionWorker cuts worker w off from node i: the worker's network
	// link to that node is removed; the rest of the cluster still reaches it.
	PartitionWorker(w Worker, i int)
	// HealWorker undoes PartitionWorker.
	HealWorker(w Worker, i int)
	// ConnectedNode returns the node that worker w's NATS connection is on
	// (from each node's /connz), or -1.
	ConnectedNode(w Worker) int
}

// Worker is one worker process or container.
type Worker interface {
	// Name is unique within the stack ("worker-1", ...).
	Name() string
	// MetricsURL is the worker's /metrics.
	MetricsURL() string
	// Kill ends the worker with SIGKILL, after a last scrape of its metrics
	// (see LastMetrics).
	Kill()
	// Alive is false once the worker was killed.
	Alive() bool
	// LastMetrics is the scrape taken just before Kill (nil before).
	LastMetrics() Metrics
}

// StackConfig shapes a stack.
type StackConfig struct {
	// Scenario is the simulator's content; the harness adds the App
	// (AppID, its public key) and leaves everything else as given.
	Scenario ghsim.Scenario
	// Workers is the number of workers started with the stack (default 1;
	// negative: none).
	Workers int
	// WorkerEnv adds to (or overrides) every worker's environment.
	WorkerEnv map[string]string
	// PerWorkerEnv[i] adds to (or overrides) the environment of the i-th
	// worker started (0-based, in start order), after WorkerEnv: one slow
	// or crippled worker among normal ones.
	PerWorkerEnv []map[string]string
	// AckWait is the consumer's AckWait (default 10 s, the least the
	// topology accepts), and MaxDeliver its deliveries before dead-letter
	// (default the topology's); the webhook and the workers share both.
	AckWait    time.Duration
	MaxDeliver int
	// NATSNodes is 1 (default) or 3: a JetStream cluster with R3 streams
	// (docker mode only; eachMode runs such a test in docker mode alone).
	NATSNodes int
	// S3Backend is the S3 server: S3MinIO (default, ""), S3VersityGW or
	// S3MinIORetention (process mode only for the last two; eachMode runs
	// such a test in process mode alone).
	S3Backend string
	// ProcessOnly, when set, says why the test runs in process mode alone
	// (eachMode logs it and runs no docker subtest).
	ProcessOnly string
}

// The S3 servers a stack can run (StackConfig.S3Backend).
const (
	S3MinIO     = "minio"
	S3VersityGW = "versitygw"
	// S3MinIORetention is MinIO with its built-in KMS key retentionKMSKey,
	// and the bucket created with Object Lock (so versioned).
	S3MinIORetention = "minio-retention"
)

// retentionKMSKey is the KMS key of the S3MinIORetention backend.
const retentionKMSKey = "archiver-it-key"

// s3Backend applies the default of StackConfig.S3Backend.
func (c StackConfig) s3Backend() string { return cmp.Or(c.S3Backend, S3MinIO) }

// Names shared by both modes.
const (
	appID        = 4242
	installation = 77
	owner        = "octo-org"
	repoName     = "octo-repo"
	bucket       = "archive"
	prefix       = "gha"
	// minioUser and minioSecret are the root credentials of docker mode's
	// MinIO (process mode uses internal/testkit/testserver's).
	minioUser   = "archiver-it"
	minioSecret = "archiver-it-secret-key"
	// ackWait is the consumer's default AckWait: small, so a killed
	// worker's run is redelivered quickly (the minimum the topology
	// accepts).
	ackWait = 10 * time.Second
)

// workerCount applies the default of StackConfig.Workers.
func (c StackConfig) workerCount() int {
	switch {
	case c.Workers == 0:
		return 1
	case c.Workers < 0:
		return 0
	}
	return c.Workers
}

// topologyEnv is the JetStream topology shared by the webhook and the
// workers (both provision the streams, so they must agree).
func (c StackConfig) topologyEnv() map[string]string {
	env := map[string]string{"ARCHIVER_ACK_WAIT": cmp.Or(c.AckWait, ackWait).String()}
	if c.MaxDeliver > 0 {
		env["ARCHIVER_MAX_DELIVER"] = strconv.Itoa(c.MaxDeliver)
	}
	if c.NATSNodes > 1 {
		env["ARCHIVER_STREAM_REPLICAS"] = strconv.Itoa(c.NATSNodes)
	}
	return env
}

// webhookEnv is the webhook's environment but for its addresses.
func (c StackConfig) webhookEnv(natsURL, secret string) map[string]string {
	env := c.topologyEnv()
	maps.Copy(env, map[string]string{
		"NATS_URL":              natsURL,
		"GITHUB_WEBHOOK_SECRET": secret,
		"ARCHIVER_LOG_FORMAT":   "text",
	})
	return env
}

// workerEnv is the environment of the i-th worker (0-based) but for its
// metrics address and S3 endpoint.
func (c StackConfig) workerEnv(i int, natsURL, apiURL, blobHost, s3Key, s3Secret string) map[string]string {
	env := c.topologyEnv()
	maps.Copy(env, map[string]string{
		"NATS_URL":                      natsURL,
		"ARCHIVER_DESTINATION":          "s3://" + bucket + "/" + prefix,
		"ARCHIVER_S3_FORCE_PATH_STYLE":  "true",
		"AWS_REGION":                    "us-east-1",
		"AWS_ACCESS_KEY_ID":             s3Key,
		"AWS_SECRET_ACCESS_KEY":         s3Secret,
		"AWS_EC2_METADATA_DISABLED":     "true",
		"GITHUB_API_URL":                apiURL,
		"GITHUB_APP_ID":                 strconv.Itoa(appID),
		"GITHUB_APP_PRIVATE_KEY":        string(appKey().privatePEM),
		"ARCHIVER_ALLOW_HTTP_DOWNLOADS": "true",
		"ARCHIVER_DOWNLOAD_HOSTS":       blobHost,
		"ARCHIVER_SHUTDOWN_GRACE":       "5s",
		"ARCHIVER_EMPTY_LIST_WAIT":      "10s",
		"ARCHIVER_LOG_FORMAT":           "text",
	})
	maps.Copy(env, c.WorkerEnv)
	if i < len(c.PerWorkerEnv) {
		maps.Copy(env, c.PerWorkerEnv[i])
	}
	return env
}

// appKeys is the GitHub App's key pair, shared by the whole run.
type appKeys struct {
	privatePEM, publicPEM []byte
}

var appKey = sync.OnceValue(func() appKeys {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		panic(err)
	}
	return appKeys{
		privatePEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		publicPEM:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
	}
})

// Scenario file names, in one directory.
const (
	scenarioFile = "scenario.json"
	appKeyFile   = "app.pub.pem"
)

// writeScenario writes the scenario (with the App added) and the App's
// public key into dir, and returns the scenario file's path.
func writeScenario(t *testing.T, sc ghsim.Scenario, dir string) string {
	t.Helper()
	sc.App = &ghsim.ScenarioApp{ID: appID, PublicKeyPEM: appKeyFile}
	b, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		t.Fatalf("encode scenario: %v", err)
	}
	path := filepath.Join(dir, scenarioFile)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, appKeyFile), appKey().publicPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// logTail is how much of a component's log a failed test shows: 8 KiB, or
// ARCHIVER_TEST_LOG_TAIL bytes.
func logTail() int {
	if n, err := strconv.Atoi(os.Getenv("ARCHIVER_TEST_LOG_TAIL")); err == nil && n > 0 {
		return n
	}
	return 8 << 10
}
