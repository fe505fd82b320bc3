package archive_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestArchiveRunEndToEnd is the main scenario: a run with 250
// artifacts (3 pages) including an expired one, a non-zip one, one without
// digest, one whose reported size is the uncompressed size, same-name
// artifacts, and a large one whose stream is reset at 70%.
func TestArchiveRunEndToEnd(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "octo-org", "octo.repo")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{Attempt: 1, Name: "CI"})
	expired := map[int64]bool{}
	var raw, noDigest, legacy, big ghsim.Artifact
	for i := range 245 {
		e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "dist-" + string(rune('a'+i%26)), Size: int64(1000 + i)})
	}
	exp := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "old", Size: 10, Expired: true})
	expired[exp.ID] = true
	raw = e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "report", Raw: true, FileName: "report.html", Size: 4096})
	noDigest = e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "legacy-nodigest", NoDigest: true, Size: 7 * archivetest.MiB})
	legacy = e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "../../etc/passwd", Size: 2000, ReportedSize: 999999})
	big = e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "big", Size: 40 * archivetest.MiB})

	// The first blob request of the big artifact breaks at 70%.
	resetAt := int64(float64(big.Size) * 0.7)
	injectForArtifact(t, e.Sim, big.ID, ghsim.ResetAfter(resetAt))

	ev := archivetest.Event(repo, run)
	res, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if err != nil {
		t.Fatalf("ArchiveRun: %v", err)
	}
	if len(res.Manifest.Artifacts) != 250 {
		t.Fatalf("manifest has %d artifacts, want 250", len(res.Manifest.Artifacts))
	}
	if got := e.Sim.Stats().Count(ghsim.RouteList, 200); got < 3 {
		t.Errorf("listed %d pages, want >= 3", got)
	}
	m := e.Manifest(t, repo.Owner, repo.Name, run.ID, 1)
	e.CheckArchived(t, m, e.RunArtifacts(repo.Owner, repo.Name, run.ID), expired)

	byID := map[int64]archive.ArtifactRecord{}
	for _, r := range m.Artifacts {
		byID[r.ID] = r
	}
	if r := byID[raw.ID]; r.ContentType != "application/octet-stream" || !strings.HasSuffix(r.Key, "/report.html") {
		t.Errorf("raw artifact: content type %q key %q", r.ContentType, r.Key)
	}
	if r := byID[noDigest.ID]; !r.DigestMissing || r.GitHubDigest != nil || r.SHA256 == "" {
		t.Errorf("no-digest artifact: missing %v digest %v sha %q", r.DigestMissing, r.GitHubDigest, r.SHA256)
	}
	if r := byID[legacy.ID]; r.Size != 2000 || r.SizeInBytes != 999999 || strings.Contains(r.Key, "..") {
		t.Errorf("legacy artifact: size %d size_in_bytes %d key %q", r.Size, r.SizeInBytes, r.Key)
	}

	// The reset big artifact resumed at a part boundary: one Range request
	// starting at a multiple of the part size, and far less than the whole
	// body downloaded again.
	st := e.Sim.Stats()
	var ranges []ghsim.RangeRequest
	for _, r := range st.Ranges {
		if r.ArtifactID == big.ID {
			ranges = append(ranges, r)
		}
	}
	if len(ranges) != 1 {
		t.Fatalf("big artifact ranges %+v: want exactly one resume", ranges)
	}
	if ranges[0].Start == 0 || ranges[0].Start%archivetest.PartSize != 0 || ranges[0].Start > resetAt {
		t.Errorf("big artifact ranges %+v: want one resume at a part boundary <= %d", ranges, resetAt)
	}
	// The server wrote resetAt bytes, then the rest from the resume point.
	// A reset also discards what sat unread in the client's socket buffer
	// (up to a few MiB on loopback), so the resume point can be a part
	// earlier than the last byte sent; a restart would fetch resetAt again.
	served := st.BlobBytesByArtifact[big.ID]
	redownloaded := served - big.Size
	if redownloaded != resetAt-ranges[0].Start {
		t.Errorf("big artifact: served %d, want %d + %d", served, resetAt, big.Size-ranges[0].Start)
	}
	if redownloaded <= 0 || redownloaded > archivetest.PartSize+8*archivetest.MiB {
		t.Errorf("big artifact: re-downloaded %d bytes, want at most a part plus a socket buffer (restart: %d)", redownloaded, resetAt)
	}
	t.Logf("reset at %d, resumed at %d: re-downloaded %d of %d bytes", resetAt, ranges[0].Start, redownloaded, big.Size)
	if st.AuthRejected != 0 {
		t.Errorf("%d blob requests carried an Authorization header", st.AuthRejected)
	}
	sums := string(e.Read(t, archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}.SumsKey(1)))
	if n := strings.Count(sums, "\n"); n != 249 {
		t.Errorf("SHA256SUMS has %d lines, want 249 (all but the expired one)", n)
	}
}

