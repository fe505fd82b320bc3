package archive_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
	"github.com/artifact-archiver/artifact-archiver/pkg/testserver"
)

const (
	mib          = 1 << 20
	testPartSize = 5 * mib
	appID        = 4242
	installation = 77
)

// env is one archiver wired to a GitHub simulator (App auth) and a real
// MinIO bucket.
type env struct {
	sim   *ghsim.Server
	store *s3store.Store
	arch  *archive.Archiver
	cfg   archive.Config
}

func setup(t *testing.T, mod func(*archive.Config)) *env {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ghsim.New(ghsim.Options{AppID: appID, AppPrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	minio := testserver.MinIO(t)
	bucket := minio.NewBucket(t, "archive")
	store, err := s3store.New(t.Context(), s3store.Config{Bucket: bucket, Prefix: "gha", AWS: minio.AWSConfig(), ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	gh, err := ghclient.New(ghclient.Config{APIURL: sim.URL(), AppID: appID, PrivateKey: pemKey, MutationInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := archive.Config{
		Store:         store,
		GitHub:        gh,
		Downloader:    ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true}),
		Concurrency:   4,
		PartSize:      testPartSize,
		EmptyListWait: time.Minute,
		Logger:        testLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	arch, err := archive.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, store: store, arch: arch, cfg: cfg}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ARCHIVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// event builds the event the webhook would publish for run.
func (e *env) event(repo ghsim.Repo, run ghsim.Run) *events.RunCompleted {
	return &events.RunCompleted{
		SchemaVersion:  events.SchemaVersion,
		Source:         events.SourceWebhook,
		DeliveryID:     "d-" + run.Name,
		ReceivedAt:     time.Now(),
		InstallationID: repo.InstallationID,
		Repository:     events.Repository{ID: repo.ID, Owner: repo.Owner, Name: repo.Name, FullName: repo.FullName()},
		WorkflowRun: events.WorkflowRun{
			ID: run.ID, RunAttempt: run.Attempt, Name: run.Name, Path: run.Path, Event: run.Event,
			HeadBranch: run.HeadBranch, HeadSHA: run.HeadSHA, Conclusion: run.Conclusion, Status: "completed",
		},
		WorkflowName: run.Name,
	}
}

// objectSHA256 reads an object back from MinIO and hashes it.
func (e *env) objectSHA256(t *testing.T, key string) string {
	t.Helper()
	rc, err := e.store.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	return hashReader(t, rc)
}

func (e *env) manifest(t *testing.T, owner, repo string, runID int64, attempt int) *archive.Manifest {
	t.Helper()
	l := archive.Layout{Owner: owner, Repo: repo, RunID: runID}
	rc, err := e.store.Open(t.Context(), l.ManifestKey(attempt))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := archive.DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkArchived asserts the invariant: every artifact of the simulator's
// run is in the manifest with the right status, and each archived one is in
// S3 exactly once with the simulator's sha256.
func (e *env) checkArchived(t *testing.T, m *archive.Manifest, ids []int64, expired map[int64]bool) {
	t.Helper()
	want := map[int64]ghsim.Artifact{}
	for _, id := range ids {
		a, ok := e.sim.Artifact(id)
		if !ok {
			t.Fatalf("simulator has no artifact %d", id)
		}
		want[id] = a
	}
	if len(m.Artifacts) != len(want) {
		t.Fatalf("manifest lists %d artifacts, run has %d", len(m.Artifacts), len(want))
	}
	for _, rec := range m.Artifacts {
		a, ok := want[rec.ID]
		if !ok {
			t.Fatalf("manifest lists unknown artifact %d", rec.ID)
		}
		delete(want, rec.ID)
		if expired[rec.ID] {
			if rec.Status != archive.StatusExpired {
				t.Errorf("artifact %d: status %s, want expired", rec.ID, rec.Status)
			}
			continue
		}
		if rec.Status != archive.StatusArchived {
			t.Errorf("artifact %d: status %s (%s), want archived", rec.ID, rec.Status, rec.Error)
			continue
		}
		sum, err := e.sim.SHA256(rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.SHA256 != sum || rec.Size != a.Size {
			t.Errorf("artifact %d: manifest sha256 %s size %d, simulator %s %d", rec.ID, rec.SHA256, rec.Size, sum, a.Size)
		}
		objs, err := e.store.List(t.Context(), strings.TrimSuffix(rec.Key, rec.Key[strings.LastIndex(rec.Key, "/")+1:]))
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 1 || objs[0].Key != rec.Key {
			t.Errorf("artifact %d: %d objects under its prefix, want exactly %s", rec.ID, len(objs), rec.Key)
		}
		if got := e.objectSHA256(t, rec.Key); got != sum {
			t.Errorf("artifact %d: object %s hashes to %s, want %s", rec.ID, rec.Key, got, sum)
		}
	}
}

// runArtifacts returns the ids of the run's artifacts at the simulator.
func (e *env) runArtifacts(owner, repo string, runID int64) []int64 {
	var ids []int64
	for _, a := range e.sim.Artifacts(owner, repo) {
		if a.RunID == runID {
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// TestArchiveRunEndToEnd is the main scenario: a run with 250
// artifacts (3 pages) including an expired one, a non-zip one, one without
// digest, one whose reported size is the uncompressed size, same-name
// artifacts, and a large one whose stream is reset at 70%.
func TestArchiveRunEndToEnd(t *testing.T) {
	e := setup(t, nil)
	repo := e.sim.AddRepo(installation, "octo-org", "octo.repo")
	run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{Attempt: 1, Name: "CI"})
	expired := map[int64]bool{}
	var raw, noDigest, legacy, big ghsim.Artifact
	for i := range 245 {
		e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "dist-" + string(rune('a'+i%26)), Size: int64(1000 + i)})
	}
	exp := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "old", Size: 10, Expired: true})
	expired[exp.ID] = true
	raw = e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "report", Raw: true, FileName: "report.html", Size: 4096})
	noDigest = e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "legacy-nodigest", NoDigest: true, Size: 7 * mib})
	legacy = e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "../../etc/passwd", Size: 2000, ReportedSize: 999999})
	big = e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "big", Size: 40 * mib})

	// The first blob request of the big artifact breaks at 70%.
	resetAt := int64(float64(big.Size) * 0.7)
	injectForArtifact(t, e.sim, big.ID, ghsim.ResetAfter(resetAt))

	ev := e.event(repo, run)
	res, err := e.arch.ArchiveRun(t.Context(), ev, false)
	if err != nil {
		t.Fatalf("ArchiveRun: %v", err)
	}
	if len(res.Manifest.Artifacts) != 250 {
		t.Fatalf("manifest has %d artifacts, want 250", len(res.Manifest.Artifacts))
	}
	if got := e.sim.Stats().Count(ghsim.RouteList, 200); got < 3 {
		t.Errorf("listed %d pages, want >= 3", got)
	}
	m := e.manifest(t, repo.Owner, repo.Name, run.ID, 1)
	e.checkArchived(t, m, e.runArtifacts(repo.Owner, repo.Name, run.ID), expired)

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
	st := e.sim.Stats()
	var ranges []ghsim.RangeRequest
	for _, r := range st.Ranges {
		if r.ArtifactID == big.ID {
			ranges = append(ranges, r)
		}
	}
	if len(ranges) != 1 || ranges[0].Start == 0 || ranges[0].Start%testPartSize != 0 || ranges[0].Start > resetAt {
		t.Errorf("big artifact ranges %+v: want one resume at a part boundary <= %d", ranges, resetAt)
	}
	// The server wrote resetAt bytes, then the rest from the resume point.
	// A reset also discards what sat unread in the client's socket buffer
	// (up to a few MiB on loopback), so the resume point can be a part
	// earlier than the last byte sent; a restart would fetch resetAt again.
	served := st.BlobBytesByArtifact[big.ID]
	redownloaded := served - big.Size
	if len(ranges) == 1 && redownloaded != resetAt-ranges[0].Start {
		t.Errorf("big artifact: served %d, want %d + %d", served, resetAt, big.Size-ranges[0].Start)
	}
	if redownloaded <= 0 || redownloaded > testPartSize+8*mib {
		t.Errorf("big artifact: re-downloaded %d bytes, want at most a part plus a socket buffer (restart: %d)", redownloaded, resetAt)
	}
	t.Logf("reset at %d, resumed at %d: re-downloaded %d of %d bytes", resetAt, ranges[0].Start, redownloaded, big.Size)
	if st.AuthRejected != 0 {
		t.Errorf("%d blob requests carried an Authorization header", st.AuthRejected)
	}
	sums := readObject(t, e.store, archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}.SumsKey(1))
	if n := strings.Count(sums, "\n"); n != 249 {
		t.Errorf("SHA256SUMS has %d lines, want 249 (all but the expired one)", n)
	}
}

