package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// measureWorker runs a fresh process of the worker build w for one run
// event.
func (b *bench) measureWorker(ctx context.Context, w workerBuild, run ghsim.Run, artID, size, partSize int64, want string) (result, error) {
	res := result{size: size, tool: legWorker, variant: w.label, partSize: partSize}
	tag := fmt.Sprintf("worker-%d", run.ID)
	env := append(append(baseEnv(), b.awsEnv()...),
		"NATS_URL="+b.ns.ClientURL(),
		"GITHUB_API_URL="+b.sim.URL(),
		"GITHUB_TOKEN="+ghToken,
		"ARCHIVER_DESTINATION=s3://"+bucket+"/"+destPref,
		"ARCHIVER_S3_FORCE_PATH_STYLE=true",
		"ARCHIVER_ALLOW_HTTP_DOWNLOADS=true",
		"ARCHIVER_METRICS_ADDR=127.0.0.1:0",
		"ARCHIVER_CONCURRENCY=1",
	)
	if partSize > 0 {
		env = append(env, "ARCHIVER_PART_SIZE="+strconv.FormatInt(partSize, 10))
	}
	wl := &workerLog{running: make(chan string, 1)}
	wp, err := benchkit.StartProcess(w.path, nil, env, filepath.Join(b.dir, tag+".log"), wl)
	if err != nil {
		return res, err
	}
	defer wp.Stop(syscall.SIGKILL, 0) // no-op after the graceful stop below
	select {
	case <-wl.running:
	case <-wp.Done():
		return res, fmt.Errorf("worker exited at start: %s", wp.LogTail())
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("worker not running after 30s: %s", wp.LogTail())
	case <-ctx.Done():
		return res, ctx.Err()
	}

	b.settle(ctx)
	pid := wp.Pid()
	res.idleRSS, _ = benchkit.ProcStatus(pid, "VmRSS")
	sampler := benchkit.SamplePeak(pid, "VmRSS", sampleGap)
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
	prof := b.startPerf(pid, fmt.Sprintf("worker%s-%s-run%d", w.label, strings.ReplaceAll(fmtSize(size), " ", ""), run.ID))
	start := time.Now()
	if _, err := b.pub.Publish(ctx, ev); err != nil {
		sampler.Stop()
		prof.stop()
		return res, err
	}
	err = benchkit.Poll(ctx, deadlineFor(size), 20*time.Millisecond, func() (bool, error) {
		if wp.Exited() {
			return false, fmt.Errorf("worker exited: %s", wp.LogTail())
		}
		_, err := b.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(manifestKey)})
		return err == nil, nil
	})
	res.wall = time.Since(start)
	res.cpuTool, res.cpuServer, res.cpuBench, res.cpuOthers = cpu.stop()
	prof.stop()
	hwm, herr := benchkit.ProcStatus(pid, "VmHWM")
	res.sampledRSS = sampler.Stop()
	res.watch = progress.stop()
	if err != nil {
		return res, fmt.Errorf("waiting for %s: %w\n%s", manifestKey, err, wp.LogTail())
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
	wp.Stop(syscall.SIGTERM, 15*time.Second)
	var warnLog []string
	res.transfer, res.warnings, warnLog = wl.result()
	for _, line := range warnLog {
		b.log.Printf("  worker log: %s", line)
	}

	// Verify.
	problems, err := b.checkManifest(ctx, manifestKey, size, want)
	if err != nil {
		return res, err
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
	err = benchkit.Poll(ctx, 10*time.Second, 20*time.Millisecond, func() (bool, error) {
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
