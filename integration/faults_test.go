//go:build integration

package integration

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
)

// scenario is one repository (reachable by the App installation) with runs.
func scenario(runs ...ghsim.ScenarioRun) ghsim.Scenario {
	return ghsim.Scenario{Repos: []ghsim.ScenarioRepo{{
		InstallationID: installation, Owner: owner, Name: repoName, Runs: runs,
	}}}
}

// runSpec is a completed run with id and artifacts.
func runSpec(id int64, arts ...ghsim.ScenarioArtifact) ghsim.ScenarioRun {
	return ghsim.ScenarioRun{RunSpec: ghsim.RunSpec{ID: id, Attempt: 1}, Artifacts: arts}
}

// artifact is a zip artifact of size bytes.
func artifact(name string, size int64) ghsim.ScenarioArtifact {
	return ghsim.ScenarioArtifact{ArtifactSpec: ghsim.ArtifactSpec{Name: name, Size: size}}
}

// firstRunID is where run ids start, above 2^32 like GitHub's.
const firstRunID = 30_000_000_001

// TestDuplicateDeliveries sends the same delivery ten times at once, then
// the same run from a second hook with another delivery id, and again after
// it was archived: JetStream stores one event, the run is archived once.
func TestDuplicateDeliveries(t *testing.T) {
	cfg := StackConfig{Scenario: scenario(runSpec(firstRunID, artifact("dist", 3*MiB), artifact("logs", 64*KiB)))}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		run := h.runs()[0]
		id := newDeliveryID()
		type answer struct {
			status int
			dup    bool
		}
		answers := make([]answer, 10)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() {
				status, dup := h.deliver(run, id, "1001")
				answers[i] = answer{status, dup}
			})
		}
		wg.Wait()
		stored := 0
		for _, a := range answers {
			if a.status != http.StatusAccepted {
				t.Fatalf("a redelivery was answered %d, want 202", a.status)
			}
			if !a.dup {
				stored++
			}
		}
		if stored != 1 {
			t.Fatalf("%d of 10 identical deliveries were stored, want 1 (the rest duplicates)", stored)
		}
		if status, dup := h.deliver(run, newDeliveryID(), "2002"); status != http.StatusAccepted || !dup {
			t.Fatalf("the second hook's delivery: %d duplicate=%v, want 202 duplicate", status, dup)
		}
		h.waitManifests([]ghsim.Run{run}, time.Minute)
		h.waitIdle(time.Minute)
		if status, dup := h.deliver(run, newDeliveryID(), "2002"); status != http.StatusAccepted || !dup {
			t.Fatalf("a delivery after archiving: %d duplicate=%v, want 202 duplicate", status, dup)
		}
		q := h.waitIdle(time.Minute)
		if q.LastSeq != 1 {
			t.Errorf("the run stream stored %d events, want 1", q.LastSeq)
		}
		all := h.workerMetrics()
		if n := sumMetric(all, "archiver_jobs_total", "outcome", "archived"); n != 1 {
			t.Errorf("workers archived the run %v times, want 1", n)
		}
		if n := sumMetric(all, "archiver_artifacts_total", "outcome", "archived"); n != 2 {
			t.Errorf("workers archived %v artifacts, want 2", n)
		}
		h.checkInvariants(expectation{Runs: []ghsim.Run{run}})
	})
}

// TestDeliveryWhileNATSDown delivers while NATS is down: the webhook
// answers 503 (GitHub records a failed delivery) and is not ready; the
// same delivery redelivered once NATS is back is accepted and archived.
func TestDeliveryWhileNATSDown(t *testing.T) {
	cfg := StackConfig{Scenario: scenario(runSpec(firstRunID, artifact("dist", 2*MiB)))}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		run := h.runs()[0]
		h.s.StopNATS()
		id := newDeliveryID()
		for range 2 {
			start := time.Now()
			status, _ := h.deliver(run, id, "1001")
			if status != http.StatusServiceUnavailable {
				t.Fatalf("delivery while NATS is down: %d, want 503", status)
			}
			if d := time.Since(start); d > 9*time.Second {
				t.Errorf("the 503 took %s; GitHub gives up after 10 s", d)
			}
		}
		h.eventually(30*time.Second, "webhook /readyz to answer 503", func() bool { return h.webhookReady() == http.StatusServiceUnavailable })
		h.s.StartNATS()
		n := h.deliverUntilAccepted(run, id, time.Minute)
		t.Logf("redelivery accepted after %d attempts", n)
		h.waitManifests([]ghsim.Run{run}, time.Minute)
		h.checkInvariants(expectation{Runs: []ghsim.Run{run}})
	})
}