// TestRedeliveryWritesNothing: the same event again ends at the manifest;
// with the manifest gone, every artifact is found verified in S3 and
// nothing is downloaded or written again.
func TestRedeliveryWritesNothing(t *testing.T) {
	e := setup(t, nil)
	repo := e.sim.AddRepo(installation, "o", "r")
	run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	for i := range 3 {
		e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(100 + i)})
	}
	e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "nd", Size: 6 * mib, NoDigest: true})
	e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "big", Size: 11 * mib})
	ev := e.event(repo, run)
	first, err := e.arch.ArchiveRun(t.Context(), ev, false)
	if err != nil {
		t.Fatal(err)
	}
	served := e.sim.Stats().BlobBytes

	again, err := e.arch.ArchiveRun(t.Context(), ev, false)
	if err != nil || !again.AlreadyComplete {
		t.Fatalf("second run: complete=%v err=%v, want already complete", again.AlreadyComplete, err)
	}

	// Without the manifest (a crash before it was written), the artifacts
	// are verified in S3 and skipped.
	l := archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}
	deleteObject(t, e.store, l.ManifestKey(1))
	third, err := e.arch.ArchiveRun(t.Context(), ev, false)
	if err != nil || third.AlreadyComplete {
		t.Fatalf("third run: complete=%v err=%v", third.AlreadyComplete, err)
	}
	if got := e.sim.Stats().BlobBytes; got != served {
		t.Errorf("redelivery downloaded %d more bytes", got-served)
	}
	for i, r := range third.Manifest.Artifacts {
		f := first.Manifest.Artifacts[i]
		if r.ETag != f.ETag || r.SHA256 != f.SHA256 || r.Key != f.Key {
			t.Errorf("artifact %d changed on redelivery: %+v vs %+v", r.ID, r, f)
		}
	}
	e.checkArchived(t, e.manifest(t, repo.Owner, repo.Name, run.ID, 1), e.runArtifacts(repo.Owner, repo.Name, run.ID), nil)
}

