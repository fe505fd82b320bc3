// Command transfer benchmarks one artifact going GitHub (the simulator) →
// worker → S3 (MinIO) on loopback, against `rclone copyurl` of the same
// bytes into the same MinIO, in the same run.
//
// It builds cmd/worker, starts MinIO (a child process), an embedded NATS
// JetStream server and the GitHub simulator (both in this process), then for
// every size and round:
//
//   - worker: a fresh worker process (so its VmHWM is per size) gets one
//     run event; the time is from the publish until the run's manifest.json
//     is in MinIO, and the peak RSS is VmHWM read just before the worker is
//     stopped (VmRSS is also sampled every 100 ms);
//   - rclone: `rclone copyurl` of a freshly signed blob URL of the same
//     artifact; the time is the process's wall time and the peak RSS its
//     maximum resident set (GNU time's %M, else its VmHWM polled until it
//     exits).
//
// Before each timed leg the page cache is flushed (sync) and MinIO is given
// a few seconds to finish background work (deleting the previous objects),
// so that one leg's leftovers do not slow the next.
//
// Every object is checked afterwards: size, the manifest's sha256 against
// the simulator's, and (with -readback) the SHA-256 of the object read back
// from MinIO. The results are printed as Markdown tables on stdout; progress
// goes to stderr.
//
//	go run ./bench/transfer -sizes 1GiB,4GiB -runs 2
//	go run ./bench/transfer -sizes 1GiB -part-sizes 16MiB,64MiB
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "transfer:", err)
		os.Exit(1)
	}
}

type options struct {
	sizes     []int64
	partSizes []int64 // 0: the worker's default (ARCHIVER_PART_SIZE unset)
	runs      int
	keep      bool
	readback  bool
	rclone    string
	minio     string
	root      string
	perfDir   string
	gnuTime   bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("transfer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := fs.String("sizes", "1GiB,4GiB", "comma-separated artifact sizes (B, KiB, MiB, GiB)")
	parts := fs.String("part-sizes", "", "comma-separated ARCHIVER_PART_SIZE values to measure the worker with (default: the worker's own default)")
	runs := fs.Int("runs", 1, "rounds; the order worker/rclone alternates between rounds")
	keep := fs.Bool("keep", false, "keep the work directory (MinIO data, objects, logs) instead of removing it")
	readback := fs.Bool("readback", true, "read every object back from MinIO and check its SHA-256 (outside the timed part)")
	rclone := fs.String("rclone", "/usr/bin/rclone", "rclone binary; empty to skip the rclone baseline")
	minio := fs.String("minio", "", "minio binary (default $ARCHIVER_MINIO_BIN, <repo>/.cache/bin/minio, or minio on PATH)")
	root := fs.String("repo", "", "repository root holding go.mod (default: found above the working directory)")
	gnuTime := fs.Bool("gnu-time", true, "measure rclone's peak RSS with GNU time's %M if /usr/bin/time is GNU time; false polls its VmHWM")
	perfDir := fs.String("perf", "", "record `perf record -g` profiles of the worker and rclone during each timed transfer into this directory")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o := options{runs: *runs, keep: *keep, readback: *readback, rclone: *rclone, minio: *minio, root: *root, perfDir: *perfDir, gnuTime: *gnuTime}
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil || len(o.sizes) == 0 {
		return options{}, fmt.Errorf("-sizes %q: %v", *sizes, err)
	}
	o.partSizes = []int64{0}
	if *parts != "" {
		if o.partSizes, err = parseSizes(*parts); err != nil {
			return options{}, fmt.Errorf("-part-sizes %q: %v", *parts, err)
		}
	}
	if o.runs < 1 {
		return options{}, fmt.Errorf("-runs %d: want >= 1", o.runs)
	}
	return o, nil
}

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
		if opt.root, err = repoRoot(); err != nil {
			return err
		}
	}
	if opt.minio == "" {
		if opt.minio, err = findMinIO(opt.root); err != nil {
			return err
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
	minio     *child
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

// result is one measured transfer.
type result struct {
	round    int
	size     int64
	tool     string // "worker" or "rclone"
	partSize int64  // worker: ARCHIVER_PART_SIZE (0: default)
	wall     time.Duration
	peakRSS  int64 // bytes: worker VmHWM before stop, rclone max RSS
	// worker only
	sampledRSS int64         // highest VmRSS sample
	idleRSS    int64         // VmRSS just before the publish
	transfer   time.Duration // the worker's own "artifact archived" duration
	warnings   int           // WARN/ERROR lines in the worker log
	blobBytes  int64         // bytes the blob host served for this leg
	// CPU time spent during the timed part by the tool, by MinIO, and by
	// this process (the simulator's blob host, NATS, polling).
	cpuTool, cpuMinIO, cpuBench time.Duration
	// cpuOthers is the CPU time every other process on the machine used
	// meanwhile (from /proc/stat): the noise of a shared machine.
	cpuOthers time.Duration
	// watch describes the machine during the timed part.
	watch    watch
	verified bool
	note     string
}

func (r result) mibps() float64 { return float64(r.size) / mib / r.wall.Seconds() }

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
		b.minio.stop(syscall.SIGTERM, 5*time.Second)
	}
}

