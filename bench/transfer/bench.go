package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

// The fixed names of the bench's bucket, archive prefix and simulated
// repository, and how often memory and progress are sampled.
const (
	region    = "us-east-1"
	bucket    = "bench"
	destPref  = "archive"
	ghToken   = "ghp_transferbench"
	owner     = "bench-org"
	repoName  = "bench-repo"
	mib       = 1 << 20
	sampleGap = 100 * time.Millisecond
)

// run is the whole command; the test calls it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger := log.New(stderr, "transfer: ", log.Ltime)
	if opt.root == "" {
		if opt.root, err = benchkit.RepoRoot(); err != nil {
			return fmt.Errorf("%w (use -repo)", err)
		}
	}
	if opt.minio == "" {
		if opt.minio, err = benchkit.FindBinary(opt.root, "minio", "ARCHIVER_MINIO_BIN"); err != nil {
			return fmt.Errorf("%w: set -minio or ARCHIVER_MINIO_BIN, or run the tests once (they build .cache/bin/minio)", err)
		}
	}
	if opt.versitygw == "" && slices.Contains(opt.backends, backendVersityGW) {
		if opt.versitygw, err = benchkit.FindBinary(opt.root, "versitygw", "ARCHIVER_VERSITYGW_BIN"); err != nil {
			return fmt.Errorf("%w: set -versitygw or ARCHIVER_VERSITYGW_BIN, or run the tests once (they build .cache/bin/versitygw)", err)
		}
	}
	if opt.rclone != "" {
		if _, err := exec.LookPath(opt.rclone); err != nil {
			return fmt.Errorf("rclone: %w (use -rclone= to skip the baseline)", err)
		}
	}

	dir, err := os.MkdirTemp("", "transfer-bench-")
	if err != nil {
		return err
	}
	b := &bench{opt: opt, log: logger, dir: dir}
	defer func() {
		b.close()
		if opt.keep {
			logger.Printf("kept %s", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if err := b.setup(ctx); err != nil {
		return err
	}
	for _, backend := range opt.backends {
		if err := b.measureBackend(ctx, backend); err != nil {
			return err
		}
	}
	b.report(stdout)
	return nil
}

// measureBackend runs every round against one S3 server.
func (b *bench) measureBackend(ctx context.Context, name string) error {
	defer b.stopBackend()
	if err := b.startBackend(ctx, name); err != nil {
		return err
	}
	for round := 1; round <= b.opt.rounds; round++ {
		for _, size := range b.opt.sizes {
			if err := b.measureSize(ctx, round, size); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// bench holds the servers shared by every measurement.
type bench struct {
	opt options
	log *log.Logger
	dir string

	workerBin string
	bareBin   string
	backend   string            // the S3 server being measured
	server    *benchkit.Process // its process
	endpoint  string
	accessKey string
	secretKey string
	s3        *s3.Client
	ns        *server.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	topo      events.Topology
	pub       *events.Publisher
	sim       *ghsim.Server
	repo      ghsim.Repo
	gnuTime   string // "/usr/bin/time" if it is GNU time

	results []result
}

// measureSize measures one size with every worker (and part size), rclone
// and the bare PutObject. The order of the legs rotates with the round, so
// that none always benefits from a warmer machine.
func (b *bench) measureSize(ctx context.Context, round int, size int64) error {
	seed := 7_000 + size/mib // the same bytes for a size in every round
	name := "bench-" + strings.ReplaceAll(fmtSize(size), " ", "")
	// A run is archived once: every leg gets its own run with the same bytes.
	newArtifact := func() (ghsim.Run, ghsim.Artifact) {
		run := b.sim.AddRun(owner, repoName, ghsim.RunSpec{Name: "bench"})
		return run, b.sim.AddArtifact(owner, repoName, run.ID, ghsim.ArtifactSpec{Name: name, Size: size, Seed: seed})
	}
	run, art := newArtifact()
	b.log.Printf("%s round %d, %s: hashing the artifact in the simulator (cached, outside the timing)", b.backend, round, fmtSize(size))
	want, err := b.sim.SHA256(art.ID)
	if err != nil {
		return err
	}

	workers := func() error {
		builds := append([]workerBuild{{path: b.workerBin}}, b.opt.workers...)
		for _, w := range builds {
			for _, ps := range b.opt.partSizes {
				r, a := newArtifact()
				res, err := b.measureWorker(ctx, w, r, a.ID, size, ps, want)
				if err != nil {
					return fmt.Errorf("worker %s %s: %w", w.label, fmtSize(size), err)
				}
				b.record(round, res)
			}
		}
		return nil
	}
	rclone := func() error {
		if b.opt.rclone == "" {
			return nil
		}
		res, err := b.measureRclone(ctx, art, run.ID, want)
		if err != nil {
			return fmt.Errorf("rclone %s: %w", fmtSize(size), err)
		}
		b.record(round, res)
		return nil
	}
	bare := func() error {
		if !b.opt.bare {
			return nil
		}
		res, err := b.measureBare(ctx, art, run.ID, want)
		if err != nil {
			return fmt.Errorf("bare %s: %w", fmtSize(size), err)
		}
		b.record(round, res)
		return nil
	}
	steps := []func() error{workers, rclone, bare}
	k := (round - 1) % len(steps)
	for _, step := range append(steps[k:], steps[:k]...) {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// record keeps the result of one leg of round and logs it, with every
// stall the progress watcher saw.
func (b *bench) record(round int, res result) {
	res.round, res.backend = round, b.backend
	b.results = append(b.results, res)
	for _, s := range res.watch.stalls {
		b.log.Printf("  %s stall: %s", res.tool, s)
	}
	b.log.Printf("  %s: %.2fs %.0f MiB/s peak RSS %.1f MiB (%s)", res.leg(), res.wall.Seconds(), res.mibps(), float64(res.peakRSS)/mib, verdict(res))
}

// settle flushes dirty pages and waits (at most 15 s) until the S3 server has used
// less than 5% of a core for half a second: deletions of the previous
// objects and writeback happen in the background and would otherwise be
// charged to the next leg.
func (b *bench) settle(ctx context.Context) {
	syscall.Sync()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		before := benchkit.ProcCPU(b.server.Pid())
		time.Sleep(500 * time.Millisecond)
		if benchkit.ProcCPU(b.server.Pid())-before < 25*time.Millisecond {
			return
		}
	}
}

// deadlineFor bounds one transfer: a minute plus 20 MiB/s.
func deadlineFor(size int64) time.Duration {
	return time.Minute + time.Duration(size/(20*mib))*time.Second
}