// TestLaterAttemptSkipsEarlierArtifacts: attempt 2 lists attempt 1's
// artifacts too (same names); they are skipped, the new ones archived, and
// same-name artifacts never overwrite each other.
func TestLaterAttemptSkipsEarlierArtifacts(t *testing.T) {
	e := setup(t, nil)
	repo := e.sim.AddRepo(installation, "o", "r")
	run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{Attempt: 1})
	a1 := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 300})
	if _, err := e.arch.ArchiveRun(t.Context(), e.event(repo, run), false); err != nil {
		t.Fatal(err)
	}
	a2 := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 400})
	run.Attempt = 2
	before := e.sim.Stats().BlobBytesByArtifact[a1.ID]
	res, err := e.arch.ArchiveRun(t.Context(), e.event(repo, run), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Stats().BlobBytesByArtifact[a1.ID]; got != before {
		t.Errorf("attempt 2 downloaded attempt 1's artifact again (%d bytes)", got-before)
	}
	if len(res.Manifest.Artifacts) != 2 || res.Manifest.Artifacts[0].Key == res.Manifest.Artifacts[1].Key {
		t.Fatalf("attempt 2 manifest: %+v", res.Manifest.Artifacts)
	}
	e.checkArchived(t, e.manifest(t, repo.Owner, repo.Name, run.ID, 2), []int64{a1.ID, a2.ID}, nil)
	e.checkArchived(t, e.manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{a1.ID}, nil)
}

