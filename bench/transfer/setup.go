package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

// setup builds cmd/worker and bareput and starts the servers every backend
// shares: an embedded JetStream and the GitHub simulator. The S3 server
// (a child process) is started per backend by startBackend.
func (b *bench) setup(ctx context.Context) error {
	// The worker and the bare leg's program.
	b.workerBin, b.bareBin = filepath.Join(b.dir, "worker"), filepath.Join(b.dir, "bareput")
	for pkg, out := range map[string]string{"./cmd/worker": b.workerBin, "./bench/transfer/bareput": b.bareBin} {
		b.log.Printf("building %s", pkg)
		build := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		build.Dir = b.opt.root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}

	// GNU time, for rclone's peak RSS.
	if out, err := exec.Command("/usr/bin/time", "--version").CombinedOutput(); b.opt.gnuTime && err == nil && strings.Contains(string(out), "GNU") {
		b.gnuTime = "/usr/bin/time"
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
	b.stopBackend()
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