// artifactNamed returns the artifact of run called name.
func (h *harness) artifactNamed(run ghsim.Run, name string) ghsim.Artifact {
	h.t.Helper()
	for _, a := range h.artifacts(h.state, run.ID) {
		if a.Name == name {
			return a
		}
	}
	h.t.Fatalf("run %d has no artifact %q", run.ID, name)
	return ghsim.Artifact{}
}

// objectKey is the full S3 key an artifact is archived under (zip
// artifacts: <name>.zip).
func objectKey(a ghsim.Artifact) string {
	l := archive.Layout{Owner: a.Owner, Repo: a.Repo, RunID: a.RunID}
	return prefix + "/" + l.ArtifactPrefix(a.ID) + archive.ObjectName(a.Name, "application/zip", "")
}

// openUploads lists the incomplete multipart uploads at exactly key.
func (h *harness) openUploads(key string) int {
	h.t.Helper()
	out, err := h.s.S3().ListMultipartUploads(h.t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		h.t.Fatalf("list multipart uploads of %s: %v", key, err)
	}
	return len(out.Uploads)
}

// TestWorkerKilledMidUpload SIGKILLs a worker in the middle of a 512 MiB
// multipart upload (the blob is throttled so the kill lands mid-stream,
// with parts already uploaded), then starts a second worker: the event is
// redelivered after AckWait, the stale upload is aborted, the artifact is
// archived once, verified, and only then deleted at GitHub.
func TestWorkerKilledMidUpload(t *testing.T) {
	cfg := StackConfig{
		Scenario:  scenario(runSpec(firstRunID, artifact("big", 512*MiB), artifact("small", 1*MiB))),
		WorkerEnv: map[string]string{"ARCHIVER_DELETE_FROM_GITHUB": "true"},
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		run := h.runs()[0]
		big := h.artifactNamed(run, "big")
		key := objectKey(big)
		h.sim.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(24*MiB).ForArtifact(big.ID))
		first := h.s.Workers()[0]
		h.deliverUntilAccepted(run, "", 30*time.Second)
		const killAt = 160 * MiB
		h.eventually(2*time.Minute, "the first download to pass 160 MiB", func() bool {
			return h.sim.Stats().BlobBytesByArtifact[big.ID] >= killAt
		})
		if n := h.openUploads(key); n != 1 {
			t.Fatalf("%d multipart uploads open at %s before the kill, want 1 (the kill must land mid-upload)", n, key)
		}
		first.Kill()
		killed := time.Now()
		sent := h.sim.Stats().BlobBytesByArtifact[big.ID]
		if sent >= big.Size {
			t.Fatalf("the whole artifact was served before the kill")
		}
		second := h.s.StartWorker()
		h.waitManifests([]ghsim.Run{run}, 3*time.Minute)
		t.Logf("killed %s after %d MiB; %s archived the run %s after the kill", first.Name(), sent>>20, second.Name(), time.Since(killed).Round(time.Millisecond))

		h.waitIdle(time.Minute)
		m, err := scrape(second.MetricsURL())
		if err != nil {
			t.Fatal(err)
		}
		if n := m.Get("archiver_jobs_total", "outcome", "archived"); n != 1 {
			t.Errorf("%s archived %v runs, want 1 (the redelivered one)", second.Name(), n)
		}
		if n := m.Get("archiver_artifacts_total", "outcome", "archived"); n < 1 {
			t.Errorf("%s archived %v artifacts, want the big one at least", second.Name(), n)
		}
		if got := h.sim.Stats().BlobBytesByArtifact[big.ID]; got < big.Size+sent {
			t.Errorf("the blob host served %d bytes of the big artifact, want the partial %d plus a whole new copy", got, sent)
		}
		h.checkInvariants(expectation{Runs: []ghsim.Run{run}, DeleteFromGitHub: true})
	})
}

// runsSpec is n runs (ids from firstRunID) with the same artifacts.
func runsSpec(n int, arts ...ghsim.ScenarioArtifact) []ghsim.ScenarioRun {
	runs := make([]ghsim.ScenarioRun, n)
	for i := range runs {
		runs[i] = runSpec(firstRunID+int64(i), arts...)
	}
	return runs
}