// TestDigestMismatchIsNeverArchived: an artifact whose bytes do not match
// GitHub's digest fails (single PUT and multipart), leaves no object and no
// open upload; before the final delivery no manifest is written.
func TestDigestMismatchIsNeverArchived(t *testing.T) {
	e := setup(t, func(c *archive.Config) { c.Attempts = 2 })
	repo := e.sim.AddRepo(installation, "o", "r")
	run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	good := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "good", Size: 500})
	small := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "bad-small", Size: 500, WrongDigest: true})
	large := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "bad-large", Size: 12 * mib, WrongDigest: true})
	ev := e.event(repo, run)
	l := archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}

	_, err := e.arch.ArchiveRun(t.Context(), ev, false)
	if !errors.Is(err, archive.ErrIncomplete) {
		t.Fatalf("ArchiveRun = %v, want ErrIncomplete", err)
	}
	if _, err := e.store.Stat(t.Context(), l.ManifestKey(1)); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("manifest written before the final attempt: %v", err)
	}

	res, err := e.arch.ArchiveRun(t.Context(), ev, true)
	if !errors.Is(err, archive.ErrIncomplete) || res.Manifest == nil {
		t.Fatalf("final ArchiveRun = %v, want ErrIncomplete with a manifest", err)
	}
	status := map[int64]string{}
	for _, r := range e.manifest(t, repo.Owner, repo.Name, run.ID, 1).Artifacts {
		status[r.ID] = r.Status
		if r.Status == archive.StatusFailed && (r.Error == "" || r.SHA256 != "") {
			t.Errorf("failed artifact %d: error %q sha %q", r.ID, r.Error, r.SHA256)
		}
	}
	if status[good.ID] != archive.StatusArchived || status[small.ID] != archive.StatusFailed || status[large.ID] != archive.StatusFailed {
		t.Errorf("statuses %v", status)
	}
	for _, id := range []int64{small.ID, large.ID} {
		if objs, err := e.store.List(t.Context(), l.ArtifactPrefix(id)); err != nil || len(objs) != 0 {
			t.Errorf("artifact %d: objects %v err %v, want none", id, objs, err)
		}
	}
	if ups := openUploads(t, e.store); len(ups) != 0 {
		t.Errorf("open multipart uploads left: %v", ups)
	}
	if sums := readObject(t, e.store, l.SumsKey(1)); strings.Count(sums, "\n") != 1 {
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
			e := setup(t, func(c *archive.Config) { c.DeleteFromGitHub, c.DeleteDryRun = tc.del, tc.dry })
			repo := e.sim.AddRepo(installation, "o", "r")
			run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
			var ids []int64
			for i := range 3 {
				ids = append(ids, e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(10 + i)}).ID)
			}
			exp := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "x", Size: 1, Expired: true})
			if _, err := e.arch.ArchiveRun(t.Context(), e.event(repo, run), false); err != nil {
				t.Fatal(err)
			}
			m := e.manifest(t, repo.Owner, repo.Name, run.ID, 1)
			e.checkArchived(t, m, append(ids, exp.ID), map[int64]bool{exp.ID: true})
			for _, id := range ids {
				if e.sim.Deleted(id) != tc.want {
					t.Errorf("artifact %d deleted=%v, want %v", id, e.sim.Deleted(id), tc.want)
				}
			}
			for _, r := range m.Artifacts {
				if r.Status == archive.StatusArchived && r.DeletedFromGitHub != tc.want {
					t.Errorf("manifest artifact %d deleted_from_github=%v", r.ID, r.DeletedFromGitHub)
				}
			}
			dels := e.sim.Stats().Deletes
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
			res, err := e.arch.ArchiveRun(t.Context(), e.event(repo, run), false)
			if err != nil || !res.AlreadyComplete {
				t.Errorf("redelivery: complete=%v err=%v", res.AlreadyComplete, err)
			}
		})
	}
}