// TestRedeliveryWritesNothing: the same event again ends at the manifest;
// with the manifest gone, every artifact is found verified in S3 and
// nothing is downloaded or written again.
func TestRedeliveryWritesNothing(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	for i := range 3 {
		e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(100 + i)})
	}
	e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "nd", Size: 6 * archivetest.MiB, NoDigest: true})
	e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "big", Size: 11 * archivetest.MiB})
	ev := archivetest.Event(repo, run)
	first, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if err != nil {
		t.Fatal(err)
	}
	served := e.Sim.Stats().BlobBytes

	again, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if err != nil || !again.AlreadyComplete {
		t.Fatalf("second run: complete=%v err=%v, want already complete", again.AlreadyComplete, err)
	}

	// Without the manifest (a crash before it was written), the artifacts
	// are verified in S3 and skipped.
	l := archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}
	e.Delete(t, l.ManifestKey(1))
	third, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if err != nil || third.AlreadyComplete {
		t.Fatalf("third run: complete=%v err=%v", third.AlreadyComplete, err)
	}
	if got := e.Sim.Stats().BlobBytes; got != served {
		t.Errorf("redelivery downloaded %d more bytes", got-served)
	}
	for i, r := range third.Manifest.Artifacts {
		f := first.Manifest.Artifacts[i]
		if r.ETag != f.ETag || r.SHA256 != f.SHA256 || r.Key != f.Key {
			t.Errorf("artifact %d changed on redelivery: %+v vs %+v", r.ID, r, f)
		}
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), e.RunArtifacts(repo.Owner, repo.Name, run.ID), nil)
}

// TestLaterAttemptSkipsEarlierArtifacts: attempt 2 lists attempt 1's
// artifacts too (same names); they are skipped, the new ones archived, and
// same-name artifacts never overwrite each other.
func TestLaterAttemptSkipsEarlierArtifacts(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{Attempt: 1})
	a1 := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 300})
	if _, err := e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false); err != nil {
		t.Fatal(err)
	}
	a2 := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 400})
	run.Attempt = 2
	before := e.Sim.Stats().BlobBytesByArtifact[a1.ID]
	res, err := e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Sim.Stats().BlobBytesByArtifact[a1.ID]; got != before {
		t.Errorf("attempt 2 downloaded attempt 1's artifact again (%d bytes)", got-before)
	}
	if len(res.Manifest.Artifacts) != 2 || res.Manifest.Artifacts[0].Key == res.Manifest.Artifacts[1].Key {
		t.Fatalf("attempt 2 manifest: %+v", res.Manifest.Artifacts)
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 2), []int64{a1.ID, a2.ID}, nil)
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{a1.ID}, nil)
}

