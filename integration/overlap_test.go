//go:build integration

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// The tests of work that overlaps (issue 11): two attempts of one run at
// once, a redelivery that reaches a second worker while the first still
// runs, a run with one artifact that can never be archived, and a blob
// download that stalls.

// manifestView is a manifest as these tests read it: the fields of
// archive.Manifest they check, plus the completeness and the tries, read
// from the JSON itself.
type manifestView struct {
	// Complete is the top-level "complete" (nil when absent).
	Complete    *bool `json:"complete"`
	WorkflowRun struct {
		ID         int64 `json:"id"`
		RunAttempt int   `json:"run_attempt"`
	} `json:"workflow_run"`
	Artifacts []recordView `json:"artifacts"`
}

// recordView is one artifact of a manifestView.
type recordView struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	Status            string `json:"status"`
	Key               string `json:"key"`
	Size              int64  `json:"size"`
	SHA256            string `json:"sha256"`
	Error             string `json:"error"`
	Tries             int    `json:"tries"`
	DeletedFromGitHub bool   `json:"deleted_from_github"`
}

// record returns the manifest's record of artifact id.
func (m manifestView) record(id int64) (recordView, bool) {
	for _, r := range m.Artifacts {
		if r.ID == id {
			return r, true
		}
	}
	return recordView{}, false
}