func (b *bench) startMinIO(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	consolePort, err := freePort()
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
	c, err := startChild(b.opt.minio, []string{"server", data, "--address", addr,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)), "--quiet"},
		env, filepath.Join(b.dir, "minio.log"), nil)
	if err != nil {
		return fmt.Errorf("minio: %w", err)
	}
	b.minio = c
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	if err := poll(ctx, time.Minute, 50*time.Millisecond, func() (bool, error) {
		if c.exited() {
			return false, fmt.Errorf("minio exited: %s", c.logTail())
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

func (b *bench) startNATS(ctx context.Context) error {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(b.dir, "nats"), NoLog: true, NoSigs: true,
	})
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	ns.Start()
	b.ns = ns
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats: not ready within 10s")
	}
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
			res.round = round
			b.results = append(b.results, res)
			b.logStalls(res)
			b.log.Printf("  worker: %.2fs %.0f MiB/s peak RSS %.1f MiB (%s)", res.wall.Seconds(), res.mibps(), float64(res.peakRSS)/mib, verdict(res))
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
		res.round = round
		b.results = append(b.results, res)
		b.logStalls(res)
		b.log.Printf("  rclone: %.2fs %.0f MiB/s peak RSS %.1f MiB (%s)", res.wall.Seconds(), res.mibps(), float64(res.peakRSS)/mib, verdict(res))
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

func (b *bench) logStalls(r result) {
	for _, s := range r.watch.stalls {
		b.log.Printf("  %s stall: %s", r.tool, s)
	}
}

func verdict(r result) string {
	if r.verified {
		return "sha256 ok"
	}
	return "NOT VERIFIED: " + r.note
}

// measureWorker runs a fresh worker process for one run event.
func (b *bench) measureWorker(ctx context.Context, run ghsim.Run, artID, size, partSize int64, want string) (result, error) {
	res := result{size: size, tool: "worker", partSize: partSize}
	tag := fmt.Sprintf("worker-%d", run.ID)
	env := append(baseEnv(),
		"NATS_URL="+b.ns.ClientURL(),
		"GITHUB_API_URL="+b.sim.URL(),
		"GITHUB_TOKEN="+ghToken,
		"ARCHIVER_DESTINATION=s3://"+bucket+"/"+destPref,
		"AWS_ENDPOINT_URL_S3="+b.endpoint,
		"AWS_REGION="+region,
		"AWS_ACCESS_KEY_ID="+b.accessKey,
		"AWS_SECRET_ACCESS_KEY="+b.secretKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(b.dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(b.dir, "no-aws-credentials"),
		"ARCHIVER_S3_FORCE_PATH_STYLE=true",
		"ARCHIVER_ALLOW_HTTP_DOWNLOADS=true",
		"ARCHIVER_METRICS_ADDR=127.0.0.1:0",
		"ARCHIVER_CONCURRENCY=1",
	)
	if partSize > 0 {
		env = append(env, "ARCHIVER_PART_SIZE="+strconv.FormatInt(partSize, 10))
	}
	wl := &workerLog{running: make(chan string, 1)}
	w, err := startChild(b.workerBin, nil, env, filepath.Join(b.dir, tag+".log"), wl)
	if err != nil {
		return res, err
	}
	defer w.stop(syscall.SIGKILL, 0) // no-op after the graceful stop below
	select {
	case <-wl.running:
	case <-w.done:
		return res, fmt.Errorf("worker exited at start: %s", w.logTail())
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("worker not running after 30s: %s", w.logTail())
	case <-ctx.Done():
		return res, ctx.Err()
	}

	b.settle(ctx)
	pid := w.cmd.Process.Pid
	res.idleRSS, _ = procStatus(pid, "VmRSS")
	sampler := sampleRSS(pid)
	progress := b.watchProgress(artID)
	blobBefore := b.sim.Stats().BlobBytesByArtifact[artID]
	ev := &runevent.RunCompleted{
		SchemaVersion:  runevent.SchemaVersion,
		Source:         runevent.SourceBackfill,
		DeliveryID:     tag,
		ReceivedAt:     time.Now(),
		InstallationID: b.repo.InstallationID,
		Repository:     runevent.Repository{ID: b.repo.ID, Owner: b.repo.Owner, Name: b.repo.Name, FullName: b.repo.FullName()},
		WorkflowRun: runevent.WorkflowRun{
			ID: run.ID, RunAttempt: run.Attempt, Name: run.Name, Path: run.Path, Event: run.Event,
			HeadBranch: run.HeadBranch, HeadSHA: run.HeadSHA, Conclusion: run.Conclusion, Status: "completed",
		},
		WorkflowName: run.Name,
	}
	l := archive.Layout{Owner: b.repo.Owner, Repo: b.repo.Name, RunID: run.ID}
	manifestKey := destPref + "/" + l.ManifestKey(run.Attempt)

	cpu := b.startCPU(pid)
	prof := b.startPerf(pid, fmt.Sprintf("worker-%s-run%d", strings.ReplaceAll(fmtSize(size), " ", ""), run.ID))
	start := time.Now()
	if _, err := b.pub.Publish(ctx, ev); err != nil {
		sampler.stop()
		prof.stop()
		return res, err
	}
	err = poll(ctx, deadlineFor(size), 20*time.Millisecond, func() (bool, error) {
		if w.exited() {
			return false, fmt.Errorf("worker exited: %s", w.logTail())
		}
		_, err := b.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(manifestKey)})
		return err == nil, nil
	})
	res.wall = time.Since(start)
	res.cpuTool, res.cpuMinIO, res.cpuBench, res.cpuOthers = cpu.stop()
	prof.stop()
	hwm, herr := procStatus(pid, "VmHWM")
	res.sampledRSS = sampler.stop()
	res.watch = progress.stop()
	if err != nil {
		return res, fmt.Errorf("waiting for %s: %w\n%s", manifestKey, err, w.logTail())
	}
	if herr != nil {
		return res, herr
	}
	res.peakRSS = hwm
	res.blobBytes = b.sim.Stats().BlobBytesByArtifact[artID] - blobBefore

	// Let the worker ack before stopping it, so no redelivery leaks into
	// the next measurement.
	if err := b.waitAcked(ctx); err != nil {
		res.note = err.Error()
	}
	w.stop(syscall.SIGTERM, 15*time.Second)
	var warnLog []string
	res.transfer, res.warnings, warnLog = wl.result()
	for _, line := range warnLog {
		b.log.Printf("  worker log: %s", line)
	}

	// Verify.
	m, err := b.readManifest(ctx, manifestKey)
	if err != nil {
		return res, err
	}
	var problems []string
	switch {
	case len(m.Artifacts) != 1:
		problems = append(problems, fmt.Sprintf("manifest lists %d artifacts", len(m.Artifacts)))
	default:
		a := m.Artifacts[0]
		if a.Status != archive.StatusArchived {
			problems = append(problems, "status "+a.Status+": "+a.Error)
		}
		if a.SHA256 != want {
			problems = append(problems, fmt.Sprintf("manifest sha256 %s, simulator %s", a.SHA256, want))
		}
		if a.Size != size {
			problems = append(problems, fmt.Sprintf("manifest size %d", a.Size))
		}
		if p := b.checkObject(ctx, destPref+"/"+a.Key, size, want); p != "" {
			problems = append(problems, p)
		}
	}
	if res.blobBytes != size {
		problems = append(problems, fmt.Sprintf("blob host served %d bytes for %d", res.blobBytes, size))
	}
	if res.note != "" {
		problems = append(problems, res.note)
	}
	res.note = strings.Join(problems, "; ")
	res.verified = len(problems) == 0
	if !b.opt.keep {
		b.deletePrefix(ctx, destPref+"/"+l.RunPrefix())
	}
	return res, nil
}