// TestDigestMismatchIsNeverArchived: an artifact whose bytes do not match
// GitHub's digest fails (single PUT and multipart), leaves no object and no
// open upload. The first delivery already writes the manifest: the good
// artifact archived, the bad ones failed with their error and tries, and
// "complete": false; the next delivery adds its tries.
func TestDigestMismatchIsNeverArchived(t *testing.T) {
	e := archivetest.New(t, func(c *archive.Config) { c.Attempts = 2 })
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	good := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "good", Size: 500})
	small := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "bad-small", Size: 500, WrongDigest: true})
	large := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "bad-large", Size: 12 * archivetest.MiB, WrongDigest: true})
	ev := archivetest.Event(repo, run)
	l := archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}

	res, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if !errors.Is(err, archive.ErrIncomplete) {
		t.Fatalf("ArchiveRun = %v, want ErrIncomplete", err)
	}
	if o, _ := archive.Classify(err); o != archive.OutcomeRetry {
		t.Errorf("digest mismatch classified %v, want retryable", o)
	}
	first := e.Manifest(t, repo.Owner, repo.Name, run.ID, 1)
	if first.Complete || res.Manifest == nil || res.Manifest.Complete {
		t.Errorf("manifest after a delivery with failures: complete=%v, want false", first.Complete)
	}
	for _, r := range first.Artifacts {
		if r.Status == archive.StatusFailed && r.Tries != 2 {
			t.Errorf("artifact %d: tries %d after one delivery, want 2 (Attempts)", r.ID, r.Tries)
		}
	}

	res, err = e.Arch.ArchiveRun(t.Context(), ev, true)
	if !errors.Is(err, archive.ErrIncomplete) || res.Manifest == nil {
		t.Fatalf("final ArchiveRun = %v, want ErrIncomplete with a manifest", err)
	}
	status := map[int64]string{}
	for _, r := range e.Manifest(t, repo.Owner, repo.Name, run.ID, 1).Artifacts {
		status[r.ID] = r.Status
		if r.Status == archive.StatusFailed && (r.Error == "" || r.SHA256 != "" || r.Tries != 4) {
			t.Errorf("failed artifact %d: error %q sha %q tries %d (want 4 over two deliveries)", r.ID, r.Error, r.SHA256, r.Tries)
		}
	}
	if status[good.ID] != archive.StatusArchived || status[small.ID] != archive.StatusFailed || status[large.ID] != archive.StatusFailed {
		t.Errorf("statuses %v", status)
	}
	for _, id := range []int64{small.ID, large.ID} {
		if objs, err := e.Store.List(t.Context(), l.ArtifactPrefix(id)); err != nil || len(objs) != 0 {
			t.Errorf("artifact %d: objects %v err %v, want none", id, objs, err)
		}
	}
	if ups := e.OpenUploads(t); len(ups) != 0 {
		t.Errorf("open multipart uploads left: %v", ups)
	}
	if sums := string(e.Read(t, l.SumsKey(1))); strings.Count(sums, "\n") != 1 {
		t.Errorf("SHA256SUMS lists unverified artifacts:\n%s", sums)
	}
}

// TestDeleteFromGitHub: with deletion on, artifacts are deleted only after
// the manifest is written, at least a second apart, and the manifest says
// so; off (the default) and dry-run delete nothing.
func TestDeleteFromGitHub(t *testing.T) {
	for _, tc := range []struct {
		name           string
		del, dry, want bool
	}{
		{"off", false, false, false},
		{"dry-run", true, true, false},
		{"on", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := archivetest.New(t, func(c *archive.Config) { c.DeleteFromGitHub, c.DeleteDryRun = tc.del, tc.dry })
			repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
			run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
			var ids []int64
			for i := range 3 {
				ids = append(ids, e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(10 + i)}).ID)
			}
			exp := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "x", Size: 1, Expired: true})
			if _, err := e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false); err != nil {
				t.Fatal(err)
			}
			m := e.Manifest(t, repo.Owner, repo.Name, run.ID, 1)
			e.CheckArchived(t, m, append(ids, exp.ID), map[int64]bool{exp.ID: true})
			for _, id := range ids {
				if e.Sim.Deleted(id) != tc.want {
					t.Errorf("artifact %d deleted=%v, want %v", id, e.Sim.Deleted(id), tc.want)
				}
			}
			for _, r := range m.Artifacts {
				if r.Status == archive.StatusArchived && r.DeletedFromGitHub != tc.want {
					t.Errorf("manifest artifact %d deleted_from_github=%v", r.ID, r.DeletedFromGitHub)
				}
			}
			dels := e.Sim.Stats().Deletes
			if !tc.want {
				if len(dels) != 0 {
					t.Errorf("%d deletes sent", len(dels))
				}
				return
			}
			if len(dels) != 3 {
				t.Fatalf("%d deletes, want 3 (never the expired one)", len(dels))
			}
			for i := 1; i < len(dels); i++ {
				if gap := dels[i].Wall.Sub(dels[i-1].Wall); gap < 990*time.Millisecond {
					t.Errorf("deletes %d and %d only %s apart", i-1, i, gap)
				}
			}
			// Redelivery after deletion: complete, nothing else deleted.
			res, err := e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false)
			if err != nil || !res.AlreadyComplete {
				t.Errorf("redelivery: complete=%v err=%v", res.AlreadyComplete, err)
			}
		})
	}
}