// manifest reads the manifest of a run attempt; ok is false while there
// is none. Other errors fail the test.
func (h *harness) manifest(run ghsim.Run) (m manifestView, ok bool) {
	h.t.Helper()
	out, err := h.s.S3().GetObject(h.t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(manifestKey(run))})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return m, false
	}
	if err != nil {
		h.t.Fatalf("get %s: %v", manifestKey(run), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		h.t.Fatalf("read %s: %v", manifestKey(run), err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		h.t.Fatalf("decode %s: %v\n%s", manifestKey(run), err, b)
	}
	return m, true
}

// checkComplete checks that the manifest of a run attempt lists every
// artifact of the run archived and does not say it is incomplete.
func (h *harness) checkComplete(run ghsim.Run) manifestView {
	h.t.Helper()
	m, ok := h.manifest(run)
	if !ok {
		h.t.Fatalf("run %d attempt %d: no manifest", run.ID, run.Attempt)
	}
	if m.WorkflowRun.ID != run.ID || m.WorkflowRun.RunAttempt != run.Attempt {
		h.t.Errorf("manifest of run %d attempt %d names run %d attempt %d", run.ID, run.Attempt, m.WorkflowRun.ID, m.WorkflowRun.RunAttempt)
	}
	if m.Complete != nil && !*m.Complete {
		h.t.Errorf("run %d attempt %d: manifest says complete: false", run.ID, run.Attempt)
	}
	arts := h.artifacts(h.state, run.ID)
	if len(m.Artifacts) != len(arts) {
		h.t.Errorf("run %d attempt %d: manifest lists %d artifacts, the run has %d", run.ID, run.Attempt, len(m.Artifacts), len(arts))
	}
	for _, a := range arts {
		rec, ok := m.record(a.ID)
		switch {
		case !ok:
			h.t.Errorf("run %d attempt %d: manifest lacks artifact %d (%s)", run.ID, run.Attempt, a.ID, a.Name)
		case rec.Status != archive.StatusArchived:
			h.t.Errorf("run %d attempt %d: artifact %d (%s) is %q (%s), want archived", run.ID, run.Attempt, a.ID, a.Name, rec.Status, rec.Error)
		}
	}
	return m
}

// jobsInFlight is a worker's archiver_jobs_in_flight now (-1 if it cannot
// be scraped).
func jobsInFlight(w Worker) float64 {
	m, err := scrape(w.MetricsURL())
	if err != nil {
		return -1
	}
	return m.Get("archiver_jobs_in_flight")
}

// TestOverlappingAttempts delivers two attempts of one run at once ("Re-run
// failed jobs" makes attempt 2, which lists attempt 1's artifacts) to two
// workers, with one big, slow artifact: both attempts are archived with
// their own complete manifests, each artifact is in S3 once, and the big
// one is downloaded once: the second attempt waits for the first's copy.
func TestOverlappingAttempts(t *testing.T) {
	run := runSpec(firstRunID, artifact("big", 48*MiB), artifact("small", 1*MiB))
	run.Attempt = 2
	cfg := StackConfig{
		Scenario: scenario(run),
		Workers:  2,
		// One run at a time per worker: the two attempts go to the two
		// workers.
		WorkerEnv: map[string]string{"ARCHIVER_RUN_SLOTS": "1"},
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		latest := h.runs()[0]
		attempts := []ghsim.Run{attemptOf(latest, 1), attemptOf(latest, 2)}
		h.preparePayloads(attempts)
		big := h.artifactNamed(latest, "big")
		// 6 s per copy of the big artifact, so that the attempts overlap.
		h.sim.Inject(ghsim.RouteBlob, -1, ghsim.Throttle(8*MiB).ForArtifact(big.ID))
		start := time.Now()
		if err := h.deliverAll(attempts, 2, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		workers := h.s.Workers()
		h.eventually(30*time.Second, "both workers to hold an attempt at once", func() bool {
			return jobsInFlight(workers[0]) == 1 && jobsInFlight(workers[1]) == 1
		})
		h.waitManifests(attempts, 2*time.Minute)
		h.waitIdle(time.Minute)
		h.waitWorkersIdle(time.Minute)
		t.Logf("both attempts archived in %s", time.Since(start).Round(time.Millisecond))

		for _, a := range attempts {
			h.checkComplete(a)
		}
		served := h.sim.Stats().BlobBytesByArtifact[big.ID]
		t.Logf("the blob host served %.2f× the big artifact", float64(served)/float64(big.Size))
		// One copy, and some slack; two whole copies (each worker its
		// own, as before leases) are too many.
		if float64(served) > 1.5*float64(big.Size) {
			t.Errorf("the blob host served %d bytes of the big artifact (%d MiB): %.2f× its size, want at most 1.5×: the second attempt copied it again instead of waiting for the first", served, big.Size>>20, float64(served)/float64(big.Size))
		}
		h.checkInvariants(expectation{Runs: attempts})
	})
}

// TestRedeliveryTakeover lets a worker whose heartbeats are blocked hold a
// run past AckWait while it copies a slow artifact, so that JetStream
// redelivers the run to a second worker while the first still runs, with
// deletion at GitHub on: the second waits for the first's copy instead of
// making its own, the final manifest lists every artifact archived, and
// nothing is deleted at GitHub without a verified copy in a manifest.
func TestRedeliveryTakeover(t *testing.T) {
	cfg := StackConfig{
		Scenario: scenario(runSpec(firstRunID, artifact("big", 64*MiB), artifact("small", 1*MiB))),
		WorkerEnv: map[string]string{
			"ARCHIVER_DELETE_FROM_GITHUB": "true",
			// A lease shorter than the copy: it must be renewed.
			"ARCHIVER_LEASE_TTL": "6s",
		},
		PerWorkerEnv: []map[string]string{{
			// worker-1 never tells JetStream it is alive, and takes one
			// run at a time, so the redelivery goes to worker-2.
			"ARCHIVER_HEARTBEAT_INTERVAL": "1h",
			"ARCHIVER_RUN_SLOTS":          "1",
		}},
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		run := h.runs()[0]
		big := h.artifactNamed(run, "big")
		// 16 s for the big artifact: longer than AckWait (10 s).
		h.sim.Inject(ghsim.RouteBlob, -1, ghsim.Throttle(4*MiB).ForArtifact(big.ID))
		w1 := h.s.Workers()[0]
		h.deliverUntilAccepted(run, "", 30*time.Second)
		h.eventually(30*time.Second, w1.Name()+" to start copying the big artifact", func() bool {
			return h.sim.Stats().BlobBytesByArtifact[big.ID] > 0
		})
		w2 := h.s.StartWorker()
		h.eventually(40*time.Second, "the run to be redelivered to "+w2.Name()+" while "+w1.Name()+" still holds it", func() bool {
			return jobsInFlight(w1) == 1 && jobsInFlight(w2) == 1
		})
		redelivered := time.Now()
		h.waitManifests([]ghsim.Run{run}, 2*time.Minute)
		h.waitIdle(time.Minute)
		// worker-1's late ack empties the queue while worker-2 may still
		// work on the run.
		h.waitWorkersIdle(time.Minute)
		t.Logf("redelivered with %d MiB of the big artifact served; settled %s later", h.sim.Stats().BlobBytesByArtifact[big.ID]>>20, time.Since(redelivered).Round(time.Millisecond))

		m := h.checkComplete(run)
		// Every artifact deleted at GitHub has its verified copy in a
		// manifest.
		c := h.s.S3()
		for _, a := range h.sim.State().Artifacts {
			if a.RunID != run.ID || !a.Deleted {
				continue
			}
			rec, ok := m.record(a.ID)
			if !ok || rec.Status != archive.StatusArchived {
				t.Errorf("artifact %d (%s) was deleted at github, but the manifest has %+v", a.ID, a.Name, rec)
				continue
			}
			h.checkObject(c, prefix+"/"+rec.Key, a.Size, h.sim.SHA256(a), h.sim.SHA256(a))
		}
		served := h.sim.Stats().BlobBytesByArtifact[big.ID]
		if float64(served) > 1.5*float64(big.Size) {
			t.Errorf("the blob host served %d bytes of the big artifact (%d MiB): %.2f× its size; the second worker copied it again instead of waiting", served, big.Size>>20, float64(served)/float64(big.Size))
		}
		m2, err := scrape(w2.MetricsURL())
		if err != nil {
			t.Fatal(err)
		}
		if n := m2.Get("archiver_jobs_total", "outcome", "archived"); n != 1 {
			t.Errorf("%s settled the redelivered run as archived %v times, want 1", w2.Name(), n)
		}
		h.checkInvariants(expectation{Runs: []ghsim.Run{run}, DeleteFromGitHub: true})
	})
}