// TestNATSRestart restarts nats-server (file storage, same store
// directory) while events are being published and consumed: deliveries
// during the outage get 503 and are redelivered, acks lost in flight lead
// to redeliveries; every run is archived exactly once.
func TestNATSRestart(t *testing.T) {
	cfg := StackConfig{
		Scenario: scenario(runsSpec(30, artifact("dist", 4*MiB), artifact("log", 256*KiB))...),
		Workers:  2,
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		runs := h.runs()
		// Slow downloads keep jobs in flight across the restart.
		h.sim.Inject(ghsim.RouteBlob, -1, ghsim.Throttle(8*MiB))
		var delivered atomic.Int32
		errc := make(chan error, 1)
		go func() {
			// One delivery every 100 ms, each until accepted.
			var err error
			for _, r := range runs {
				if err = h.deliverAll([]ghsim.Run{r}, 1, 2*time.Minute); err != nil {
					break
				}
				delivered.Add(1)
				sleepCtx(t.Context(), 100*time.Millisecond)
			}
			errc <- err
		}()
		h.eventually(time.Minute, "a third of the runs to be delivered", func() bool { return delivered.Load() >= int32(len(runs)/3) })
		h.s.RestartNATS()
		t.Logf("NATS restarted after %d deliveries", delivered.Load())
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		h.sim.ClearFaults()
		h.waitManifests(runs, 3*time.Minute)
		unavailable := 0
		for _, d := range h.deliveries() {
			if d.Status == http.StatusServiceUnavailable {
				unavailable++
			}
		}
		t.Logf("%d deliveries answered 503 during the restart", unavailable)
		h.checkInvariants(expectation{Runs: runs})
	})
}

// TestMinIOOutage stops MinIO for 20 s in the middle of a run of
// multipart uploads, then starts it again: failed parts and manifests are
// retried, no stale upload stays, and nothing is deleted at GitHub without
// a verified copy.
func TestMinIOOutage(t *testing.T) {
	cfg := StackConfig{
		Scenario: scenario(runsSpec(12, artifact("dist", 24*MiB), artifact("log", 512*KiB))...),
		Workers:  2,
		WorkerEnv: map[string]string{
			"ARCHIVER_PART_SIZE":          strconv.Itoa(5 * MiB),
			"ARCHIVER_DELETE_FROM_GITHUB": "true",
		},
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		runs := h.runs()
		h.sim.Inject(ghsim.RouteBlob, -1, ghsim.Throttle(3*MiB))
		if err := h.deliverAll(runs, 4, time.Minute); err != nil {
			t.Fatal(err)
		}
		h.eventually(2*time.Minute, "two runs archived", func() bool { return h.countManifests(runs) >= 2 })
		before := h.countManifests(runs)
		h.s.StopMinIO()
		stopped := time.Now()
		// The outage itself: a fixed 20 s, as the scenario says.
		sleepCtx(t.Context(), 20*time.Second)
		h.s.StartMinIO()
		t.Logf("MinIO down for %s with %d of %d runs archived", time.Since(stopped).Round(time.Millisecond), before, len(runs))
		h.sim.ClearFaults()
		h.waitManifests(runs, 4*time.Minute)
		all := h.workerMetrics()
		if n := sumMetric(all, "archiver_jobs_total", "outcome", "retry"); n == 0 {
			t.Errorf("no run was retried: the outage did not hit a run in flight")
		}
		h.checkInvariants(expectation{Runs: runs, DeleteFromGitHub: true, S3Outage: true})
	})
}

// delta is how many more requests of route were answered status in after
// than in before.
func delta(before, after ghsim.Stats, route ghsim.Route, status int) int {
	return after.Count(route, status) - before.Count(route, status)
}