// TestRateLimitsSlowDownNotFail: secondary limits (403 and 429 with
// Retry-After) and 5xx on list and download are waited out within the job.
func TestRateLimitsSlowDownNotFail(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	for i := range 4 {
		e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(100 + i)})
	}
	e.Sim.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(429, time.Second))
	e.Sim.Inject(ghsim.RouteZip, 1, ghsim.SecondaryLimit(403, time.Second))
	e.Sim.Inject(ghsim.RouteZip, 1, ghsim.ServerError(502))
	e.Sim.Inject(ghsim.RouteBlob, 1, ghsim.ServerError(500))
	e.Sim.Inject(ghsim.RouteZip, 1, ghsim.ExpiredURL())
	res, err := e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false)
	if err != nil {
		t.Fatalf("ArchiveRun: %v", err)
	}
	e.CheckArchived(t, res.Manifest, e.RunArtifacts(repo.Owner, repo.Name, run.ID), nil)
	st := e.Sim.Stats()
	if st.Count(ghsim.RouteList, 429) != 1 || st.Count(ghsim.RouteZip, 403) != 1 || st.Count(ghsim.RouteZip, 502) != 1 {
		t.Errorf("faults not all hit: %+v", st.Requests)
	}
}

// TestPrimaryRateLimitHandsBack: an exhausted primary budget whose reset is
// far away is not slept through: the job returns a RetryAfterError at the
// reset time.
func TestPrimaryRateLimitHandsBack(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 10})
	reset := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	// A first call mints the installation token; then exhaust its budget.
	if _, err := e.Clients.ForInstallation(archivetest.Installation); err != nil {
		t.Fatal(err)
	}
	e.Sim.SetInstallationRateLimit(archivetest.Installation, 0, reset)
	_, err := e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false)
	var ra *archive.RetryAfterError
	if !errors.As(err, &ra) || !ra.At.Equal(reset) {
		t.Fatalf("ArchiveRun = %v, want RetryAfterError at %s", err, reset)
	}
	if o, _ := archive.Classify(err); o != archive.OutcomeRetryAfter {
		t.Errorf("Classify = %v", o)
	}
}

// TestEmptyListIsRetriedThenRecorded: an empty list soon after the event is
// handed back for later; once EmptyListWait has passed (or on the final
// delivery) the run is recorded with no artifacts.
func TestEmptyListIsRetriedThenRecorded(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	ev := archivetest.Event(repo, run)
	_, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	var ra *archive.RetryAfterError
	if !errors.As(err, &ra) || time.Until(ra.At) <= 0 || time.Until(ra.At) > time.Minute {
		t.Fatalf("first empty list = %v, want a retry within EmptyListWait", err)
	}
	// The artifact shows up late, as actions/upload-artifact#400 describes.
	late := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "late", Size: 42})
	res, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if err != nil || len(res.Manifest.Artifacts) != 1 || res.Manifest.Artifacts[0].ID != late.ID {
		t.Fatalf("after the artifact appeared: %v %+v", err, res.Manifest)
	}

	run2 := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	ev2 := archivetest.Event(repo, run2)
	ev2.ReceivedAt = time.Now().Add(-2 * time.Minute)
	res, err = e.Arch.ArchiveRun(t.Context(), ev2, false)
	if err != nil || res.Manifest == nil || len(res.Manifest.Artifacts) != 0 {
		t.Fatalf("old empty run: %v, want a manifest with no artifacts", err)
	}
}

// TestGoneAtGitHubIsExpired: an artifact deleted between list and download
// (404/410) is recorded as expired, not as an error.
func TestGoneAtGitHubIsExpired(t *testing.T) {
	e := archivetest.New(t, nil)
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	a := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 10})
	b := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "b", Size: 10})
	// Expire b after listing: its download answers 410.
	lister := &expireAfterList{GitHub: mustGH(t, e), sim: e.Sim, id: b.ID}
	e.Config.GitHub = installationsFunc(func(int64) (archive.GitHub, error) { return lister, nil })
	arch, err := archive.New(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	res, err := arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false)
	if err != nil {
		t.Fatal(err)
	}
	e.CheckArchived(t, res.Manifest, []int64{a.ID, b.ID}, map[int64]bool{b.ID: true})
}