// TestRateLimitsSlowDownNotFail: secondary limits (403 and 429 with
// Retry-After) and 5xx on list and download are waited out within the job.
func TestRateLimitsSlowDownNotFail(t *testing.T) {
	e := setup(t, nil)
	repo := e.sim.AddRepo(installation, "o", "r")
	run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	for i := range 4 {
		e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(100 + i)})
	}
	e.sim.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(429, time.Second))
	e.sim.Inject(ghsim.RouteZip, 1, ghsim.SecondaryLimit(403, time.Second))
	e.sim.Inject(ghsim.RouteZip, 1, ghsim.ServerError(502))
	e.sim.Inject(ghsim.RouteBlob, 1, ghsim.ServerError(500))
	e.sim.Inject(ghsim.RouteZip, 1, ghsim.ExpiredURL())
	res, err := e.arch.ArchiveRun(t.Context(), e.event(repo, run), false)
	if err != nil {
		t.Fatalf("ArchiveRun: %v", err)
	}
	e.checkArchived(t, res.Manifest, e.runArtifacts(repo.Owner, repo.Name, run.ID), nil)
	st := e.sim.Stats()
	if st.Count(ghsim.RouteList, 429) != 1 || st.Count(ghsim.RouteZip, 403) != 1 || st.Count(ghsim.RouteZip, 502) != 1 {
		t.Errorf("faults not all hit: %+v", st.Requests)
	}
}

// TestPrimaryRateLimitHandsBack: an exhausted primary budget whose reset is
// far away is not slept through: the job returns a RetryAfterError at the
// reset time.
func TestPrimaryRateLimitHandsBack(t *testing.T) {
	e := setup(t, nil)
	repo := e.sim.AddRepo(installation, "o", "r")
	run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 10})
	reset := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	// A first call mints the installation token; then exhaust its budget.
	if _, err := e.cfg.GitHub.(*ghclient.Clients).ForInstallation(installation); err != nil {
		t.Fatal(err)
	}
	e.sim.SetInstallationRateLimit(installation, 0, reset)
	_, err := e.arch.ArchiveRun(t.Context(), e.event(repo, run), false)
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
	e := setup(t, nil)
	repo := e.sim.AddRepo(installation, "o", "r")
	run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	ev := e.event(repo, run)
	_, err := e.arch.ArchiveRun(t.Context(), ev, false)
	var ra *archive.RetryAfterError
	if !errors.As(err, &ra) || time.Until(ra.At) <= 0 || time.Until(ra.At) > time.Minute {
		t.Fatalf("first empty list = %v, want a retry within EmptyListWait", err)
	}
	// The artifact shows up late, as actions/upload-artifact#400 describes.
	late := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "late", Size: 42})
	res, err := e.arch.ArchiveRun(t.Context(), ev, false)
	if err != nil || len(res.Manifest.Artifacts) != 1 || res.Manifest.Artifacts[0].ID != late.ID {
		t.Fatalf("after the artifact appeared: %v %+v", err, res.Manifest)
	}

	run2 := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	ev2 := e.event(repo, run2)
	ev2.ReceivedAt = time.Now().Add(-2 * time.Minute)
	res, err = e.arch.ArchiveRun(t.Context(), ev2, false)
	if err != nil || res.Manifest == nil || len(res.Manifest.Artifacts) != 0 {
		t.Fatalf("old empty run: %v, want a manifest with no artifacts", err)
	}
}

// TestGoneAtGitHubIsExpired: an artifact deleted between list and download
// (404/410) is recorded as expired, not as an error.
func TestGoneAtGitHubIsExpired(t *testing.T) {
	e := setup(t, nil)
	repo := e.sim.AddRepo(installation, "o", "r")
	run := e.sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	a := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: 10})
	b := e.sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "b", Size: 10})
	// Expire b after listing: its download answers 410.
	lister := &expireAfterList{GitHub: mustGH(t, e), sim: e.sim, id: b.ID}
	e.cfg.GitHub = installationsFunc(func(int64) (archive.GitHub, error) { return lister, nil })
	arch, err := archive.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := arch.ArchiveRun(t.Context(), e.event(repo, run), false)
	if err != nil {
		t.Fatal(err)
	}
	e.checkArchived(t, res.Manifest, []int64{a.ID, b.ID}, map[int64]bool{b.ID: true})
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

func mustGH(t *testing.T, e *env) archive.GitHub {
	gh, err := e.cfg.GitHub.ForInstallation(installation)
	if err != nil {
		t.Fatal(err)
	}
	return gh
}