// TestOneBadArtifact archives runs that each hold a fine artifact and one
// that can never be archived: a digest that never matches (retryable, so
// dead-lettered after MaxDeliver), a malformed digest and a 403 "Resource
// not accessible by integration" (both permanent, dead-lettered at once).
// Each run is catalogued within its first delivery: a manifest that lists
// the fine artifact archived and the bad one failed, with its error and
// tries, and says complete: false. Every run then ends in the dead-letter
// stream with its error, and only after its manifest was written.
func TestOneBadArtifact(t *testing.T) {
	wrong := artifact("bad", 1*MiB)
	wrong.WrongDigest = true
	malformed := artifact("malformed", 1*MiB)
	malformed.MalformedDigest = true
	cfg := StackConfig{
		Scenario: scenario(
			runSpec(firstRunID, artifact("fine", 2*MiB), wrong),
			runSpec(firstRunID+1, artifact("fine", 2*MiB), malformed),
			runSpec(firstRunID+2, artifact("fine", 2*MiB), artifact("forbidden", 512*KiB)),
		),
		MaxDeliver: 2,
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		runs := h.runs()
		mismatchRun, malformedRun, forbiddenRun := runs[0], runs[1], runs[2]
		bad := map[int64]ghsim.Artifact{
			mismatchRun.ID:  h.artifactNamed(mismatchRun, "bad"),
			malformedRun.ID: h.artifactNamed(malformedRun, "malformed"),
			forbiddenRun.ID: h.artifactNamed(forbiddenRun, "forbidden"),
		}
		h.sim.Inject(ghsim.RouteZip, -1, ghsim.Forbidden().ForArtifact(bad[forbiddenRun.ID].ID))
		if err := h.deliverAll(runs, 3, 30*time.Second); err != nil {
			t.Fatal(err)
		}

		// Within one delivery: each manifest is there before any event is
		// delivered a second time (the first retry waits 5 s), and no run
		// is dead-lettered before its manifest is written.
		first := map[int64]manifestView{}
		h.eventually(30*time.Second, "a manifest of every run", func() bool {
			q, err := h.queue(t.Context())
			if err != nil {
				return false
			}
			for _, r := range runs {
				if _, ok := first[r.ID]; ok {
					continue
				}
				m, ok := h.manifest(r)
				for _, dl := range q.DLQ {
					if dl.RunID == r.ID && !ok {
						t.Fatalf("run %d was dead-lettered (%s: %s) before its manifest was written", r.ID, dl.Kind, dl.Error)
					}
				}
				if !ok {
					continue
				}
				if q, err := h.queue(t.Context()); err == nil && q.Delivered > uint64(len(runs)) {
					t.Errorf("run %d: manifest first seen after %d deliveries of %d events: not within the first delivery", r.ID, q.Delivered, len(runs))
				}
				first[r.ID] = m
			}
			return len(first) == len(runs)
		})
		for _, r := range runs {
			h.checkCatalogued(r, first[r.ID], bad[r.ID], "first")
		}

		// Every run ends in the dead-letter stream, with its error.
		var q queueState
		h.eventually(time.Minute, "three dead letters", func() bool {
			var err error
			q, err = h.queue(t.Context())
			return err == nil && q.DLQRecords >= len(runs)
		})
		want := map[int64]struct {
			kind string
			says []string // the error names one of these
		}{
			mismatchRun.ID:  {"max_deliveries", []string{"digest", "sha256", "checksum"}},
			malformedRun.ID: {"permanent", []string{"digest"}},
			forbiddenRun.ID: {"permanent", []string{"403", "not accessible"}},
		}
		got := map[int64]int{}
		for _, dl := range q.DLQ {
			got[dl.RunID]++
			w, ok := want[dl.RunID]
			if !ok {
				t.Errorf("unexpected dead letter of run %d attempt %d: %s: %s", dl.RunID, dl.Attempt, dl.Kind, dl.Error)
				continue
			}
			if dl.Kind != w.kind || !containsAny(strings.ToLower(dl.Error), w.says) {
				t.Errorf("run %d dead-lettered as %q with error %q; want %q naming one of %q", dl.RunID, dl.Kind, dl.Error, w.kind, w.says)
			}
		}
		for _, r := range runs {
			if got[r.ID] != 1 {
				t.Errorf("run %d has %d dead letters, want 1", r.ID, got[r.ID])
			}
		}
		t.Logf("dead letters: %v (%d MAX_DELIVERIES advisories)", q.DLQKinds, q.DLQAdvisory)

		// The last word on each run is still its catalogue.
		q = h.waitIdle(time.Minute)
		h.waitWorkersIdle(time.Minute)
		for _, r := range runs {
			m, ok := h.manifest(r)
			if !ok {
				t.Errorf("run %d: manifest gone", r.ID)
				continue
			}
			h.checkCatalogued(r, m, bad[r.ID], "final")
		}
		h.checkBadRunsStore(runs, bad)
		all := h.workerMetrics()
		if n := sumMetric(all, "archiver_jobs_total", "outcome", "dead_lettered"); n != float64(len(runs)) {
			t.Errorf("workers dead-lettered %v runs, want %d", n, len(runs))
		}
		if n := sumMetric(all, "archiver_jobs_total", "outcome", "handed_back"); n != 0 {
			t.Errorf("workers handed back %v runs", n)
		}
	})
}

