//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Default images of NATS and MinIO in docker mode: the official ones (the
// tags deploy/compose.yaml uses). When they are neither present nor
// pullable, FROM-scratch stand-ins are built from the pinned binaries
// (deploy/standins.Dockerfile), as "deploy/build-images.sh --standins"
// does, under our own names (never the official ones):
// archiver-it/<kind>-standin:<version>-<content hash>.
const (
	defaultNATSImage  = "nats:2.15.2"
	defaultMinIOImage = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
	// ourRepo names our images: ourRepo/<target>:ourTag, where a label
	// holds the content hash, so an unchanged build is not rebuilt; and
	// ourRepo/<kind>-standin:<version>-<hash>.
	ourRepo   = "archiver-it"
	ourTag    = "latest"
	hashLabel = "io.artifact-archiver.integration.hash"
	// projectLabel=projectName is on every image the project builds
	// (deploy/Dockerfile, deploy/standins.Dockerfile, and buildImage adds
	// it); .ci/clean-images removes them all, and the containers made
	// from them (a container inherits its image's labels).
	projectLabel = "io.artifact-archiver.project"
	projectName  = "artifact-archiver"
)

// Container-side names and ports.
const (
	aliasNATS     = "nats"
	aliasMinIO    = "minio"
	aliasAPI      = "github-api"
	aliasBlob     = "github-blobs"
	simAPIPort    = "8081"
	simBlobPort   = "8082"
	metricsPort   = "9090/tcp"
	hookPort      = "8080/tcp"
	natsPort      = "4222/tcp"
	natsMonitor   = "8222/tcp"
	minioPort     = "9000/tcp"
	scenarioInCtr = "/etc/ghsim/"
)

// errNoEngine is returned by prepareDocker when no Docker engine answers.
var errNoEngine = errors.New("no Docker engine answers")

// dockerEnv is what docker mode needs, prepared once by TestMain.
type dockerEnv struct {
	webhook, worker, sim string // our images
	nats, minio          string
}

// prepareDocker checks that an engine answers and builds (or finds) the
// images.
func prepareDocker(ctx context.Context, dir string) (*dockerEnv, error) {
	tclog.SetDefault(tclog.NewNoopLogger())
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoEngine, err)
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ping, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", errNoEngine, cli.DaemonHost(), err)
	}
	// Mapped ports are published on the engine's host; testcontainers
	// would guess a gateway address when it thinks it runs in a container.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && strings.HasPrefix(cli.DaemonHost(), "unix://") {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	logf("docker engine %s (API %s)", cli.DaemonHost(), ping.APIVersion)
	if suite.binErr != nil {
		return nil, suite.binErr
	}
	start := time.Now()
	env := &dockerEnv{}
	if env.webhook, env.worker, env.sim, err = buildOurImages(ctx, cli, filepath.Join(dir, "images")); err != nil {
		return nil, err
	}
	if env.nats, err = thirdPartyImage(ctx, cli, EnvNATSImage, defaultNATSImage, "nats", dir); err != nil {
		return nil, err
	}
	if env.minio, err = thirdPartyImage(ctx, cli, EnvMinIOImage, defaultMinIOImage, "minio", dir); err != nil {
		return nil, err
	}
	logf("images ready in %s: %s %s %s %s %s", time.Since(start).Round(time.Millisecond), env.webhook, env.worker, env.sim, env.nats, env.minio)
	return env, nil
}