// waitAcked waits until the worker consumer has nothing pending or unacked.
func (b *bench) waitAcked(ctx context.Context) error {
	cons, err := b.js.Consumer(ctx, b.topo.Stream, b.topo.Consumer)
	if err != nil {
		return err
	}
	var last string
	err = poll(ctx, 10*time.Second, 20*time.Millisecond, func() (bool, error) {
		info, err := cons.Info(ctx)
		if err != nil {
			return false, err
		}
		last = fmt.Sprintf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		return info.NumPending == 0 && info.NumAckPending == 0, nil
	})
	if err != nil {
		return fmt.Errorf("event not acked after the manifest (%s): %w", last, err)
	}
	return nil
}

func (b *bench) readManifest(ctx context.Context, key string) (*archive.Manifest, error) {
	out, err := b.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return archive.DecodeManifest(data)
}

// checkObject returns what is wrong with the object at key ("" if nothing).
func (b *bench) checkObject(ctx context.Context, key string, size int64, want string) string {
	head, err := b.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Sprintf("head %s: %v", key, err)
	}
	if n := aws.ToInt64(head.ContentLength); n != size {
		return fmt.Sprintf("object %s has %d bytes, want %d", key, n, size)
	}
	if !b.opt.readback {
		return ""
	}
	out, err := b.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Sprintf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return fmt.Sprintf("read %s: %v", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != want {
		return fmt.Sprintf("object %s read back: %d bytes, sha256 %s, want %s", key, n, got, want)
	}
	return ""
}

