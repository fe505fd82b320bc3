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
	for round := 1; round <= opt.runs; round++ {
		for _, size := range opt.sizes {
			if err := b.measureSize(ctx, round, size); err != nil {
				return err
			}
		}
	}
	b.report(stdout)
	return nil
}

// bench holds the servers shared by every measurement.
type bench struct {
	opt options
	log *log.Logger
	dir string

	workerBin string
	minio     *benchkit.Process
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

// measureSize measures one size with every worker part size and rclone.
// Odd rounds run the worker first, even rounds rclone first, so that
// neither always benefits from a warmer machine.
func (b *bench) measureSize(ctx context.Context, round int, size int64) error {
	seed := 7_000 + size/mib // the same bytes for a size in every round
	run := b.sim.AddRun(owner, repoName, ghsim.RunSpec{Name: "bench"})
	name := "bench-" + strings.ReplaceAll(fmtSize(size), " ", "")
	art := b.sim.AddArtifact(owner, repoName, run.ID, ghsim.ArtifactSpec{Name: name, Size: size, Seed: seed})
	b.log.Printf("round %d, %s: hashing the artifact in the simulator (cached, outside the timing)", round, fmtSize(size))
	want, err := b.sim.SHA256(art.ID)
	if err != nil {
		return err
	}

	workers := func() error {
		for i, ps := range b.opt.partSizes {
			r, id := run, art.ID
			if i > 0 { // a run is archived once: another run with the same bytes
				r = b.sim.AddRun(owner, repoName, ghsim.RunSpec{Name: "bench"})
				id = b.sim.AddArtifact(owner, repoName, r.ID, ghsim.ArtifactSpec{Name: name, Size: size, Seed: seed}).ID
			}
			res, err := b.measureWorker(ctx, r, id, size, ps, want)
			if err != nil {
				return fmt.Errorf("worker %s: %w", fmtSize(size), err)
			}
			b.record(round, res)
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
	steps := []func() error{workers, rclone}
	if round%2 == 0 {
		steps = []func() error{rclone, workers}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// record keeps the result of one leg of round and logs it, with every
// stall the progress watcher saw.
func (b *bench) record(round int, res result) {
	res.round = round
	b.results = append(b.results, res)
	for _, s := range res.watch.stalls {
		b.log.Printf("  %s stall: %s", res.tool, s)
	}
	b.log.Printf("  %s: %.2fs %.0f MiB/s peak RSS %.1f MiB (%s)", res.tool, res.wall.Seconds(), res.mibps(), float64(res.peakRSS)/mib, verdict(res))
}

// settle flushes dirty pages and waits (at most 15 s) until MinIO has used
// less than 5% of a core for half a second: deletions of the previous
// objects and writeback happen in the background and would otherwise be
// charged to the next leg.
func (b *bench) settle(ctx context.Context) {
	syscall.Sync()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		before := benchkit.ProcCPU(b.minio.Pid())
		time.Sleep(500 * time.Millisecond)
		if benchkit.ProcCPU(b.minio.Pid())-before < 25*time.Millisecond {
			return
		}
	}
}

// deadlineFor bounds one transfer: a minute plus 20 MiB/s.
func deadlineFor(size int64) time.Duration {
	return time.Minute + time.Duration(size/(20*mib))*time.Second
}