type installationsFunc func(int64) (archive.GitHub, error)

func (f installationsFunc) ForInstallation(id int64) (archive.GitHub, error) { return f(id) }

type expireAfterList struct {
	archive.GitHub
	sim *ghsim.Server
	id  int64
}

func (x *expireAfterList) ListRunArtifacts(ctx context.Context, owner, repo string, runID int64) ([]archive.RemoteArtifact, error) {
	arts, err := x.GitHub.ListRunArtifacts(ctx, owner, repo, runID)
	x.sim.Expire(x.id)
	return arts, err
}

func mustGH(t *testing.T, e *archivetest.Env) archive.GitHub {
	gh, err := e.Config.GitHub.ForInstallation(archivetest.Installation)
	if err != nil {
		t.Fatal(err)
	}
	return gh
}

// TestLowBudgetIsPaced: below the low-water mark the client spreads its
// remaining requests until the reset instead of failing.
func TestLowBudgetIsPaced(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := archivetest.New(t, nil)
	gh, err := ghclient.New(ghclient.Config{APIURL: e.Sim.URL(), AppID: archivetest.AppID, PrivateKey: e.AppKey, Metrics: ghclient.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	e.Config.GitHub = gh
	arch, err := archive.New(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	for i := range 3 {
		e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(10 + i)})
	}
	if _, err := gh.ForInstallation(archivetest.Installation); err != nil {
		t.Fatal(err)
	}
	e.Sim.SetInstallationRateLimit(archivetest.Installation, 20, time.Now().Add(2*time.Second))
	res, err := arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false)
	if err != nil {
		t.Fatal(err)
	}
	e.CheckArchived(t, res.Manifest, e.RunArtifacts(repo.Owner, repo.Name, run.ID), nil)
	paced := testutil.ToFloat64(counterByName(t, reg, "archiver_github_paced_requests_total"))
	if paced < 3 {
		t.Errorf("paced %v requests, want every request after the first low-budget response", paced)
	}
}

func counterByName(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() == name {
			g.Set(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return g
}

// TestManifestNeverLosesArchivedArtifacts: artifacts deleted at GitHub
// after the manifest was written, but before the manifest recorded the
// deletion (an S3 outage at that moment), stay in the manifest on the retry.
func TestManifestNeverLosesArchivedArtifacts(t *testing.T) {
	e := archivetest.New(t, func(c *archive.Config) { c.DeleteFromGitHub = true })
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	a := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 100})
	b := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "b", Size: 200})
	ev := archivetest.Event(repo, run)
	first, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if err != nil {
		t.Fatal(err)
	}
	// Put back the manifest as it was before the deletions were recorded.
	l := archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}
	stale := *first.Manifest
	stale.Artifacts = append([]archive.ArtifactRecord(nil), first.Manifest.Artifacts...)
	for i := range stale.Artifacts {
		stale.Artifacts[i].DeletedFromGitHub = false
	}
	body, err := stale.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Put(t.Context(), l.ManifestKey(1), bytes.NewReader(body), int64(len(body)), archive.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if !e.Sim.Deleted(a.ID) || !e.Sim.Deleted(b.ID) {
		t.Fatal("artifacts were not deleted at GitHub")
	}
	res, err := e.Arch.ArchiveRun(t.Context(), ev, false)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	m := e.Manifest(t, repo.Owner, repo.Name, run.ID, 1)
	if len(m.Artifacts) != 2 || len(res.Manifest.Artifacts) != 2 {
		t.Fatalf("manifest lists %d artifacts after the retry, want 2", len(m.Artifacts))
	}
	for _, r := range m.Artifacts {
		if r.Status != archive.StatusArchived || !r.DeletedFromGitHub || r.Key == "" {
			t.Errorf("artifact %d: %+v", r.ID, r)
		}
	}
	e.CheckArchived(t, m, []int64{a.ID, b.ID}, nil)
	if n := len(e.Sim.Stats().Deletes); n != 2 {
		t.Errorf("%d deletes sent, want 2", n)
	}
}
