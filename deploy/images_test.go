package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

var stageRE = regexp.MustCompile(`(?m)^FROM\s+(\S+)\s+AS\s+(\S+)\s*$`)

// dockerStages returns the stages of a Dockerfile: name → FROM image, and
// each stage's text.
func dockerStages(t *testing.T, file string) (from, body map[string]string) {
	t.Helper()
	src := string(readFile(t, file))
	from, body = map[string]string{}, map[string]string{}
	idx := stageRE.FindAllStringSubmatchIndex(src, -1)
	for i, m := range idx {
		end := len(src)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		name := src[m[4]:m[5]]
		from[name] = src[m[2]:m[3]]
		body[name] = src[m[0]:end]
	}
	return from, body
}

// TestDockerfileTargets: deploy/Dockerfile has exactly one stage per
// build-images.sh target, each a static binary from cmd/<t> or deploy/<t>
// on the shared non-root base.
func TestDockerfileTargets(t *testing.T) {
	src := string(readFile(t, "Dockerfile"))
	if !strings.Contains(src, "ARG BASE=gcr.io/distroless/static-debian12:nonroot\n") {
		t.Error("Dockerfile: want ARG BASE=gcr.io/distroless/static-debian12:nonroot before the first FROM")
	}
	from, body := dockerStages(t, "Dockerfile")
	if from["base"] != "${BASE}" {
		t.Fatalf("Dockerfile: want a stage \"FROM ${BASE} AS base\", got %q", from["base"])
	}
	for _, want := range []string{"USER 65532:65532", "org.opencontainers.image.source", "org.opencontainers.image.revision",
		"org.opencontainers.image.version", "org.opencontainers.image.created", "/etc/ssl/certs/ca-certificates.crt"} {
		if !strings.Contains(body["base"], want) {
			t.Errorf("Dockerfile base stage: missing %q", want)
		}
	}
	targets := imageTargets(t)
	var stages []string
	for name := range from {
		if name != "base" {
			stages = append(stages, name)
		}
	}
	slices.Sort(stages)
	sortedTargets := slices.Sorted(slices.Values(targets))
	if !slices.Equal(stages, sortedTargets) {
		t.Errorf("Dockerfile stages %v != build-images.sh TARGETS %v; add both for a new binary", stages, sortedTargets)
	}
	for _, name := range stages {
		b := body[name]
		if from[name] != "base" {
			t.Errorf("stage %s: FROM %s, want FROM base (non-root user, labels, CA bundle)", name, from[name])
		}
		bin := "/usr/local/bin/" + name
		for _, want := range []string{"COPY bin/" + name + " " + bin, `ENTRYPOINT ["` + bin + `"]`, "org.opencontainers.image.title="} {
			if !strings.Contains(b, want) {
				t.Errorf("stage %s: missing %q", name, want)
			}
		}
		if strings.Contains(b, "USER ") {
			t.Errorf("stage %s: must not change the base's USER", name)
		}
	}
	for _, target := range targets {
		if !hasMainPackage(t, filepath.Join(repoRoot, "cmd", target)) && !hasMainPackage(t, target) {
			t.Errorf("target %s: no main package in cmd/%s or deploy/%s", target, target, target)
		}
	}

	sfrom, sbody := dockerStages(t, "standins.Dockerfile")
	for _, name := range []string{"nats", "minio"} {
		if sfrom[name] != "scratch" {
			t.Errorf("standins.Dockerfile: stage %s FROM %q, want scratch", name, sfrom[name])
		}
		if !strings.Contains(sbody[name], "USER 65532:65532") {
			t.Errorf("standins.Dockerfile: stage %s must run as 65532", name)
		}
	}
}

// TestProjectLabel: every image the project builds carries one label,
// which .ci/clean-images removes them by; build-images.sh, the Dockerfiles,
// the cleanup script and the integration suite agree on it.
func TestProjectLabel(t *testing.T) {
	label := scriptValue(t, "build-images.sh", "PROJECT_LABEL")
	key, value, ok := strings.Cut(label, "=")
	if !ok || key == "" || value == "" {
		t.Fatalf("build-images.sh: PROJECT_LABEL=%q, want key=value", label)
	}
	instruction := key + `="` + value + `"`
	_, body := dockerStages(t, "Dockerfile")
	if !strings.Contains(body["base"], instruction) {
		t.Errorf("Dockerfile base stage: missing the label %s (every stage builds FROM base)", instruction)
	}
	_, sbody := dockerStages(t, "standins.Dockerfile")
	for _, name := range []string{"nats", "minio"} {
		if !strings.Contains(sbody[name], instruction) {
			t.Errorf("standins.Dockerfile: stage %s lacks the label %s", name, instruction)
		}
	}
	if got := scriptValue(t, filepath.Join(repoRoot, ".ci", "clean-images"), "PROJECT_LABEL"); got != label {
		t.Errorf(".ci/clean-images: PROJECT_LABEL=%s, build-images.sh has %s", got, label)
	}
	if !strings.Contains(string(readFile(t, filepath.Join(repoRoot, ".ci", "run"))), ".ci/clean-images") {
		t.Error(".ci/run does not run .ci/clean-images before the tests")
	}
	it := string(readFile(t, filepath.Join(repoRoot, "integration", "docker_test.go")))
	for name, want := range map[string]string{"projectLabel": key, "projectName": value} {
		if got := goConst(t, it, name); got != want {
			t.Errorf("integration/docker_test.go: %s = %q, want %q (build-images.sh PROJECT_LABEL)", name, got, want)
		}
	}
}

