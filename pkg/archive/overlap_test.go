package archive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

// second builds another archiver (another worker) on e's store and
// simulator.
func second(t *testing.T, e *archivetest.Env, mod func(*archive.Config)) *archive.Archiver {
	t.Helper()
	cfg := e.Config
	cfg.Holder, cfg.Metrics = "", nil
	if mod != nil {
		mod(&cfg)
	}
	a, err := archive.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTwoAttemptsOneTransfer: attempt 2 of a run ("re-run failed jobs")
// lists attempt 1's artifacts and is handled by a second worker while the
// first is still streaming the big one. The second waits for that transfer
// instead of starting its own: the blob host serves the big artifact once,
// there is one object, and both manifests record it archived.
func TestTwoAttemptsOneTransfer(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	big := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "big", Size: 24 * archivetest.MiB})
	small := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "small", Size: 4096})
	// About 4 s for the first transfer.
	e.Sim.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(6*archivetest.MiB).ForArtifact(big.ID))
	ev1 := archivetest.Event(repo, run)
	ev2 := archivetest.Event(repo, run)
	ev2.WorkflowRun.RunAttempt = 2

	var wg sync.WaitGroup
	var err1, err2 error
	wg.Go(func() { _, err1 = e.Arch.ArchiveRun(t.Context(), ev1, false) })
	testserver.Eventually(t, 30*time.Second, "the first transfer to start", func() bool {
		return e.Sim.Stats().BlobBytesByArtifact[big.ID] > 0
	})
	other := second(t, e, nil)
	wg.Go(func() { _, err2 = other.ArchiveRun(t.Context(), ev2, false) })
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("ArchiveRun: attempt 1: %v; attempt 2: %v", err1, err2)
	}
	st := e.Sim.Stats()
	if served := st.BlobBytesByArtifact[big.ID]; served != big.Size {
		t.Errorf("blob host served %d bytes of the big artifact (%.2f× its size), want one transfer", served, float64(served)/float64(big.Size))
	}
	if n := st.BlobRequestsByArtifact[big.ID]; n != 1 {
		t.Errorf("%d blob requests for the big artifact, want 1", n)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		m := e.Manifest(t, repo.Owner, repo.Name, run.ID, attempt)
		if !m.Complete {
			t.Errorf("attempt %d manifest not complete", attempt)
		}
		e.CheckArchived(t, m, []int64{big.ID, small.ID}, nil)
	}
	l := archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}
	if objs, err := e.Store.List(t.Context(), l.ArtifactPrefix(big.ID)); err != nil || len(objs) != 1 {
		t.Errorf("objects of the big artifact: %v, %v; want 1", objs, err)
	}
	if ups := e.OpenUploads(t); len(ups) != 0 {
		t.Errorf("open multipart uploads: %v", ups)
	}
}

// listOnly narrows a GitHub client's listing to some artifacts, as a
// worker with an older view of the run would see it.
type listOnly struct {
	archive.GitHub
	ids map[int64]bool
}

func (l listOnly) ListRunArtifacts(ctx context.Context, owner, repo string, runID int64) ([]archive.RemoteArtifact, error) {
	all, err := l.GitHub.ListRunArtifacts(ctx, owner, repo, runID)
	var out []archive.RemoteArtifact
	for _, a := range all {
		if l.ids[a.ID] {
			out = append(out, a)
		}
	}
	return out, err
}

type installations struct {
	archive.Installations
	ids map[int64]bool
}

func (i installations) ForInstallation(id int64) (archive.GitHub, error) {
	gh, err := i.Installations.ForInstallation(id)
	return listOnly{GitHub: gh, ids: i.ids}, err
}