// TestGitHubFaults archives one run per GitHub misbehaviour, in turn, on
// one stack: 5xx answers, an exhausted primary rate limit, secondary limits
// (403 and 429 with Retry-After), a connection reset in the middle of a
// download, and a redirect URL that has expired by the time it is used.
// Each fault must fire, and each run must end archived and verified.
func TestGitHubFaults(t *testing.T) {
	expired := artifact("old", 100*KiB)
	expired.Expired = true
	cfg := StackConfig{
		Scenario: scenario(
			runSpec(firstRunID, artifact("a", 2*MiB), artifact("b", 12*MiB)),
			runSpec(firstRunID+1, artifact("a", 1*MiB)),
			runSpec(firstRunID+2, artifact("a", 1*MiB), artifact("b", 1*MiB)),
			runSpec(firstRunID+3, artifact("big", 40*MiB)),
			runSpec(firstRunID+4, artifact("a", 3*MiB), expired),
		),
		WorkerEnv: map[string]string{
			"ARCHIVER_PART_SIZE":          strconv.Itoa(5 * MiB),
			"ARCHIVER_DELETE_FROM_GITHUB": "true",
		},
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		runs := h.runs()
		step := func(name string, run ghsim.Run, inject func(), check func(before, after ghsim.Stats, took time.Duration)) {
			t.Helper()
			before := h.sim.Stats()
			inject()
			start := time.Now()
			h.deliverUntilAccepted(run, "", 30*time.Second)
			h.waitManifests([]ghsim.Run{run}, 3*time.Minute)
			h.waitIdle(2 * time.Minute)
			took := time.Since(start)
			t.Logf("%s: run archived in %s", name, took.Round(time.Millisecond))
			check(before, h.sim.Stats(), took)
		}

		step("5xx", runs[0], func() {
			h.sim.Inject(ghsim.RouteList, 1, ghsim.ServerError(502))
			h.sim.Inject(ghsim.RouteZip, 2, ghsim.ServerError(500))
			h.sim.Inject(ghsim.RouteBlob, 1, ghsim.ServerError(503))
		}, func(before, after ghsim.Stats, _ time.Duration) {
			if delta(before, after, ghsim.RouteList, 502) != 1 || delta(before, after, ghsim.RouteZip, 500) != 2 || delta(before, after, ghsim.RouteBlob, 503) != 1 {
				t.Errorf("5xx faults fired list/zip/blob %d/%d/%d times, want 1/2/1", delta(before, after, ghsim.RouteList, 502), delta(before, after, ghsim.RouteZip, 500), delta(before, after, ghsim.RouteBlob, 503))
			}
		})

		var reset time.Time
		step("primary rate limit", runs[1], func() {
			reset = time.Now().Add(8 * time.Second).Truncate(time.Second)
			h.sim.SetRateLimit(installation, 0, reset)
		}, func(before, after ghsim.Stats, _ time.Duration) {
			if n := delta(before, after, ghsim.RouteList, 403); n < 1 {
				t.Errorf("no request met the exhausted rate limit (list 403 ×%d)", n)
			}
			if time.Now().Before(reset) {
				t.Errorf("archived before the rate limit reset at %s", reset)
			}
		})

		step("secondary rate limits", runs[2], func() {
			h.sim.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(403, 2*time.Second))
			h.sim.Inject(ghsim.RouteZip, 1, ghsim.SecondaryLimit(429, 2*time.Second))
		}, func(before, after ghsim.Stats, took time.Duration) {
			if delta(before, after, ghsim.RouteList, 403) != 1 || delta(before, after, ghsim.RouteZip, 429) != 1 {
				t.Errorf("secondary limits fired list 403 ×%d, zip 429 ×%d; want 1 each", delta(before, after, ghsim.RouteList, 403), delta(before, after, ghsim.RouteZip, 429))
			}
			if took < 4*time.Second {
				t.Errorf("archived in %s: the two Retry-After: 2 were not honoured", took)
			}
		})

		big := h.artifactNamed(runs[3], "big")
		const cut = 12 * MiB
		step("connection reset mid-stream", runs[3], func() {
			h.sim.Inject(ghsim.RouteBlob, 1, ghsim.ResetAfter(cut).ForArtifact(big.ID))
		}, func(before, after ghsim.Stats, _ time.Duration) {
			var resumes []int64
			for _, r := range after.Ranges[len(before.Ranges):] {
				if r.ArtifactID == big.ID {
					resumes = append(resumes, r.Start)
				}
			}
			if len(resumes) != 1 || resumes[0] <= 0 || resumes[0]%(5*MiB) != 0 || resumes[0] > cut {
				t.Errorf("resumed with Range starts %v, want one at a part boundary at or before %d", resumes, cut)
			}
			served := after.BlobBytesByArtifact[big.ID] - before.BlobBytesByArtifact[big.ID]
			if served > big.Size+cut-5*MiB {
				t.Errorf("served %d bytes of a %d-byte artifact cut at %d: the download started over", served, big.Size, cut)
			}
		})

		step("expired redirect URL", runs[4], func() {
			h.sim.Inject(ghsim.RouteZip, 1, ghsim.ExpiredURL())
		}, func(before, after ghsim.Stats, _ time.Duration) {
			if n := delta(before, after, ghsim.RouteBlob, 403); n != 1 {
				t.Errorf("the expired URL was refused %d times, want 1", n)
			}
		})
		h.checkInvariants(expectation{Runs: runs, DeleteFromGitHub: true})
	})
}

