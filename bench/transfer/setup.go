package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

// setup builds cmd/worker and starts the servers every leg shares: MinIO (a
// child process), an embedded JetStream and the GitHub simulator.
func (b *bench) setup(ctx context.Context) error {
	// Worker binary.
	b.workerBin = filepath.Join(b.dir, "worker")
	b.log.Printf("building cmd/worker")
	build := exec.CommandContext(ctx, "go", "build", "-o", b.workerBin, "./cmd/worker")
	build.Dir = b.opt.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/worker: %v\n%s", err, out)
	}

	// GNU time, for rclone's peak RSS.
	if out, err := exec.Command("/usr/bin/time", "--version").CombinedOutput(); b.opt.gnuTime && err == nil && strings.Contains(string(out), "GNU") {
		b.gnuTime = "/usr/bin/time"
	}

	if err := b.startMinIO(ctx); err != nil {
		return err
	}
	if err := b.startNATS(ctx); err != nil {
		return err
	}
	sim, err := ghsim.New(ghsim.Options{Tokens: []string{ghToken}})
	if err != nil {
		return err
	}
	b.sim = sim
	b.repo = sim.AddRepo(0, owner, repoName)
	return nil
}

// close stops whatever setup started, even if it failed half-way.
func (b *bench) close() {
	if b.sim != nil {
		_ = b.sim.Close()
	}
	if b.nc != nil {
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.minio != nil {
		b.minio.Stop(syscall.SIGTERM, 5*time.Second)
	}
}

// startMinIO starts MinIO on a free port with a data directory under the
// work directory, waits until it is live, and creates the bucket.
func (b *bench) startMinIO(ctx context.Context) error {
	port, err := benchkit.FreePort()
	if err != nil {
		return err
	}
	consolePort, err := benchkit.FreePort()
	if err != nil {
		return err
	}
	data := filepath.Join(b.dir, "minio-data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	b.accessKey, b.secretKey = "transfer-bench", rand.Text()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	b.endpoint = "http://" + addr
	env := append(baseEnv(), "MINIO_ROOT_USER="+b.accessKey, "MINIO_ROOT_PASSWORD="+b.secretKey, "MINIO_UPDATE=off", "MINIO_BROWSER=off")
	c, err := benchkit.StartProcess(b.opt.minio, []string{"server", data, "--address", addr,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)), "--quiet"},
		env, filepath.Join(b.dir, "minio.log"), nil)
	if err != nil {
		return fmt.Errorf("minio: %w", err)
	}
	b.minio = c
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	if err := benchkit.Poll(ctx, time.Minute, 50*time.Millisecond, func() (bool, error) {
		if c.Exited() {
			return false, fmt.Errorf("minio exited: %s", c.LogTail())
		}
		resp, err := hc.Get(b.endpoint + "/minio/health/live")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return fmt.Errorf("minio %s not live: %w", b.endpoint, err)
	}
	b.s3 = s3.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(b.accessKey, b.secretKey, ""),
		BaseEndpoint: aws.String(b.endpoint),
		// Built by hand: no proxy, and AWS_CA_BUNDLE plays no part.
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.Proxy = nil }),
	}, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := b.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	b.log.Printf("minio at %s", b.endpoint)
	return nil
}

// startNATS starts an embedded JetStream server and provisions the
// archiver's topology on it.
func (b *bench) startNATS(ctx context.Context) error {
	ns, err := benchkit.StartEmbeddedNATS(filepath.Join(b.dir, "nats"))
	if err != nil {
		return err
	}
	b.ns = ns
	if b.nc, err = nats.Connect(ns.ClientURL(), nats.Name("transfer-bench")); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	b.topo = events.Topology{}.WithDefaults()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := events.Provision(pctx, b.js, b.topo); err != nil {
		return err
	}
	b.pub = events.NewPublisher(b.js, b.topo, 0)
	return nil
}

// baseEnv is the environment of every child: ours without the AWS, NATS,
// GitHub, archiver and rclone settings (AWS_CA_BUNDLE, for this machine's
// proxy, breaks the SDK's and rclone's plain-HTTP clients), and with
// loopback excluded from any proxy.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "AWS_"), strings.HasPrefix(k, "NATS_"), strings.HasPrefix(k, "GITHUB_"),
			strings.HasPrefix(k, "ARCHIVER_"), strings.HasPrefix(k, "RCLONE_"), strings.HasPrefix(k, "MINIO_"),
			strings.EqualFold(k, "NO_PROXY"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
}