// TestConcurrentManifestWritesMerge: four workers commit the same attempt's
// manifest at once, each with a different artifact. Conditional writes
// merge them: the manifest ends with all four, none lost to an overwrite.
func TestConcurrentManifestWritesMerge(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	var ids []int64
	for i := range 4 {
		a := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a" + string(rune('0'+i)), Size: 1000})
		ids = append(ids, a.ID)
	}
	ev := archivetest.Event(repo, run)
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		arch := second(t, e, func(c *archive.Config) {
			c.GitHub = installations{Installations: e.Clients, ids: map[int64]bool{id: true}}
			// Re-listing would show the same single artifact.
		})
		wg.Go(func() { _, errs[i] = arch.ArchiveRun(t.Context(), ev, false) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), ids, nil)
}

// TestLateArtifactIsArchived: an artifact that appears in the run's listing
// after the worker listed it (actions/upload-artifact #400) is picked up by
// the listing just before the manifest.
func TestLateArtifactIsArchived(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	first := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "first", Size: 4 * archivetest.MiB})
	e.Sim.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(2*archivetest.MiB).ForArtifact(first.ID))
	var res archive.RunResult
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false)
	}()
	testserver.Eventually(t, 30*time.Second, "the first transfer to start", func() bool {
		return e.Sim.Stats().BlobBytesByArtifact[first.ID] > 0
	})
	late := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "late", Size: 1000})
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Artifacts) != 2 {
		t.Fatalf("manifest lists %d artifacts, want 2 (the late one too)", len(res.Manifest.Artifacts))
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{first.ID, late.ID}, nil)
}

// TestLateArtifactReopensCompleteManifest: a redelivery (or a backfill) of
// a run whose manifest is complete archives an artifact that GitHub lists
// but the manifest lacks.
func TestLateArtifactReopensCompleteManifest(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	first := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "first", Size: 1000})
	ev := archivetest.Event(repo, run)
	if _, err := e.Arch.ArchiveRun(t.Context(), ev, false); err != nil {
		t.Fatal(err)
	}
	late := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "late", Size: 1000})
	res, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if err != nil || res.AlreadyComplete {
		t.Fatalf("redelivery: %+v, %v; want the manifest reopened", res, err)
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{first.ID, late.ID}, nil)
	// With nothing new, a redelivery is a no-op again.
	if res, err := e.Arch.ArchiveRun(t.Context(), ev, false); err != nil || !res.AlreadyComplete {
		t.Errorf("second redelivery: %+v, %v; want already complete", res, err)
	}
}

// rateLimited answers every download URL request with a rate limit whose
// retry time is already past (clock skew, Retry-After: 0).
type rateLimited struct {
	archive.GitHub
	calls *atomic.Int32
}

func (r rateLimited) DownloadURL(ctx context.Context, owner, repo string, id int64) (string, error) {
	r.calls.Add(1)
	return "", &archive.RetryAfterError{At: time.Now().Add(-time.Hour), Err: errors.New("secondary rate limit")}
}

type rateLimitedInstallations struct {
	archive.Installations
	calls *atomic.Int32
}

func (i rateLimitedInstallations) ForInstallation(id int64) (archive.GitHub, error) {
	gh, err := i.Installations.ForInstallation(id)
	return rateLimited{GitHub: gh, calls: i.calls}, err
}

// TestPastRetryTimeIsBounded: a rate limit whose retry time is at or before
// now is waited out (at least a second each time) a bounded number of
// times, then the artifact is recorded failed and the run handed back:
// never an immediate, endless retry.
func TestPastRetryTimeIsBounded(t *testing.T) {
	var calls atomic.Int32
	e := archivetest.New(t, nil)
	arch := second(t, e, func(c *archive.Config) {
		c.GitHub = rateLimitedInstallations{Installations: e.Clients, calls: &calls}
	})
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	a := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 1000})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	res, err := arch.ArchiveRun(ctx, archivetest.Event(repo, run), false)
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("ArchiveRun still retrying after a minute (%d download URL requests)", calls.Load())
	}
	if o, _ := archive.Classify(err); o != archive.OutcomeRetryAfter || !errors.Is(err, archive.ErrIncomplete) {
		t.Errorf("ArchiveRun = %v (%v), want an incomplete run to retry later", err, o)
	}
	n := int(calls.Load())
	if n < 2 || n > 10 {
		t.Errorf("%d download URL requests, want a few bounded retries", n)
	}
	if elapsed < time.Duration(n-1)*time.Second {
		t.Errorf("%d requests in %s: retries did not wait at least a second", n, elapsed)
	}
	if res.Manifest == nil || len(res.Manifest.Artifacts) != 1 || res.Manifest.Artifacts[0].ID != a.ID || res.Manifest.Artifacts[0].Status != archive.StatusFailed {
		t.Errorf("manifest %+v, want the artifact recorded failed", res.Manifest)
	}
}