// checkCatalogued checks the manifest of a run with one bad artifact: every
// other artifact archived and verified, the bad one failed with its error
// and tries, and "complete": false.
func (h *harness) checkCatalogued(run ghsim.Run, m manifestView, bad ghsim.Artifact, which string) {
	h.t.Helper()
	t := h.t
	if m.Complete == nil || *m.Complete {
		t.Errorf("run %d (%s manifest): complete = %v, want false", run.ID, which, fmtBoolPtr(m.Complete))
	}
	arts := h.artifacts(h.state, run.ID)
	if len(m.Artifacts) != len(arts) {
		t.Errorf("run %d (%s manifest): %d artifacts, the run has %d", run.ID, which, len(m.Artifacts), len(arts))
	}
	for _, a := range arts {
		rec, ok := m.record(a.ID)
		switch {
		case !ok:
			t.Errorf("run %d (%s manifest): artifact %d (%s) missing", run.ID, which, a.ID, a.Name)
		case a.ID == bad.ID:
			if rec.Status != archive.StatusFailed || rec.Error == "" || rec.Tries < 1 {
				t.Errorf("run %d (%s manifest): bad artifact %s is %q with error %q after %d tries; want failed, an error, tries >= 1", run.ID, which, a.Name, rec.Status, rec.Error, rec.Tries)
			}
		case rec.Status != archive.StatusArchived:
			t.Errorf("run %d (%s manifest): artifact %s is %q (%s), want archived", run.ID, which, a.Name, rec.Status, rec.Error)
		default:
			if want := h.sim.SHA256(a); rec.SHA256 != want || rec.Size != a.Size {
				t.Errorf("run %d (%s manifest): artifact %s sha256 %s size %d, want %s %d", run.ID, which, a.Name, rec.SHA256, rec.Size, want, a.Size)
			}
		}
	}
}

