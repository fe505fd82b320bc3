package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

// The tests run in deploy/; the repository root is one up.
const repoRoot = ".."

// readFile returns a file's contents or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goRuntimeEnv are variables read by the Go runtime of every binary.
var goRuntimeEnv = []string{"GOMEMLIMIT", "GOMAXPROCS", "GODEBUG", "GOGC"}

// binaryEnv tells whether a variable is one the binary reads.
type binaryEnv struct {
	names []string
	// awsChain: any AWS_* variable (the SDK's chain: worker.Env documents
	// the common ones and "...").
	awsChain bool
}

func (e binaryEnv) has(name string) bool {
	if e.awsChain && strings.HasPrefix(name, "AWS_") {
		return true
	}
	return slices.Contains(e.names, name) || slices.Contains(goRuntimeEnv, name)
}

// workerEnv is what cmd/worker reads: the rows of worker.Env (its own
// settings, the NATS connection and the JetStream topology).
func workerEnv() binaryEnv {
	return binaryEnv{names: worker.Env().Names(), awsChain: true}
}

// webhookEnv is what cmd/webhook reads (webhook.Env), plus the consumer's
// variables: they come from the ConfigMap both binaries share, so that the
// streams they provision agree, and the webhook ignores them.
func webhookEnv() binaryEnv {
	var consumer service.Env
	events.ConsumerEnv(&consumer, new(events.Topology))
	return binaryEnv{names: append(webhook.Env().Names(), consumer.Names()...)}
}

// mkbucketEnv is what deploy/mkbucket reads.
func mkbucketEnv() binaryEnv {
	return binaryEnv{names: []string{"ARCHIVER_DESTINATION", "ARCHIVER_S3_FORCE_PATH_STYLE", "MKBUCKET_TIMEOUT"}, awsChain: true}
}

// ghsimEnv is what cmd/ghsim reads (its flags' env defaults).
func ghsimEnv(t *testing.T) binaryEnv {
	src := string(readFile(t, filepath.Join(repoRoot, "cmd/ghsim/main.go")))
	var names []string
	for _, m := range regexp.MustCompile(`getenv\("([A-Z0-9_]+)"\)`).FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatal("cmd/ghsim/main.go: no getenv calls found")
	}
	return binaryEnv{names: names}
}

// scriptDefault returns the default of VAR in build-images.sh
// (VAR=${VAR:-default}).
func scriptDefault(t *testing.T, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `=\$\{` + name + `:-([^}]*)\}$`)
	m := re.FindStringSubmatch(string(readFile(t, "build-images.sh")))
	if m == nil {
		t.Fatalf("build-images.sh: no %s=${%s:-...} line", name, name)
	}
	return m[1]
}

// imageTargets returns TARGETS=(...) of build-images.sh.
func imageTargets(t *testing.T) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^TARGETS=\(([^)]*)\)$`).FindStringSubmatch(string(readFile(t, "build-images.sh")))
	if m == nil {
		t.Fatal("build-images.sh: no TARGETS=(...) line")
	}
	return strings.Fields(m[1])
}

// captureRegisterer records the collectors registered on it.
type captureRegisterer struct{ collectors []prometheus.Collector }

func (c *captureRegisterer) Register(col prometheus.Collector) error {
	c.collectors = append(c.collectors, col)
	return nil
}

func (c *captureRegisterer) MustRegister(cols ...prometheus.Collector) {
	c.collectors = append(c.collectors, cols...)
}

func (c *captureRegisterer) Unregister(prometheus.Collector) bool { return true }

var (
	metricsOnce  sync.Once
	metricsNames map[string]bool
	metricsErr   error
)

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// ourMetrics returns every metric name the binaries export: the
// descriptors of the exported metric constructors, plus every
// Name: "archiver_..." literal in pkg/ (for metrics built inside
// unexported constructors, like the worker's).
func ourMetrics(t *testing.T) map[string]bool {
	t.Helper()
	metricsOnce.Do(func() {
		names := map[string]bool{}
		reg := &captureRegisterer{}
		if _, err := webhook.NewMetrics(reg); err != nil {
			metricsErr = err
			return
		}
		archive.NewMetrics(reg)
		ghclient.NewMetrics(reg)
		for _, c := range reg.collectors {
			ch := make(chan *prometheus.Desc, 16)
			go func() { c.Describe(ch); close(ch) }()
			for d := range ch {
				if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
					names[m[1]] = true
				}
			}
		}
		nameRE := regexp.MustCompile(`Name:\s*"(archiver_[a-z0-9_]+)"`)
		metricsErr = filepath.WalkDir(filepath.Join(repoRoot, "pkg"), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range nameRE.FindAllStringSubmatch(string(b), -1) {
				names[m[1]] = true
			}
			return nil
		})
		metricsNames = names
	})
	if metricsErr != nil {
		t.Fatal(metricsErr)
	}
	return metricsNames
}

// externalMetrics are the metrics the alerts and the dashboard use that
// other programs export.
var externalMetrics = map[string]string{
	"nats_consumer_num_pending":     "prometheus-nats-exporter of the NATS chart (-jsz=all -prefix=nats)",
	"nats_consumer_num_ack_pending": "prometheus-nats-exporter of the NATS chart",
	"nats_stream_total_messages":    "prometheus-nats-exporter of the NATS chart",
	"process_cpu_seconds_total":     "the process collector both binaries register",
	"process_resident_memory_bytes": "the process collector both binaries register",
}

// knownMetric reports whether a metric name used in PromQL exists.
func knownMetric(t *testing.T, name string) bool {
	ours := ourMetrics(t)
	if ours[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && ours[base] {
			return true
		}
	}
	_, ok := externalMetrics[name]
	return ok
}