// TestStalledDownloadIsRetried: a blob host that stops sending mid-body is
// a transient transfer error, retried with backoff within the job.
func TestStalledDownloadIsRetried(t *testing.T) {
	e := archivetest.New(t, nil)
	arch := second(t, e, func(c *archive.Config) {
		c.Downloader = ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true, StallTimeout: time.Second})
	})
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	a := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 2 * archivetest.MiB})
	e.Sim.Inject(ghsim.RouteBlob, 1, ghsim.Stall(archivetest.MiB, time.Minute).ForArtifact(a.ID))
	if _, err := arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false); err != nil {
		t.Fatalf("ArchiveRun after a stall: %v", err)
	}
	if n := e.Sim.Stats().BlobRequestsByArtifact[a.ID]; n != 2 {
		t.Errorf("%d blob requests, want 2 (the stalled one and the retry)", n)
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{a.ID}, nil)
}

// putLease writes a lease object as another worker would.
func putLease(t *testing.T, e *archivetest.Env, artifactID int64, holder string, expires time.Time) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"holder": holder, "token": "t-" + holder, "artifact_id": artifactID, "expires": expires})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Put(t.Context(), archive.LeaseKey(artifactID), bytes.NewReader(b), int64(len(b)), archive.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCrashedHoldersLeaseIsTakenOver: a lease left by a crashed worker
// blocks the artifact only until it expires; then the next worker takes it
// over (a conditional write) and archives the artifact.
func TestCrashedHoldersLeaseIsTakenOver(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	a := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 1000})
	putLease(t, e, a.ID, "crashed-worker", time.Now().Add(3*time.Second))
	if _, err := e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false); err != nil {
		t.Fatal(err)
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{a.ID}, nil)
	if n := e.Sim.Stats().BlobRequestsByArtifact[a.ID]; n != 1 {
		t.Errorf("%d blob requests, want 1", n)
	}
}

// TestLostLeaseStopsTransfer: when another worker takes the lease over
// (here: overwrites it, as after a missed renewal), the holder's next
// renewal fails, it stops its transfer and defers to the new holder; when
// that one goes away without archiving, the artifact is taken back and
// archived.
func TestLostLeaseStopsTransfer(t *testing.T) {
	e := archivetest.New(t, func(c *archive.Config) { c.LeaseTTL = 3 * time.Second })
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	a := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 12 * archivetest.MiB})
	e.Sim.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(archivetest.MiB).ForArtifact(a.ID))
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err = e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false)
	}()
	testserver.Eventually(t, 30*time.Second, "the transfer to start", func() bool {
		return e.Sim.Stats().BlobBytesByArtifact[a.ID] > 0
	})
	putLease(t, e, a.ID, "thief", time.Now().Add(4*time.Second))
	<-done
	if err != nil {
		t.Fatal(err)
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{a.ID}, nil)
	if n := e.Sim.Stats().BlobRequestsByArtifact[a.ID]; n < 2 {
		t.Errorf("%d blob requests, want the transfer stopped and started again", n)
	}
	if ups := e.OpenUploads(t); len(ups) != 0 {
		t.Errorf("open multipart uploads: %v", ups)
	}
}