func (b *bench) deletePrefix(ctx context.Context, prefix string) {
	p := s3.NewListObjectsV2Paginator(b.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			b.log.Printf("list %s: %v", prefix, err)
			return
		}
		for _, o := range page.Contents {
			if _, err := b.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				b.log.Printf("delete %s: %v", aws.ToString(o.Key), err)
			}
		}
	}
}

// measureRclone copies the artifact with `rclone copyurl` from a freshly
// signed blob URL.
func (b *bench) measureRclone(ctx context.Context, art ghsim.Artifact, runID int64, want string) (result, error) {
	res := result{size: art.Size, tool: "rclone"}
	key := fmt.Sprintf("rclone/%d/%s.zip", runID, art.Name)
	conf := filepath.Join(b.dir, "rclone.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return res, err
	}
	env := append(baseEnv(),
		"RCLONE_CONFIG="+conf,
		"RCLONE_CONFIG_MINIO_TYPE=s3",
		"RCLONE_CONFIG_MINIO_PROVIDER=Minio",
		"RCLONE_CONFIG_MINIO_ENDPOINT="+b.endpoint,
		"RCLONE_CONFIG_MINIO_ACCESS_KEY_ID="+b.accessKey,
		"RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY="+b.secretKey,
		"RCLONE_CONFIG_MINIO_REGION="+region,
	)
	u, err := b.downloadURL(ctx, art.ID)
	if err != nil {
		return res, err
	}
	rargs := []string{"copyurl", u, "minio:" + bucket + "/" + key}
	bin, args := b.opt.rclone, rargs
	rssFile := filepath.Join(b.dir, fmt.Sprintf("rclone-%d.maxrss", runID))
	if b.gnuTime != "" {
		bin, args = b.gnuTime, append([]string{"-f", "%M", "-o", rssFile, b.opt.rclone}, rargs...)
	}
	logPath := filepath.Join(b.dir, fmt.Sprintf("rclone-%d.log", runID))
	blobBefore := b.sim.Stats().BlobBytesByArtifact[art.ID]
	b.settle(ctx)
	progress := b.watchProgress(art.ID)
	defer progress.stop()
	cpu := b.startCPU(0)
	start := time.Now()
	c, err := startChild(bin, args, env, logPath, nil)
	if err != nil {
		return res, err
	}
	var hwm *hwmPoller
	if b.gnuTime == "" {
		// Not wait4's ru_maxrss: a child spawned by Go (vfork) is charged
		// this process's RSS at spawn time.
		hwm = pollHWM(c.cmd.Process.Pid)
		defer hwm.stop()
	}
	prof := &perfRecorder{}
	if b.opt.perfDir != "" {
		pid := c.cmd.Process.Pid
		if b.gnuTime != "" { // profile rclone, not GNU time
			pid = childPid(pid)
		}
		prof = b.startPerf(pid, fmt.Sprintf("rclone-%s-run%d", strings.ReplaceAll(fmtSize(art.Size), " ", ""), runID))
	}
	defer prof.stop()
	select {
	case <-c.done:
	case <-time.After(deadlineFor(art.Size)):
		c.stop(syscall.SIGKILL, 0)
		return res, errors.New("rclone timed out")
	case <-ctx.Done():
		c.stop(syscall.SIGKILL, 0)
		return res, ctx.Err()
	}
	res.wall = time.Since(start)
	_, res.cpuMinIO, res.cpuBench, res.cpuOthers = cpu.stop()
	res.watch = progress.stop()
	res.cpuTool = c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
	res.cpuOthers -= res.cpuTool
	if !c.cmd.ProcessState.Success() {
		return res, fmt.Errorf("rclone: %v: %s", c.cmd.ProcessState, c.logTail())
	}
	if b.gnuTime != "" {
		data, err := os.ReadFile(rssFile)
		if err != nil {
			return res, err
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(lastLine(string(data))), 10, 64)
		if err != nil {
			return res, fmt.Errorf("GNU time output %q: %w", data, err)
		}
		res.peakRSS = kb * 1024
	} else {
		res.peakRSS = hwm.stop()
	}
	res.blobBytes = b.sim.Stats().BlobBytesByArtifact[art.ID] - blobBefore
	var problems []string
	if p := b.checkObject(ctx, key, art.Size, want); p != "" {
		problems = append(problems, p)
	}
	if res.blobBytes != art.Size {
		problems = append(problems, fmt.Sprintf("blob host served %d bytes for %d", res.blobBytes, art.Size))
	}
	res.note = strings.Join(problems, "; ")
	res.verified = len(problems) == 0
	if !b.opt.keep {
		b.deletePrefix(ctx, key)
	}
	return res, nil
}

