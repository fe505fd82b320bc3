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
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

// options are the command-line flags.
type options struct {
	attempts   int
	smallRepos int
	writers    int
	rounds     int
	scanRounds int
	seed       uint64
	minio      string
	root       string
	keep       bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.attempts, "attempts", 100_000, "run attempts to generate")
	fs.IntVar(&o.smallRepos, "small-repos", 4, "small repositories beside the big one (which gets 80% of the attempts)")
	fs.IntVar(&o.writers, "writers", 64, "concurrent writers while generating")
	fs.IntVar(&o.rounds, "rounds", 3, "times each catalogue query is measured (the report gives the median)")
	fs.IntVar(&o.scanRounds, "scan-rounds", 3, "times each slow query is measured: the manifest scans, and find before compaction")
	fs.Uint64Var(&o.seed, "seed", 14, "random seed of the generated archive")
	fs.StringVar(&o.minio, "minio", "", "minio binary (default $ARCHIVER_MINIO_BIN, <repo>/.cache/bin/minio, or minio on PATH)")
	fs.StringVar(&o.root, "repo", "", "repository root holding go.mod (default: found above the working directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (MinIO data, logs) instead of removing it")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	switch {
	case fs.NArg() > 0:
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.attempts < 10:
		return options{}, fmt.Errorf("-attempts %d: want at least 10", o.attempts)
	case o.smallRepos < 0 || o.writers < 1 || o.rounds < 1 || o.scanRounds < 1:
		return options{}, fmt.Errorf("-small-repos, -writers, -rounds and -scan-rounds: want >= 0, >= 1, >= 1 and >= 1")
	}
	return o, nil
}

// bench is one benchmark run: its work directory, the S3 server, the
// store the generator writes through and the archivectl binary.
type bench struct {
	opt   options
	dir   string
	log   *log.Logger
	s3    *minio
	store archive.Store
	ctl   string // archivectl binary
	arch  *generated
	// shas are the head SHAs queried, one per round; lsSince is the
	// --since of the ls queries and lsRuns the attempts they list.
	shas    []string
	lsSince time.Time
	lsRuns  int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if opt.root == "" {
		if opt.root, err = benchkit.RepoRoot(); err != nil {
			return err
		}
	}
	if opt.minio == "" {
		if opt.minio, err = benchkit.FindBinary(opt.root, "minio", "ARCHIVER_MINIO_BIN"); err != nil {
			return fmt.Errorf("%w (run `make tools`)", err)
		}
	}
	dir, err := os.MkdirTemp("", "catalog-bench-")
	if err != nil {
		return err
	}
	b := &bench{opt: opt, dir: dir, log: log.New(stderr, "catalog-bench: ", log.Ltime)}
	defer func() {
		if b.s3 != nil {
			b.s3.stop()
		}
		if opt.keep {
			b.log.Printf("work directory kept: %s", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()
	rep, err := b.run(ctx)
	if err != nil {
		return err
	}
	rep.write(stdout)
	return nil
}

func (b *bench) run(ctx context.Context) (*report, error) {
	b.ctl = filepath.Join(b.dir, "archivectl")
	b.log.Printf("building archivectl")
	build := exec.CommandContext(ctx, "go", "build", "-o", b.ctl, "./cmd/archivectl")
	build.Dir = b.opt.root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/archivectl: %v\n%s", err, out)
	}
	var err error
	if b.s3, err = startMinIO(ctx, b.opt.minio, b.dir); err != nil {
		return nil, err
	}
	if b.store, err = b.s3.store(ctx); err != nil {
		return nil, err
	}
	b.log.Printf("minio at %s", b.s3.endpoint)

	rep := newReport(b.opt, b.opt.minio)
	now := time.Now().UTC()
	b.arch = generate(b.opt, now)
	rep.attempts, rep.artifacts, rep.repos = len(b.arch.attempts), b.arch.artifacts, len(b.arch.repos)
	b.log.Printf("writing %d run attempts (%d artifacts) in %d repositories, %d writers",
		len(b.arch.attempts), b.arch.artifacts, len(b.arch.repos), b.opt.writers)
	start := time.Now()
	if err := b.write(ctx); err != nil {
		return nil, err
	}
	rep.generation = time.Since(start)
	b.log.Printf("written in %s", rep.generation.Round(time.Second))
	if err := b.checkDirectPuts(ctx); err != nil {
		return nil, err
	}

	// Before compaction: every month is small files.
	if rep.findSmall, err = b.measure(ctx, "find --sha (small files only)", b.opt.scanRounds, b.findCatalogue); err != nil {
		return nil, err
	}
	parts, err := catalog.Partitions(ctx, b.store, "", "")
	if err != nil {
		return nil, err
	}
	rep.partitions = len(parts)
	for _, p := range parts {
		rep.smallFiles += p.SmallFiles
	}
	start = time.Now()
	closed := catalog.ClosedMonths(parts, now)
	if rep.compactedRows, err = b.compact(ctx, closed); err != nil {
		return nil, err
	}
	rep.compaction, rep.compacted = time.Since(start), len(closed)
	b.log.Printf("compacted %d partitions (%d rows) in %s", len(closed), rep.compactedRows, rep.compaction.Round(time.Second))

	steps := []struct {
		dst  *[]time.Duration
		name string
		fn   func(context.Context, int) (time.Duration, error)
		scan bool
	}{
		{&rep.findCatalogue, "find --sha", b.findCatalogue, false},
		{&rep.findScan, "ls --from-manifests (all repositories), searched for the sha", b.findScan, true},
		{&rep.lsCatalogue, "ls big/repo --since 30d", b.lsCatalogue, false},
		{&rep.lsScan, "ls big/repo --since 30d --from-manifests", b.lsScan, true},
	}
	for _, s := range steps {
		n := b.opt.rounds
		if s.scan {
			n = b.opt.scanRounds
		}
		if *s.dst, err = b.measure(ctx, s.name, n, s.fn); err != nil {
			return nil, err
		}
	}
	rep.lsRuns = b.lsRuns
	return rep, nil
}

// measure runs fn once per round and returns the durations it measured
// (fn checks the answer outside the time it returns).
func (b *bench) measure(ctx context.Context, name string, rounds int, fn func(context.Context, int) (time.Duration, error)) ([]time.Duration, error) {
	var ds []time.Duration
	for round := range rounds {
		d, err := fn(ctx, round)
		if err != nil {
			return nil, fmt.Errorf("%s (round %d): %w", name, round+1, err)
		}
		b.log.Printf("%s, round %d: %s", name, round+1, d.Round(time.Millisecond))
		ds = append(ds, d)
	}
	return ds, nil
}

// compactors bounds the partitions compacted at once (catalog.Compact
// removes a partition's small files one after the other).
const compactors = 8

// compact compacts parts, compactors at a time, and returns the rows
// written.
func (b *bench) compact(ctx context.Context, parts []catalog.Partition) (int, error) {
	var (
		rows atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan catalog.Partition)
	for range compactors {
		wg.Go(func() {
			for p := range next {
				res, err := catalog.Compact(ctx, b.store, p.Owner, p.Repo, p.Month)
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("compact %s/%s %s: %w", p.Owner, p.Repo, p.Month, err))
					mu.Unlock()
					continue
				}
				rows.Add(int64(res.Rows))
			}
		})
	}
	for _, p := range parts {
		next <- p
	}
	close(next)
	wg.Wait()
	return int(rows.Load()), errors.Join(errs...)
}