// buildOurImages builds the webhook, worker and ghsim images from the
// static binaries: with deploy/Dockerfile (one stage per binary; BASE
// scratch unless ARCHIVER_IMAGE_BASE says otherwise) when it has the
// stages, else with a minimal FROM-scratch Dockerfile per binary.
func buildOurImages(ctx context.Context, cli *testcontainers.DockerClient, dir string) (webhook, worker, sim string, err error) {
	bins := map[string]string{"webhook": suite.bins.Webhook, "worker": suite.bins.Worker, "ghsim": suite.bins.Sim}
	targets := []string{"webhook", "worker", "ghsim"}
	base := os.Getenv("ARCHIVER_IMAGE_BASE")
	if base == "" {
		base = "scratch"
	}
	deployDockerfile, _ := os.ReadFile(filepath.Join(suite.root, "deploy", "Dockerfile"))
	useDeploy := len(deployDockerfile) > 0
	for _, target := range targets {
		stage := regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+` + target + `\s*$`)
		useDeploy = useDeploy && stage.Match(deployDockerfile)
	}
	names := map[string]string{}
	for _, target := range targets {
		binData, err := os.ReadFile(bins[target])
		if err != nil {
			return "", "", "", err
		}
		// deploy/Dockerfile's context is bin/<target> and the CA bundle.
		ctxDir, dockerfile, buildTarget := filepath.Join(dir, target), []byte(nil), ""
		files := map[string][]byte{}
		if useDeploy {
			// The classic builder builds every stage before the target:
			// keep only the ones the target needs.
			dockerfile, buildTarget = stagesFor(deployDockerfile, target), target
			files["bin/"+target] = binData
			ca, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
			files["ca-certificates.crt"] = ca
		} else {
			dockerfile = []byte("ARG BASE=scratch\nFROM ${BASE}\nCOPY bin /bin/app\nUSER 65532\nENTRYPOINT [\"/bin/app\"]\n")
			files["bin"] = binData
		}
		files["Dockerfile"] = dockerfile
		for name, b := range files {
			path := filepath.Join(ctxDir, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return "", "", "", err
			}
			if err := os.WriteFile(path, b, 0o755); err != nil {
				return "", "", "", err
			}
		}
		sum := sha256.New()
		sum.Write(binData)
		sum.Write(dockerfile)
		sum.Write([]byte(base + "\x00" + buildTarget + "\x00" + projectLabel + "=" + projectName))
		hash := hex.EncodeToString(sum.Sum(nil))[:20]
		name := ourRepo + "/" + target + ":" + ourTag
		old, ierr := cli.ImageInspect(ctx, name)
		if ierr == nil && old.Config != nil && old.Config.Labels[hashLabel] == hash {
			names[target] = name
			continue // unchanged
		}
		built, err := buildImage(ctx, cli, ctxDir, ourRepo+"/"+target, ourTag, buildTarget, map[string]string{"BASE": base}, map[string]string{hashLabel: hash})
		if err != nil {
			return "", "", "", fmt.Errorf("build image %s: %w", name, err)
		}
		names[target] = built
		if ierr == nil && old.ID != "" {
			// The previous build of this name is now dangling: remove it.
			_, _ = cli.ImageRemove(ctx, old.ID, client.ImageRemoveOptions{})
		}
	}
	return names["webhook"], names["worker"], names["ghsim"], nil
}

// stagesFor reduces a multi-stage Dockerfile to what building target needs:
// the global ARGs, the target's stage and, transitively, the stages it
// builds FROM or copies --from.
func stagesFor(dockerfile []byte, target string) []byte {
	type stage struct {
		name string
		deps []string
		text strings.Builder
	}
	fromRe := regexp.MustCompile(`(?i)^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?`)
	copyFromRe := regexp.MustCompile(`(?i)--from=(\S+)`)
	var preamble strings.Builder
	var stages []*stage
	for _, line := range strings.SplitAfter(string(dockerfile), "\n") {
		trimmed := strings.TrimSpace(line)
		if m := fromRe.FindStringSubmatch(trimmed); m != nil {
			stages = append(stages, &stage{name: strings.ToLower(m[2]), deps: []string{strings.ToLower(m[1])}})
		}
		if len(stages) == 0 {
			preamble.WriteString(line)
			continue
		}
		st := stages[len(stages)-1]
		if m := copyFromRe.FindStringSubmatch(trimmed); m != nil && strings.HasPrefix(strings.ToUpper(trimmed), "COPY") {
			st.deps = append(st.deps, strings.ToLower(m[1]))
		}
		st.text.WriteString(line)
	}
	need := map[string]bool{strings.ToLower(target): true}
	for i := len(stages) - 1; i >= 0; i-- {
		if need[stages[i].name] {
			for _, d := range stages[i].deps {
				need[d] = true
			}
		}
	}
	out := preamble.String()
	for _, st := range stages {
		if st.name != "" && need[st.name] {
			out += st.text.String()
		}
	}
	return []byte(out)
}

// buildImage builds ctxDir/Dockerfile as repo:tag, with the given labels
// and projectLabel, and returns the name it was built under, checked with
// ImageInspect: containers must start from that name, or the engine would
// try to pull the one asked for. (testcontainers lower-cases repo and tag;
// give them in lower case.)
func buildImage(ctx context.Context, cli *testcontainers.DockerClient, ctxDir, repo, tag, target string, args, labels map[string]string) (string, error) {
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", err
	}
	defer p.Close()
	buildArgs := map[string]*string{}
	for k, v := range args {
		buildArgs[k] = &v
	}
	allLabels := map[string]string{projectLabel: projectName}
	for k, v := range labels {
		allLabels[k] = v
	}
	var log bytes.Buffer
	built, err := p.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        ctxDir,
		Dockerfile:     "Dockerfile",
		Repo:           repo,
		Tag:            tag,
		BuildArgs:      buildArgs,
		KeepImage:      true,
		BuildLogWriter: &log,
		BuildOptionsModifier: func(o *client.ImageBuildOptions) {
			o.Target = target
			o.Labels = allLabels
			o.Remove, o.ForceRemove = true, true
		},
	}})
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, log.Bytes())
	}
	img, err := cli.ImageInspect(ctx, built)
	if err != nil {
		return "", fmt.Errorf("built %s:%s, but the engine has no image named %q (the name the build reported): %w", repo, tag, built, err)
	}
	if img.Config == nil || img.Config.Labels[projectLabel] != projectName {
		return "", fmt.Errorf("built %s without the label %s=%s", built, projectLabel, projectName)
	}
	if want := repo + ":" + tag; built != want {
		logf("image %s was built as %s; using that name", want, built)
	}
	return built, nil
}

// thirdPartyImage returns the NATS or MinIO image: $envVar if set (it must
// exist or be pullable), else def (the official image) if present or
// pullable, else a stand-in built under our own name (buildStandIn). An
// image present under def's name that is one of ours (a stand-in of an
// older version of this suite, which tagged them so) is not the official
// image: it is ignored.
func thirdPartyImage(ctx context.Context, cli *testcontainers.DockerClient, envVar, def, kind, dir string) (string, error) {
	name := os.Getenv(envVar)
	if name == "" {
		name = def
	}
	if img, err := cli.ImageInspect(ctx, name); err == nil {
		if name == def && img.Config != nil && isOurs(img.Config.Labels) {
			logf("%s is present but is a stand-in we built, not the official image: ignored (make clean-images removes it)", name)
		} else {
			return name, nil
		}
	} else {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		perr := pullImage(pctx, cli, name)
		if perr == nil {
			return name, nil
		}
		if name != def {
			return "", fmt.Errorf("%s=%s: not present and cannot be pulled: %w", envVar, name, perr)
		}
		logf("%s cannot be pulled (%v); using a FROM-scratch stand-in", name, perr)
	}
	built, err := buildStandIn(ctx, cli, kind, filepath.Join(dir, "standin-"+kind))
	if err != nil {
		return "", fmt.Errorf("stand-in for %s: %w", name, err)
	}
	return built, nil
}

// isOurs reports whether image labels mark an image the project built:
// projectLabel, or the title of a stand-in built before that label.
func isOurs(labels map[string]string) bool {
	return labels[projectLabel] != "" || strings.HasSuffix(labels["org.opencontainers.image.title"], "(local stand-in)")
}

func pullImage(ctx context.Context, cli *testcontainers.DockerClient, name string) error {
	resp, err := cli.ImagePull(ctx, name, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	return resp.Wait(ctx)
}

// buildStandIn builds a stand-in image for kind (nats or minio) from the
// pinned binaries: deploy/standins.Dockerfile when present, else an
// equivalent inline Dockerfile (same entrypoint paths as the official
// images). Its name is ours, archiver-it/<kind>-standin:<version>-<hash>
// (lower case), the hash over the binary and the Dockerfile: an image of
// that name is up to date and is not built again. It returns the name the
// image was built under.
func buildStandIn(ctx context.Context, cli *testcontainers.DockerClient, kind, ctxDir string) (string, error) {
	if err := os.MkdirAll(filepath.Join(ctxDir, "empty"), 0o755); err != nil {
		return "", err
	}
	var bin, version string
	switch kind {
	case "nats":
		// The pinned version from go.mod, static.
		bin = filepath.Join(ctxDir, "nats-server")
		if out, err := goCommand(suite.root, "build", "-trimpath", "-o", bin, "github.com/nats-io/nats-server/v2"); err != nil {
			return "", fmt.Errorf("go build nats-server: %w\n%s", err, out)
		}
		out, err := goCommand(suite.root, "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2")
		if err != nil {
			return "", fmt.Errorf("go list -m nats-server: %w\n%s", err, out)
		}
		if f := strings.Fields(out); len(f) > 0 {
			version = f[len(f)-1] // after any "go: downloading" line
		}
	case "minio":
		src := os.Getenv("ARCHIVER_MINIO_BIN")
		if src == "" {
			src = filepath.Join(suite.root, ".cache", "bin", "minio")
		}
		out, err := command("", nil, "go", "version", "-m", src)
		if err != nil || !strings.Contains(out, "CGO_ENABLED=0") {
			return "", fmt.Errorf("%s is missing or not a static build (run make tools): %v", src, err)
		}
		// The module version it was built from: go install's "mod" line.
		for line := range strings.Lines(out) {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" {
				version = f[2]
				break
			}
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		bin = filepath.Join(ctxDir, "minio")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("no stand-in for %q", kind)
	}
	dockerfile, err := os.ReadFile(filepath.Join(suite.root, "deploy", "standins.Dockerfile"))
	target := kind
	if err == nil {
		dockerfile = stagesFor(dockerfile, kind)
	} else {
		target = ""
		dockerfile = []byte(map[string]string{
			"nats":  "FROM scratch\nCOPY --chown=65532:65532 nats-server /nats-server\nCOPY --chown=65532:65532 empty/ /data/\nUSER 65532:65532\nENTRYPOINT [\"/nats-server\"]\n",
			"minio": "FROM scratch\nCOPY --chown=65532:65532 minio /usr/bin/minio\nCOPY --chown=65532:65532 empty/ /data/\nCOPY --chown=65532:65532 empty/ /home/minio/\nENV HOME=/home/minio\nUSER 65532:65532\nENTRYPOINT [\"/usr/bin/minio\"]\n",
		}[kind])
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), dockerfile, 0o644); err != nil {
		return "", err
	}
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	sum := sha256.New()
	_, err = io.Copy(sum, f)
	f.Close()
	if err != nil {
		return "", err
	}
	sum.Write(dockerfile)
	sum.Write([]byte("\x00" + target + "\x00" + projectLabel + "=" + projectName))
	repo := ourRepo + "/" + kind + "-standin"
	tag := dockerTag(version + "-" + hex.EncodeToString(sum.Sum(nil))[:12])
	name := repo + ":" + tag
	if img, err := cli.ImageInspect(ctx, name); err == nil && img.Config != nil && img.Config.Labels[projectLabel] == projectName {
		logf("stand-in %s is up to date", name)
		return name, nil
	}
	logf("building stand-in %s", name)
	var args map[string]string
	if version != "" {
		args = map[string]string{"VERSION": version}
	}
	return buildImage(ctx, cli, ctxDir, repo, tag, target, args, nil)
}

// dockerTag makes s a valid docker tag: lower case, [a-z0-9_.-], not
// starting with '.' or '-', at most 128 characters. (testcontainers
// lower-cases tags anyway; the name asked for must be the name built.)
func dockerTag(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	t := strings.TrimLeft(string(b), ".-")
	if t == "" {
		t = "unknown"
	}
	return t[:min(len(t), 128)]
}

// dockerStack runs every component as a container on per-test networks.
type dockerStack struct {
	t     *testing.T
	env   *dockerEnv
	cfg   StackConfig
	dir   string
	cli   *testcontainers.DockerClient
	main  *testcontainers.DockerNetwork   // everything but the NATS nodes of a cluster
	route *testcontainers.DockerNetwork   // cluster routes between NATS nodes
	nodes []*testcontainers.DockerNetwork // one per NATS node (cluster)

	nats    []testcontainers.Container
	natsUp  []bool
	minio   testcontainers.Container
	sim     testcontainers.Container
	hook    testcontainers.Container
	simc    *SimClient
	hookURL string
	opsURL  string
	natsURL string // as the containers reach NATS
	workers []*dockerWorker
}

var (
	_ Stack        = (*dockerStack)(nil)
	_ ClusterStack = (*dockerStack)(nil)
)

func startDockerStack(t *testing.T, env *dockerEnv, cfg StackConfig) Stack {
	t.Helper()
	ctx := t.Context()
	s := &dockerStack{t: t, env: env, cfg: cfg, dir: t.TempDir()}
	var err error
	if s.cli, err = testcontainers.NewDockerClientWithOpts(ctx); err != nil {
		t.Fatalf("docker: %v", err)
	}
	t.Cleanup(func() { s.cli.Close() })
	s.main = s.network()
	nodes := max(cfg.NATSNodes, 1)
	if nodes > 1 {
		s.route = s.network()
		var urls []string
		for i := range nodes {
			s.nodes = append(s.nodes, s.network())
			urls = append(urls, fmt.Sprintf("nats://%s-%d:4222", aliasNATS, i+1))
		}
		s.natsURL = strings.Join(urls, ",")
	} else {
		s.natsURL = "nats://" + aliasNATS + ":4222"
	}

	// NATS, MinIO and the simulator do not depend on each other: start
	// them together.
	scenarioDir := s.dir
	writeScenario(t, cfg.Scenario, scenarioDir)
	reqs := []testcontainers.ContainerRequest{s.minioRequest(), s.simRequest(scenarioDir)}
	for i := range nodes {
		reqs = append(reqs, s.natsRequest(i, nodes))
	}
	started := s.startAll(reqs...)
	s.minio, s.sim, s.nats = started[0], started[1], started[2:]
	s.natsUp = make([]bool, nodes)
	for i := range s.natsUp {
		s.natsUp[i] = true
	}
	if nodes > 1 {
		s.waitClusterHealthy()
	}
	if _, err := s.S3().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	s.simc = newSimClient(t, s.endpoint(s.sim, simAPIPort+"/tcp", "http")+"/")

	s.hook = s.startAll(s.webhookRequest())[0]
	s.hookURL = s.endpoint(s.hook, hookPort, "http") + "/webhook"
	s.opsURL = s.endpoint(s.hook, metricsPort, "http") + "/metrics"
	for range cfg.workerCount() {
		s.StartWorker()
	}
	return s
}

// network creates a network for this test, removed in t.Cleanup (after
// the containers, which are registered later).
func (s *dockerStack) network() *testcontainers.DockerNetwork {
	s.t.Helper()
	nw, err := network.New(s.t.Context(), network.WithLabels(map[string]string{"io.artifact-archiver.integration": s.t.Name()}))
	if err != nil {
		s.t.Fatalf("docker network: %v", err)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := nw.Remove(ctx); err != nil {
			s.t.Logf("remove network %s: %v", nw.Name, err)
		}
	})
	return nw
}

// startAll starts the containers concurrently and returns them in order.
// Each is terminated in t.Cleanup, its log shown first if the test failed.
func (s *dockerStack) startAll(reqs ...testcontainers.ContainerRequest) []testcontainers.Container {
	s.t.Helper()
	out := make([]testcontainers.Container, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			if req.Labels == nil {
				req.Labels = map[string]string{}
			}
			req.Labels["io.artifact-archiver.integration"] = s.t.Name()
			out[i], errs[i] = testcontainers.GenericContainer(s.t.Context(), testcontainers.GenericContainerRequest{
				ContainerRequest: req,
				Started:          true,
				Logger:           containerLogger(s.t),
			})
		})
	}
	wg.Wait()
	for i, c := range out {
		name := reqs[i].Labels[componentLabel]
		if c == nil {
			continue
		}
		s.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if s.t.Failed() {
				s.t.Logf("--- %s log (tail) ---\n%s", name, containerLog(ctx, c, logTail()))
			}
			if err := c.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)); err != nil {
				s.t.Logf("terminate %s: %v", name, err)
			}
		})
	}
	if err := errors.Join(errs...); err != nil {
		s.t.Fatalf("start containers: %v", err)
	}
	return out
}

func (s *dockerStack) natsRequest(i, nodes int) testcontainers.ContainerRequest {
	name := fmt.Sprintf("nats-%d", i+1)
	req := testcontainers.ContainerRequest{
		Image:        s.env.nats,
		Cmd:          []string{"--jetstream", "--store_dir=/data", "--http_port=8222", "--server_name=" + name},
		ExposedPorts: []string{natsPort, natsMonitor},
		Tmpfs:        map[string]string{"/tmp": "rw"},
		WaitingFor:   wait.ForHTTP("/healthz").WithPort(natsMonitor).WithStartupTimeout(time.Minute),
	}
	if nodes == 1 {
		req.Networks = []string{s.main.Name}
		req.NetworkAliases = map[string][]string{s.main.Name: {aliasNATS}}
		return named(req, "nats")
	}
	var routes []string
	for j := range nodes {
		routes = append(routes, fmt.Sprintf("nats://route-%d:6222", j+1))
	}
	req.Cmd = append(req.Cmd,
		"--cluster_name=archiver",
		"--cluster=nats://0.0.0.0:6222",
		"--routes="+strings.Join(routes, ","),
		fmt.Sprintf("--cluster_advertise=route-%d:6222", i+1),
		// Clients keep to the URLs they were given, so that a partition
		// from one node's network really cuts them off from that node.
		"--no_advertise=true",
	)
	// A cluster node's /healthz waits for the others; /varz answers once
	// it listens (waitClusterHealthy then waits for JetStream).
	req.WaitingFor = wait.ForHTTP("/varz").WithPort(natsMonitor).WithStartupTimeout(time.Minute)
	req.Networks = []string{s.route.Name, s.nodes[i].Name}
	req.NetworkAliases = map[string][]string{
		s.route.Name:    {fmt.Sprintf("route-%d", i+1)},
		s.nodes[i].Name: {fmt.Sprintf("%s-%d", aliasNATS, i+1)},
	}
	return named(req, name)
}

func (s *dockerStack) minioRequest() testcontainers.ContainerRequest {
	return named(testcontainers.ContainerRequest{
		Image:          s.env.minio,
		Cmd:            []string{"server", "/data", "--address", ":9000", "--console-address", ":9001", "--quiet"},
		Env:            map[string]string{"MINIO_ROOT_USER": minioUser, "MINIO_ROOT_PASSWORD": minioSecret, "MINIO_UPDATE": "off", "MINIO_BROWSER": "off"},
		ExposedPorts:   []string{minioPort},
		Tmpfs:          map[string]string{"/tmp": "rw"},
		Networks:       []string{s.main.Name},
		NetworkAliases: map[string][]string{s.main.Name: {aliasMinIO}},
		// The health endpoints answer 200 before the object layer is
		// initialised (requests then get 503 XMinioServerNotInitialized);
		// only "x-minio-server-status: offline" tells. Start runs this
		// wait again after a kill.
		WaitingFor: wait.ForHTTP("/minio/health/ready").WithPort(minioPort).
			WithResponseHeadersMatcher(func(h http.Header) bool { return h.Get("X-Minio-Server-Status") != "offline" }).
			WithStartupTimeout(time.Minute),
	}, "minio")
}

func (s *dockerStack) simRequest(scenarioDir string) testcontainers.ContainerRequest {
	return named(testcontainers.ContainerRequest{
		Image: s.env.sim,
		Cmd:   []string{"-scenario", scenarioInCtr + scenarioFile},
		Env: map[string]string{
			"GHSIM_API_ADDR":  ":" + simAPIPort,
			"GHSIM_BLOB_ADDR": ":" + simBlobPort,
			// Download redirects name the blob alias, which the workers
			// resolve on the network.
			"GHSIM_BLOB_HOST": aliasBlob,
		},
		Files: []testcontainers.ContainerFile{
			{HostFilePath: filepath.Join(scenarioDir, scenarioFile), ContainerFilePath: scenarioInCtr + scenarioFile, FileMode: 0o644},
			{HostFilePath: filepath.Join(scenarioDir, appKeyFile), ContainerFilePath: scenarioInCtr + appKeyFile, FileMode: 0o644},
		},
		ExposedPorts:   []string{simAPIPort + "/tcp"},
		Networks:       []string{s.main.Name},
		NetworkAliases: map[string][]string{s.main.Name: {aliasAPI, aliasBlob}},
		WaitingFor:     wait.ForHTTP("/_ghsim/stats").WithPort(simAPIPort + "/tcp").WithStartupTimeout(time.Minute),
	}, "ghsim")
}

// clientNetworks are the networks of the webhook and the workers: the main
// one and, with a cluster, every node's.
func (s *dockerStack) clientNetworks() []string {
	nets := []string{s.main.Name}
	if len(s.nodes) == 0 {
		return nets
	}
	for _, n := range s.nodes {
		nets = append(nets, n.Name)
	}
	return nets
}

func (s *dockerStack) webhookRequest() testcontainers.ContainerRequest {
	env := s.cfg.webhookEnv(s.natsURL, webhookSecret())
	env["ARCHIVER_LISTEN_ADDR"], env["ARCHIVER_METRICS_ADDR"] = ":8080", ":9090"
	return named(testcontainers.ContainerRequest{
		Image:        s.env.webhook,
		Env:          env,
		ExposedPorts: []string{hookPort, metricsPort},
		Networks:     s.clientNetworks(),
		WaitingFor:   wait.ForHTTP("/readyz").WithPort(metricsPort).WithStartupTimeout(time.Minute),
	}, "webhook")
}

// containerLogger is where testcontainers logs: the test's log with
// ARCHIVER_TEST_LOG set, else nowhere (container logs are shown when a test
// fails).
func containerLogger(t *testing.T) tclog.Logger {
	if os.Getenv("ARCHIVER_TEST_LOG") != "" {
		return tclog.TestLogger(t)
	}
	return tclog.NewNoopLogger()
}

// componentLabel names a container's component, for log messages (docker
// picks the container names, so that parallel runs never collide).
const componentLabel = "io.artifact-archiver.integration.component"

// named labels req with its component name.
func named(req testcontainers.ContainerRequest, name string) testcontainers.ContainerRequest {
	if req.Labels == nil {
		req.Labels = map[string]string{}
	}
	req.Labels[componentLabel] = name
	return req
}

// waitClusterHealthy waits until every node's /healthz answers 200
// (JetStream ready, meta leader known).
func (s *dockerStack) waitClusterHealthy() {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for i, c := range s.nats {
		if !s.natsUp[i] {
			continue
		}
		url := s.endpoint(c, natsMonitor, "http") + "/healthz"
		for {
			resp, err := scrapeClient.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("NATS node %d not healthy after 2 minutes", i+1)
			}
			sleepCtx(s.t.Context(), 200*time.Millisecond)
		}
	}
}

// endpoint is scheme://127.0.0.1:PORT for a container port as mapped now.
func (s *dockerStack) endpoint(c testcontainers.Container, port, scheme string) string {
	s.t.Helper()
	ctx := s.t.Context()
	host, err := c.Host(ctx)
	if err != nil {
		s.t.Fatalf("container host: %v", err)
	}
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		s.t.Fatalf("mapped port %s: %v", port, err)
	}
	return fmt.Sprintf("%s://%s:%s", scheme, host, p.Port())
}

func (s *dockerStack) Mode() string              { return "docker" }
func (s *dockerStack) Sim() *SimClient           { return s.simc }
func (s *dockerStack) WebhookURL() string        { return s.hookURL }
func (s *dockerStack) WebhookMetricsURL() string { return s.opsURL }
func (s *dockerStack) Workers() []Worker         { return workersOf(s.workers) }

// NATSURL lists the running nodes as mapped now.
func (s *dockerStack) NATSURL() string {
	s.t.Helper()
	var urls []string
	for i, c := range s.nats {
		if s.natsUp[i] {
			urls = append(urls, s.endpoint(c, natsPort, "nats"))
		}
	}
	return strings.Join(urls, ",")
}

func (s *dockerStack) StopNATS() {
	s.t.Helper()
	timeout := 10 * time.Second
	for i, c := range s.nats {
		if err := c.Stop(s.t.Context(), &timeout); err != nil {
			s.t.Fatalf("stop NATS node %d: %v", i+1, err)
		}
		s.natsUp[i] = false
	}
}

func (s *dockerStack) KillNATS() {
	s.t.Helper()
	for i := range s.nats {
		s.KillNATSNode(i)
	}
}

func (s *dockerStack) StartNATS() {
	s.t.Helper()
	for i := range s.nats {
		s.StartNATSNode(i)
	}
}

func (s *dockerStack) RestartNATS() {
	s.t.Helper()
	s.StopNATS()
	s.StartNATS()
}

func (s *dockerStack) KillNATSNode(i int) {
	s.t.Helper()
	s.kill(s.nats[i])
	s.natsUp[i] = false
}

func (s *dockerStack) StartNATSNode(i int) {
	s.t.Helper()
	if s.natsUp[i] {
		return
	}
	if err := s.nats[i].Start(s.t.Context()); err != nil {
		s.t.Fatalf("start NATS node %d: %v", i+1, err)
	}
	s.natsUp[i] = true
	if len(s.nats) > 1 {
		s.waitClusterHealthy()
	}
}

func (s *dockerStack) PartitionWorker(w Worker, i int) {
	s.t.Helper()
	dw := w.(*dockerWorker)
	if _, err := s.cli.NetworkDisconnect(s.t.Context(), s.nodes[i].ID, client.NetworkDisconnectOptions{Container: dw.c.GetContainerID(), Force: true}); err != nil {
		s.t.Fatalf("disconnect %s from NATS node %d: %v", dw.name, i+1, err)
	}
}

func (s *dockerStack) HealWorker(w Worker, i int) {
	s.t.Helper()
	dw := w.(*dockerWorker)
	if _, err := s.cli.NetworkConnect(s.t.Context(), s.nodes[i].ID, client.NetworkConnectOptions{Container: dw.c.GetContainerID()}); err != nil {
		s.t.Fatalf("connect %s to NATS node %d: %v", dw.name, i+1, err)
	}
}

func (s *dockerStack) ConnectedNode(w Worker) int {
	s.t.Helper()
	dw := w.(*dockerWorker)
	info, err := dw.c.Inspect(s.t.Context())
	if err != nil {
		s.t.Fatalf("inspect %s: %v", dw.name, err)
	}
	for i, c := range s.nats {
		ep := info.NetworkSettings.Networks[s.nodes[i].Name]
		if !s.natsUp[i] || ep == nil {
			continue
		}
		resp, err := scrapeClient.Get(s.endpoint(c, natsMonitor, "http") + "/connz")
		if err != nil {
			continue
		}
		var connz struct {
			Connections []struct {
				IP   string `json:"ip"`
				Name string `json:"name"`
			} `json:"connections"`
		}
		err = json.NewDecoder(resp.Body).Decode(&connz)
		resp.Body.Close()
		if err != nil {
			s.t.Fatalf("NATS node %d /connz: %v", i+1, err)
		}
		for _, conn := range connz.Connections {
			if conn.IP == ep.IPAddress.String() {
				return i
			}
		}
	}
	return -1
}

func (s *dockerStack) StopMinIO() {
	s.t.Helper()
	s.kill(s.minio)
}

func (s *dockerStack) StartMinIO() {
	s.t.Helper()
	if err := s.minio.Start(s.t.Context()); err != nil {
		s.t.Fatalf("start MinIO: %v", err)
	}
}

// S3 is a client for MinIO's port as mapped now.
func (s *dockerStack) S3() *s3.Client {
	s.t.Helper()
	endpoint := s.endpoint(s.minio, minioPort, "http")
	return s3.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(minioUser, minioSecret, ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{Proxy: nil}},
		BaseEndpoint: aws.String(endpoint),
	}, s3Options)
}

// kill sends SIGKILL to a container (it can be started again).
func (s *dockerStack) kill(c testcontainers.Container) {
	s.t.Helper()
	if _, err := s.cli.ContainerKill(s.t.Context(), c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		s.t.Fatalf("kill container %s: %v", c.GetContainerID()[:12], err)
	}
	// Wait until the engine reports it stopped, so a Start that follows
	// does not race the kill.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.State(s.t.Context())
		if err == nil && !st.Running {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("container %s still running 30 s after SIGKILL", c.GetContainerID()[:12])
		}
		sleepCtx(s.t.Context(), 50*time.Millisecond)
	}
}

// dockerWorker is a worker container.
type dockerWorker struct {
	s      *dockerStack
	name   string
	c      testcontainers.Container
	killed bool
	last   Metrics
}

func (s *dockerStack) StartWorker() Worker {
	s.t.Helper()
	name := fmt.Sprintf("worker-%d", len(s.workers)+1)
	env := s.cfg.workerEnv(len(s.workers), s.natsURL, "http://"+aliasAPI+":"+simAPIPort+"/", aliasBlob, minioUser, minioSecret)
	env["ARCHIVER_METRICS_ADDR"] = ":9090"
	env["AWS_ENDPOINT_URL_S3"] = "http://" + aliasMinIO + ":9000"
	nets := s.clientNetworks()
	c := s.startAll(named(testcontainers.ContainerRequest{
		Image:          s.env.worker,
		Env:            env,
		ExposedPorts:   []string{metricsPort},
		Networks:       nets,
		NetworkAliases: map[string][]string{nets[0]: {name}},
		WaitingFor:     wait.ForHTTP("/readyz").WithPort(metricsPort).WithStartupTimeout(time.Minute),
	}, name))[0]
	w := &dockerWorker{s: s, name: name, c: c}
	s.workers = append(s.workers, w)
	return w
}

func (w *dockerWorker) Name() string { return w.name }

// MetricsURL resolves the mapped port each time: removing a container
// from the network that carried its port mapping (PartitionWorker) makes
// docker map it again, on another host port.
func (w *dockerWorker) MetricsURL() string {
	return w.s.endpoint(w.c, metricsPort, "http") + "/metrics"
}
func (w *dockerWorker) Alive() bool          { return !w.killed }
func (w *dockerWorker) LastMetrics() Metrics { return w.last }

func (w *dockerWorker) Kill() {
	w.s.t.Helper()
	if w.killed {
		return
	}
	m, err := scrape(w.MetricsURL())
	if err != nil {
		w.s.t.Logf("%s: last scrape before kill: %v", w.name, err)
	}
	w.last = m
	w.s.kill(w.c)
	w.killed = true
}

// containerLog returns the last n bytes of a container's output.
func containerLog(ctx context.Context, c testcontainers.Container, n int) string {
	rc, err := c.Logs(ctx)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// goCommand runs the go tool in dir with CGO disabled.
func goCommand(dir string, args ...string) (string, error) {
	return command(dir, append(os.Environ(), "CGO_ENABLED=0"), "go", args...)
}

// command runs name and returns its combined output.
func command(dir string, env []string, name string, args ...string) (string, error) {
	cmd := osexec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