// TestNATSClusterFaults runs a 3-node JetStream cluster with R3 streams
// (docker mode only). While runs are archived, one worker is cut off from
// the node its connection is on (its network link to that node removed: a
// silent partition), and another node is killed: publishing and archiving
// go on through the remaining nodes, and every run is archived once.
func TestNATSClusterFaults(t *testing.T) {
	cfg := StackConfig{
		Scenario:  scenario(runsSpec(24, artifact("dist", 6*MiB), artifact("log", 128*KiB))...),
		Workers:   2,
		NATSNodes: 3,
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		cs, ok := h.s.(ClusterStack)
		if !ok {
			t.Fatalf("%s stack has no NATS cluster", h.s.Mode())
		}
		runs := h.runs()
		h.sim.Inject(ghsim.RouteBlob, -1, ghsim.Throttle(2*MiB))
		if err := h.deliverAll(runs[:12], 4, time.Minute); err != nil {
			t.Fatal(err)
		}
		h.eventually(2*time.Minute, "three runs archived", func() bool { return h.countManifests(runs) >= 3 })
		w1, w2 := h.s.Workers()[0], h.s.Workers()[1]
		cut := cs.ConnectedNode(w1)
		if cut < 0 {
			t.Fatalf("%s is connected to no NATS node", w1.Name())
		}
		killed := (cut + 1) % 3
		before, err := scrape(w2.MetricsURL())
		if err != nil {
			t.Fatal(err)
		}
		cs.PartitionWorker(w1, cut)
		cs.KillNATSNode(killed)
		t.Logf("%s cut off from node %d (its connection's), node %d killed, with %d of %d runs archived", w1.Name(), cut+1, killed+1, h.countManifests(runs), len(runs))
		if err := h.deliverAll(runs[12:18], 4, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		h.sim.ClearFaults()
		h.waitManifests(runs[:18], 4*time.Minute)
		h.waitIdle(2 * time.Minute)
		after, err := scrape(w2.MetricsURL())
		if err != nil {
			t.Fatal(err)
		}
		if n := after.Get("archiver_jobs_total", "outcome", "archived") - before.Get("archiver_jobs_total", "outcome", "archived"); n < 1 {
			t.Errorf("%s archived no run after the faults", w2.Name())
		}
		// The partitioned worker must notice and come back through a node
		// it still reaches: then it alone archives the last runs.
		start := time.Now()
		h.eventually(3*time.Minute, w1.Name()+" to reconnect to another node", func() bool {
			n := cs.ConnectedNode(w1)
			return n >= 0 && n != cut
		})
		t.Logf("%s reconnected to node %d %s after the partition was checked", w1.Name(), cs.ConnectedNode(w1)+1, time.Since(start).Round(time.Second))
		w2.Kill()
		if err := h.deliverAll(runs[18:], 4, time.Minute); err != nil {
			t.Fatal(err)
		}
		h.waitManifests(runs, 2*time.Minute)
		h.checkInvariants(expectation{Runs: runs})
	})
}

// TestBurst delivers 200 runs of 5 artifacts at once to 3 workers: every
// run is archived, and the work is spread over every worker.
func TestBurst(t *testing.T) {
	sizes := []int64{16 * KiB, 48 * KiB, 96 * KiB, 160 * KiB, 256 * KiB}
	var arts []ghsim.ScenarioArtifact
	for i, s := range sizes {
		arts = append(arts, artifact("part-"+strconv.Itoa(i), s))
	}
	cfg := StackConfig{Scenario: scenario(runsSpec(200, arts...)...), Workers: 3}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		runs := h.runs()
		start := time.Now()
		if err := h.deliverAll(runs, 16, time.Minute); err != nil {
			t.Fatal(err)
		}
		delivered := time.Since(start)
		h.waitManifests(runs, 5*time.Minute)
		t.Logf("%d deliveries in %s; %d runs (%d artifacts) archived in %s", len(runs), delivered.Round(time.Millisecond), len(runs), len(runs)*len(sizes), time.Since(start).Round(time.Millisecond))
		for name, m := range h.workerMetrics() {
			n := m.Get("archiver_jobs_total", "outcome", "archived")
			t.Logf("%s archived %v runs", name, n)
			if n == 0 {
				t.Errorf("%s archived no run: the work was not spread", name)
			}
		}
		h.checkInvariants(expectation{Runs: runs})
	})
}