// downloadURL asks the simulator's zip endpoint for a fresh signed blob
// URL (valid for a minute).
func (b *bench) downloadURL(ctx context.Context, id int64) (string, error) {
	u := fmt.Sprintf("%srepos/%s/%s/actions/artifacts/%d/zip", b.sim.URL(), owner, repoName, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "token "+ghToken)
	hc := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("GET %s: %s, want 302", u, resp.Status)
	}
	return resp.Header.Get("Location"), nil
}

// report prints the results as Markdown.
func (b *bench) report(w io.Writer) {
	fmt.Fprintf(w, "| round | size | tool | part size | seconds | MiB/s | peak RSS MiB | sha256 |\n")
	fmt.Fprintf(w, "|---:|---:|---|---:|---:|---:|---:|---|\n")
	for _, r := range b.results {
		part := "-"
		if r.tool == "worker" {
			part = "default (16 MiB)"
			if r.partSize > 0 {
				part = fmtSize(r.partSize)
			}
		}
		ok := "ok"
		if !r.verified {
			ok = "MISMATCH: " + r.note
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f | %.0f | %.1f | %s |\n",
			r.round, fmtSize(r.size), r.tool, part, r.wall.Seconds(), r.mibps(), float64(r.peakRSS)/mib, ok)
	}

	fmt.Fprintf(w, "\n| round | size | worker part size | worker MiB/s | rclone MiB/s | worker/rclone |\n")
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.results {
		if r.tool != "worker" {
			continue
		}
		for _, c := range b.results {
			if c.tool == "rclone" && c.round == r.round && c.size == r.size {
				part := "default"
				if r.partSize > 0 {
					part = fmtSize(r.partSize)
				}
				fmt.Fprintf(w, "| %d | %s | %s | %.0f | %.0f | %.2f× |\n", r.round, fmtSize(r.size), part, r.mibps(), c.mibps(), r.mibps()/c.mibps())
			}
		}
	}

	io.WriteString(w, "\nworker process:\n\n")
	io.WriteString(w, "| round | size | part size | publish→manifest s | transfer s (worker log) | idle RSS MiB | max sampled VmRSS MiB | VmHWM MiB | WARN lines |\n")
	io.WriteString(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.results {
		if r.tool != "worker" {
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %s | %.2f | %.2f | %.1f | %.1f | %.1f | %d |\n", r.round, fmtSize(r.size), partName(r),
			r.wall.Seconds(), r.transfer.Seconds(), float64(r.idleRSS)/mib, float64(r.sampledRSS)/mib, float64(r.peakRSS)/mib, r.warnings)
	}

	io.WriteString(w, "\nCPU and machine during each timed part (\"bench\" is this process: the simulator's blob host, NATS, polling; "+
		"\"others\" is every other process on the machine; pressure is PSI \"some\"; a stall is the longest time the blob host served no byte):\n\n")
	io.WriteString(w, "| round | size | tool | part size | CPU s tool | CPU s MinIO | CPU s bench | CPU s per GiB | cores busy | others, cores | CPU pressure % | IO pressure % | max dirty MiB | longest stall s |\n")
	io.WriteString(w, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.results {
		all := (r.cpuTool + r.cpuMinIO + r.cpuBench).Seconds()
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %d | %.1f |\n",
			r.round, fmtSize(r.size), r.tool, partName(r), r.cpuTool.Seconds(), r.cpuMinIO.Seconds(), r.cpuBench.Seconds(),
			all/(float64(r.size)/(1<<30)), all/r.wall.Seconds(), r.cpuOthers.Seconds()/r.wall.Seconds(),
			100*r.watch.cpuPressure, 100*r.watch.ioPressure, r.watch.maxDirty/mib, r.watch.stall.Seconds())
	}
}

// partName renders a worker's part size ("-" for rclone).
func partName(r result) string {
	switch {
	case r.tool != "worker":
		return "-"
	case r.partSize > 0:
		return fmtSize(r.partSize)
	default:
		return "default"
	}
}

// cpuMeter measures CPU time of a process, MinIO and this process.
type cpuMeter struct {
	b                        *bench
	pid                      int
	tool, minio, self, total time.Duration
}

// startCPU starts measuring; pid 0 measures no tool process.
func (b *bench) startCPU(pid int) *cpuMeter {
	m := &cpuMeter{b: b, pid: pid}
	if pid != 0 {
		m.tool = procCPU(pid)
	}
	m.minio = procCPU(b.minio.cmd.Process.Pid)
	m.self = selfCPU()
	m.total = machineBusy()
	return m
}

// stop returns the CPU time spent since startCPU by the tool, MinIO, this
// process, and every other process (the rest of the machine's busy time;
// a tool measured with pid 0 is counted there).
func (m *cpuMeter) stop() (tool, minio, self, others time.Duration) {
	if m.pid != 0 {
		tool = procCPU(m.pid) - m.tool
	}
	minio, self = procCPU(m.b.minio.cmd.Process.Pid)-m.minio, selfCPU()-m.self
	busy := machineBusy()
	others = max(busy-m.total-tool-minio-self, 0)
	return tool, minio, self, others
}

// machineBusy returns the non-idle CPU time of the whole machine since boot
// (/proc/stat: everything but idle and iowait).
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / 100
}