// TestStandInNames: stand-ins are never tagged with the official images'
// names (a stand-in found under the official name hides that the image is
// missing, and a name the build lower-cases is not found at all). The
// official names are compose.yaml's defaults, as in the integration suite.
func TestStandInNames(t *testing.T) {
	src := string(readFile(t, "build-images.sh"))
	it := string(readFile(t, filepath.Join(repoRoot, "integration", "docker_test.go")))
	for _, c := range []struct{ kind, official, itConst string }{
		{"nats", "OFFICIAL_NATS_IMAGE", "defaultNATSImage"},
		{"minio", "OFFICIAL_MINIO_IMAGE", "defaultMinIOImage"},
	} {
		official := scriptValue(t, "build-images.sh", c.official)
		if got := goConst(t, it, c.itConst); got != official {
			t.Errorf("integration/docker_test.go: %s = %q, build-images.sh %s=%s", c.itConst, got, c.official, official)
		}
		upper := strings.ToUpper(c.kind)
		want := upper + "_STANDIN=${" + upper + "_STANDIN:-$IMAGE_REPO/" + c.kind + "-standin:$(docker_tag "
		if !strings.Contains(src, want) {
			t.Errorf("build-images.sh: want the %s stand-in named by %q...", c.kind, want)
		}
		if !strings.Contains(src, `echo "`+upper+`_IMAGE=$`+upper+`_STANDIN"`) {
			t.Errorf("build-images.sh --standins: must print %s_IMAGE=<stand-in> for compose", upper)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*ourRepo\s*=\s*"[a-z0-9][a-z0-9._/-]*"`).MatchString(it) {
		t.Error(`integration/docker_test.go: ourRepo must be a lower-case repository name`)
	}
	if !strings.Contains(it, `ourRepo + "/" + kind + "-standin"`) {
		t.Error("integration/docker_test.go: stand-ins must be built as ourRepo/<kind>-standin")
	}
}

// scriptValue returns VALUE of a plain NAME=VALUE line in a shell script
// (relative to deploy/).
func scriptValue(t *testing.T, file, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + `=(\S+)$`).FindStringSubmatch(string(readFile(t, file)))
	if m == nil {
		t.Fatalf("%s: no %s=... line", file, name)
	}
	return m[1]
}

// goConst returns the value of a string constant NAME = "..." in Go source.
func goConst(t *testing.T, src, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + name + `\s*=\s*"([^"]*)"`).FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("no constant %s", name)
	}
	return m[1]
}

func hasMainPackage(t *testing.T, dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			if bytes.Contains(readFile(t, filepath.Join(dir, e.Name())), []byte("\npackage main\n")) {
				return true
			}
		}
	}
	return false
}