// checkBadRunsStore checks the bucket after TestOneBadArtifact: each fine
// artifact once and verified, nothing of a bad one, each manifest's
// catalogue file with its rows, nothing else but
// manifests, checksums and leases, and no upload left open.
func (h *harness) checkBadRunsStore(runs []ghsim.Run, bad map[int64]ghsim.Artifact) {
	h.t.Helper()
	t := h.t
	c := h.s.S3()
	keys, err := listKeys(t.Context(), c)
	if err != nil {
		t.Fatalf("list archive: %v", err)
	}
	allowed := map[string]bool{}
	var manifests []*archive.Manifest
	for _, run := range runs {
		l := archive.Layout{Owner: run.Owner, Repo: run.Repo, RunID: run.ID}
		allowed[prefix+"/"+l.ManifestKey(run.Attempt)] = true
		allowed[prefix+"/"+l.SumsKey(run.Attempt)] = true
		if m, err := archive.DecodeManifest(h.readObject(c, manifestKey(run))); err != nil {
			t.Errorf("run %d: %v", run.ID, err)
		} else {
			manifests = append(manifests, m)
			allowed[catalogKey(m)] = true
		}
		for _, a := range h.artifacts(h.state, run.ID) {
			inFolder := keysWithPrefix(keys, prefix+"/"+l.ArtifactPrefix(a.ID))
			if a.ID == bad[run.ID].ID {
				if len(inFolder) != 0 {
					t.Errorf("run %d: the bad artifact %s has objects %v", run.ID, a.Name, inFolder)
				}
				continue
			}
			if len(inFolder) != 1 {
				t.Errorf("run %d: artifact %s has objects %v, want exactly one", run.ID, a.Name, inFolder)
				continue
			}
			allowed[inFolder[0]] = true
			h.checkObject(c, inFolder[0], a.Size, h.sim.SHA256(a), h.sim.SHA256(a))
		}
	}
	for k := range keys {
		if !allowed[k] && !strings.HasPrefix(k, leasePrefix) {
			t.Errorf("unexpected object in the archive: %s", k)
		}
	}
	// Incomplete manifests are catalogued too: the rows say which failed.
	h.checkCatalog(c, manifests, expectation{})
	up, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Errorf("list multipart uploads: %v", err)
	} else {
		for _, u := range up.Uploads {
			t.Errorf("incomplete multipart upload left: %s", aws.ToString(u.Key))
		}
	}
}

// TestBlobStall stalls two downloads (the blob host sends their first
// bytes, then nothing for a minute): one of a small artifact, sent as one
// PUT, and one of a multipart artifact, in its second part. The worker
// gives up on each stalled stream after ARCHIVER_STALL_TIMEOUT, retries it
// as a transfer error (not a shutdown: nothing is handed back) and archives
// both long before the stalls would have ended.
func TestBlobStall(t *testing.T) {
	cfg := StackConfig{
		Scenario: scenario(runSpec(firstRunID, artifact("big", 24*MiB), artifact("small", 3*MiB), artifact("other", 512*KiB))),
		WorkerEnv: map[string]string{
			"ARCHIVER_STALL_TIMEOUT": "2s",
			"ARCHIVER_PART_SIZE":     fmt.Sprint(5 * MiB),
		},
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		run := h.runs()[0]
		big, small := h.artifactNamed(run, "big"), h.artifactNamed(run, "small")
		h.sim.Inject(ghsim.RouteBlob, 1, ghsim.Stall(7*MiB, time.Minute).ForArtifact(big.ID))
		h.sim.Inject(ghsim.RouteBlob, 1, ghsim.Stall(1*MiB, time.Minute).ForArtifact(small.ID))
		start := time.Now()
		h.deliverUntilAccepted(run, "", 30*time.Second)
		// Well before the stalls' minute is over.
		h.waitManifests([]ghsim.Run{run}, 30*time.Second)
		t.Logf("archived %s after the delivery", time.Since(start).Round(time.Millisecond))
		h.waitIdle(time.Minute)
		h.waitWorkersIdle(time.Minute)

		h.checkComplete(run)
		st := h.sim.Stats()
		for _, a := range []ghsim.Artifact{big, small} {
			if n := st.BlobRequestsByArtifact[a.ID]; n < 2 {
				t.Errorf("the blob host saw %d requests for the stalled artifact %s, want a retry after the stall", n, a.Name)
			}
		}
		all := h.workerMetrics()
		if n := sumMetric(all, "archiver_jobs_total", "outcome", "handed_back"); n != 0 {
			t.Errorf("workers handed back %v runs: a stall was taken for a shutdown", n)
		}
		stalls, reasons := 0.0, map[string]float64{}
		for _, m := range all {
			for series, v := range m {
				if strings.HasPrefix(series, "archiver_artifact_failures_total{") && v > 0 {
					reasons[series] += v
					if strings.Contains(series, "stall") {
						stalls += v
					}
				}
			}
		}
		if stalls < 2 {
			t.Errorf("archiver_artifact_failures_total counts %v stalls, want one per stalled download (2); failures counted: %v", stalls, reasons)
		}
		h.checkInvariants(expectation{Runs: []ghsim.Run{run}})
	})
}

// containsAny reports whether s contains one of subs.
func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func fmtBoolPtr(b *bool) string {
	if b == nil {
		return "absent"
	}
	return fmt.Sprint(*b)
}