// watch is what progressWatcher saw during one timed leg.
type watch struct {
	// stall is the longest time the blob host served no byte of the
	// artifact (sampled every 100 ms); stalls describes every stall of a
	// second or more.
	stall  time.Duration
	stalls []string
	// maxDirty is the highest Dirty+Writeback of /proc/meminfo.
	maxDirty int64
	// cpuPressure and ioPressure are the machine's PSI "some" shares
	// (/proc/pressure): the fraction of the time at least one task was
	// waiting for a CPU, or blocked on I/O.
	cpuPressure, ioPressure float64
}

// progressWatcher samples the bytes the blob host served for an artifact,
// the page cache and the machine's pressure.
type progressWatcher struct {
	quit chan struct{}
	done chan watch
	once sync.Once
	last watch
}

func (b *bench) watchProgress(id int64) *progressWatcher {
	p := &progressWatcher{quit: make(chan struct{}), done: make(chan watch, 1)}
	go func() {
		t := time.NewTicker(sampleGap)
		defer t.Stop()
		var w watch
		var seen int64 = -1
		start := time.Now()
		since := start
		cpu0, io0 := psiSome("cpu"), psiSome("io")
		var stallNote string
		for {
			select {
			case <-p.quit:
				if d := time.Since(start); d > 0 {
					w.cpuPressure = float64(psiSome("cpu")-cpu0) / float64(d)
					w.ioPressure = float64(psiSome("io")-io0) / float64(d)
				}
				p.done <- w
				return
			case now := <-t.C:
				n := b.sim.Stats().BlobBytesByArtifact[id]
				dirty := meminfo("Dirty") + meminfo("Writeback")
				w.maxDirty = max(w.maxDirty, dirty)
				stalled := now.Sub(since)
				if n != seen {
					if stalled >= time.Second && seen >= 0 {
						w.stalls = append(w.stalls, fmt.Sprintf("%.1fs without a byte from %.1fs on (%d MiB served; %s)",
							stalled.Seconds(), since.Sub(start).Seconds(), seen/mib, stallNote))
					}
					seen, since, stallNote = n, now, ""
					continue
				}
				w.stall = max(w.stall, stalled)
				if stalled >= 500*time.Millisecond && stallNote == "" {
					stallNote = fmt.Sprintf("at 0.5s into it: page cache dirty+writeback %d MiB, MinIO threads in D state %d",
						dirty/mib, dStateThreads(b.minio.cmd.Process.Pid))
				}
			}
		}
	}()
	return p
}