// compose is the part of the Compose file format the stack uses.
type compose struct {
	Services map[string]composeService `json:"services"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
	Volumes map[string]any `json:"volumes"`
}

type composeService struct {
	Image           string            `json:"image"`
	Command         []string          `json:"command"`
	Environment     map[string]string `json:"environment"`
	Secrets         []string          `json:"secrets"`
	Volumes         []string          `json:"volumes"`
	Ports           []string          `json:"ports"`
	DependsOn       any               `json:"depends_on"`
	Restart         string            `json:"restart"`
	StopGracePeriod string            `json:"stop_grace_period"`
	ReadOnly        bool              `json:"read_only"`
	CapDrop         []string          `json:"cap_drop"`
	SecurityOpt     []string          `json:"security_opt"`
	Networks        map[string]struct {
		Aliases []string `json:"aliases"`
	} `json:"networks"`
}

// TestComposeStack: deploy/compose.yaml runs the images build-images.sh
// builds, with configurations the binaries accept, wired to each other.
// (build-images.sh --check also runs "docker compose config", which needs
// Docker.)
func TestComposeStack(t *testing.T) {
	raw := readFile(t, "compose.yaml")
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil { // x-* extension fields are allowed, so not strict
		t.Fatal(err)
	}
	targets := imageTargets(t)
	repo, tag := scriptDefault(t, "IMAGE_REPO"), scriptDefault(t, "IMAGE_TAG")
	ours := map[string]binaryEnv{"webhook": webhookEnv(), "worker": workerEnv(), "ghsim": ghsimEnv(t), "mkbucket": mkbucketEnv()}
	for name, svc := range c.Services {
		if _, ok := ours[name]; !ok {
			continue
		}
		want := "${IMAGE_REPO:-" + repo + "}/" + name + ":${IMAGE_TAG:-" + tag + "}"
		if svc.Image != want {
			t.Errorf("service %s: image %q, want %q (the name build-images.sh builds)", name, svc.Image, want)
		}
		if !slices.Contains(targets, name) {
			t.Errorf("service %s: not a build-images.sh target", name)
		}
		if !svc.ReadOnly || !slices.Contains(svc.CapDrop, "ALL") {
			t.Errorf("service %s: want read_only: true and cap_drop: [ALL], as in Kubernetes", name)
		}
		for k := range svc.Environment {
			if !ours[name].has(k) {
				t.Errorf("service %s: environment variable %s is not read by the binary", name, k)
			}
		}
	}
	for name, svc := range c.Services {
		if _, ok := ours[name]; !ok && name != "nats" && name != "minio" {
			t.Errorf("service %s: unexpected", name)
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s: port %q must be bound to 127.0.0.1", name, p)
			}
		}
	}
	for svc, v := range map[string]string{"nats": "NATS", "minio": "MINIO"} {
		// The official image; --standins prints NATS_IMAGE=/MINIO_IMAGE=
		// values naming the stand-ins, to export.
		want := "${" + v + "_IMAGE:-" + scriptValue(t, "build-images.sh", "OFFICIAL_"+v+"_IMAGE") + "}"
		if got := c.Services[svc].Image; got != want {
			t.Errorf("service %s: image %q, want %q (the official image, overridable with %s_IMAGE)", svc, got, want, v)
		}
	}

	// The worker's and the webhook's environments are accepted.
	wk := c.Services["worker"]
	wcfg, err := worker.ServiceConfigFromEnv(func(k string) string { return wk.Environment[k] })
	if err != nil {
		t.Fatalf("worker: configuration rejected: %v", err)
	}
	if grace := parseDuration(t, wk.StopGracePeriod); grace <= wcfg.ShutdownGrace {
		t.Errorf("worker: stop_grace_period %s must exceed ARCHIVER_SHUTDOWN_GRACE %s", grace, wcfg.ShutdownGrace)
	}
	wh := c.Services["webhook"]
	secretFiles := map[string]string{}
	for _, s := range wh.Secrets {
		secretFiles["/run/secrets/"+s] = c.Secrets[s].File
	}
	hcfg, err := webhook.ConfigFromEnv(func(k string) string { return wh.Environment[k] })
	if err == nil {
		err = hcfg.Validate()
	}
	if err != nil {
		t.Fatalf("webhook: configuration rejected: %v", err)
	}
	if _, err := hcfg.LoadSecrets(func(p string) ([]byte, error) { return os.ReadFile(secretFiles[p]) }); err != nil {
		t.Errorf("webhook: %v (GITHUB_WEBHOOK_SECRET_FILE must be a compose secret)", err)
	}
	if grace := parseDuration(t, wh.StopGracePeriod); grace <= hcfg.ShutdownTimeout {
		t.Errorf("webhook: stop_grace_period %s must exceed ARCHIVER_SHUTDOWN_TIMEOUT %s", grace, hcfg.ShutdownTimeout)
	}
	if mk := c.Services["mkbucket"]; mk.Environment["ARCHIVER_DESTINATION"] != wk.Environment["ARCHIVER_DESTINATION"] {
		t.Errorf("mkbucket creates %q, the worker writes to %q", mk.Environment["ARCHIVER_DESTINATION"], wk.Environment["ARCHIVER_DESTINATION"])
	}

	// The worker reaches the simulator with a token it knows, and accepts
	// its blob host's redirects.
	sim := c.Services["ghsim"]
	scenarioPath := ""
	for _, v := range sim.Volumes {
		if host, ctr, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(ctr, "/etc/ghsim/scenario.json") {
			scenarioPath = host
		}
	}
	if scenarioPath == "" || !slices.Contains(sim.Command, "/etc/ghsim/scenario.json") {
		t.Fatal("ghsim: the scenario is not mounted at /etc/ghsim/scenario.json and passed with -scenario")
	}
	sc, err := ghsim.ParseScenario(bytes.NewReader(readFile(t, scenarioPath)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sc.Tokens, wcfg.GitHubToken) {
		t.Errorf("worker GITHUB_TOKEN is not one of the scenario's tokens %v", sc.Tokens)
	}
	blobHost := sim.Environment["GHSIM_BLOB_HOST"]
	if !slices.Contains(wcfg.DownloadHosts, blobHost) || !slices.Contains(sim.Networks["default"].Aliases, blobHost) {
		t.Errorf("blob host %q: must be in the worker's ARCHIVER_DOWNLOAD_HOSTS %v and a network alias of ghsim", blobHost, wcfg.DownloadHosts)
	}
	if !strings.HasPrefix(wcfg.GitHubAPIURL, "http://ghsim:"+strings.TrimPrefix(sim.Environment["GHSIM_API_ADDR"], ":")+"/") {
		t.Errorf("worker GITHUB_API_URL %q does not point at ghsim's GHSIM_API_ADDR %q", wcfg.GitHubAPIURL, sim.Environment["GHSIM_API_ADDR"])
	}
}

func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}