// stop returns what was seen; it is idempotent.
func (p *progressWatcher) stop() watch {
	p.once.Do(func() {
		close(p.quit)
		p.last = <-p.done
	})
	return p.last
}

// psiSome returns the "some" total of /proc/pressure/<kind>, 0 if
// unavailable.
func psiSome(kind string) time.Duration {
	data, err := os.ReadFile("/proc/pressure/" + kind)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	_, total, ok := strings.Cut(line, "total=")
	if !ok {
		return 0
	}
	us, _ := strconv.ParseInt(strings.TrimSpace(total), 10, 64)
	return time.Duration(us) * time.Microsecond
}

// meminfo returns a /proc/meminfo field in bytes.
func meminfo(field string) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// dStateThreads counts a process's threads in uninterruptible sleep
// (usually waiting for the disk).
func dStateThreads(pid int) int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	n := 0
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			continue
		}
		if _, rest, ok := strings.Cut(string(data), ") "); ok && strings.HasPrefix(rest, "D") {
			n++
		}
	}
	return n
}

// procCPU returns utime+stime of a process (0 if it cannot be read).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(data), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest) // f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hwmPoller polls a process's VmHWM until it exits.
type hwmPoller struct {
	quit chan struct{}
	done chan int64
	once sync.Once
	peak int64
}

func pollHWM(pid int) *hwmPoller {
	p := &hwmPoller{quit: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var last int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := procStatus(pid, "VmHWM"); err == nil {
				last = max(last, v)
			}
			select {
			case <-p.quit:
				p.done <- last
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop returns the last VmHWM seen; it is idempotent.
func (p *hwmPoller) stop() int64 {
	p.once.Do(func() {
		close(p.quit)
		p.peak = <-p.done
	})
	return p.peak
}

// settle flushes dirty pages and waits (at most 15 s) until MinIO has used
// less than 5% of a core for half a second: deletions of the previous
// objects and writeback happen in the background and would otherwise be
// charged to the next leg.
func (b *bench) settle(ctx context.Context) {
	syscall.Sync()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		before := procCPU(b.minio.cmd.Process.Pid)
		time.Sleep(500 * time.Millisecond)
		if procCPU(b.minio.cmd.Process.Pid)-before < 25*time.Millisecond {
			return
		}
	}
}

// childPid returns the first child of pid, waiting up to a second for it
// (pid itself if there is none).
func childPid(pid int) int {
	for range 100 {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(data)); len(f) > 0 {
			if c, err := strconv.Atoi(f[0]); err == nil {
				return c
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pid
}

// perfRecorder is a `perf record` attached to a process.
type perfRecorder struct{ c *child }

// startPerf attaches perf to pid when -perf is set.
func (b *bench) startPerf(pid int, name string) *perfRecorder {
	if b.opt.perfDir == "" || pid == 0 {
		return &perfRecorder{}
	}
	if err := os.MkdirAll(b.opt.perfDir, 0o755); err != nil {
		b.log.Printf("perf: %v", err)
		return &perfRecorder{}
	}
	out := filepath.Join(b.opt.perfDir, name+".data")
	c, err := startChild("perf", []string{"record", "-g", "-F", "499", "-p", strconv.Itoa(pid), "-o", out}, os.Environ(), filepath.Join(b.opt.perfDir, name+".log"), nil)
	if err != nil {
		b.log.Printf("perf: %v", err)
		return &perfRecorder{}
	}
	time.Sleep(200 * time.Millisecond) // let it attach
	return &perfRecorder{c: c}
}

func (p *perfRecorder) stop() {
	if p.c != nil {
		p.c.stop(syscall.SIGINT, 10*time.Second)
		p.c = nil
	}
}

// child is a process started by the bench, in its own process group, killed
// by the kernel if the bench dies.
type child struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	once    sync.Once
}

// startChild starts bin with its output appended to logPath; if tee is not
// nil, stdout is also copied to it line by line.
func startChild(bin string, args, env []string, logPath string, tee io.Writer) (*child, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = f
	cmd.Stdout = f
	if tee != nil {
		cmd.Stdout = io.MultiWriter(f, tee)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace, then kills the process and waits.
func (c *child) stop(sig syscall.Signal, grace time.Duration) {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
		return
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

func (c *child) logTail() string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return err.Error()
	}
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return string(data)
}

// workerLog watches the worker's JSON log lines.
type workerLog struct {
	mu       sync.Mutex
	partial  []byte
	running  chan string
	transfer time.Duration
	warnings int
	warnLog  []string // the first few WARN/ERROR lines
}

func (l *workerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *workerLog) line(b []byte) {
	var e struct {
		Level       string `json:"level"`
		Msg         string `json:"msg"`
		MetricsAddr string `json:"metrics_addr"`
		Duration    int64  `json:"duration"`
	}
	if json.Unmarshal(b, &e) != nil {
		return
	}
	switch {
	case e.Msg == "worker running":
		select {
		case l.running <- e.MetricsAddr:
		default:
		}
	case e.Msg == "artifact archived":
		l.transfer = time.Duration(e.Duration)
	}
	if e.Level == "WARN" || e.Level == "ERROR" {
		l.warnings++
		if len(l.warnLog) < 5 {
			l.warnLog = append(l.warnLog, string(b))
		}
	}
}

func (l *workerLog) result() (time.Duration, int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.transfer, l.warnings, l.warnLog
}

// rssSampler polls a process's VmRSS.
type rssSampler struct {
	quit chan struct{}
	done chan int64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{quit: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(sampleGap)
		defer t.Stop()
		for {
			if v, err := procStatus(pid, "VmRSS"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-s.quit:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the highest sample.
func (s *rssSampler) stop() int64 {
	close(s.quit)
	return <-s.done
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
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

// poll calls f every gap until it reports done, fails, or timeout passes.
func poll(ctx context.Context, timeout, gap time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(gap):
		}
	}
}

// deadlineFor bounds one transfer: a minute plus 20 MiB/s.
func deadlineFor(size int64) time.Duration {
	return time.Minute + time.Duration(size/(20*mib))*time.Second
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory (use -repo)")
		}
		dir = parent
	}
}

func findMinIO(root string) (string, error) {
	if p := os.Getenv("ARCHIVER_MINIO_BIN"); p != "" {
		return p, nil
	}
	if p := filepath.Join(root, ".cache", "bin", "minio"); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errors.New("no minio binary: set -minio or ARCHIVER_MINIO_BIN, or run the tests once (they build .cache/bin/minio)")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func parseSizes(s string) ([]int64, error) {
	var out []int64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mul = strings.TrimSpace(rest), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional B/KiB/MiB/GiB suffix", s)
	}
	return n * mul, nil
}

func fmtSize(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
