package duckdb_test

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
	"github.com/artifact-archiver/artifact-archiver/pkg/filestore"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// workflow is a workflow file of the generated repositories.
type workflow struct {
	id         int64
	name, path string
}

var (
	ciWorkflow      = workflow{161_001, "CI", ".github/workflows/ci.yml"}
	releaseWorkflow = workflow{161_002, "Release", ".github/workflows/release.yml"}
	nightlyWorkflow = workflow{161_003, "Nightly", ".github/workflows/nightly.yml"}
)

// abc123 is the commit of the question "What did commit abc123 build?".
const abc123 = "abc1230f9e8d7c6b5a4938271605f4e3d2c1b0a9"

// run is one run attempt of the generated archive.
type run struct {
	owner, repo string
	id          int64
	attempt     int
	wf          workflow
	event       string
	branch      string
	sha         string
	prs         []int64
	conclusion  string
	created     time.Time
	artifacts   []artifact
}

// artifact is one artifact of a generated run attempt.
type artifact struct {
	name    string
	expired bool // gone at GitHub before it was copied
}

func archived(names ...string) []artifact {
	out := make([]artifact, len(names))
	for i, n := range names {
		out[i] = artifact{name: n}
	}
	return out
}

// testArchive is a file:// archive written by the project's code, and the
// manifests it holds (the newest version of each).
type testArchive struct {
	dir       string
	store     *filestore.Store
	manifests map[string]*archive.Manifest // by manifest key
	// compacted are the partitions merged into Parquet.
	compacted []catalog.CompactResult
}

// day is a time in 2025, UTC.
func day(month time.Month, d, hour, minute int) time.Time {
	return time.Date(2025, month, d, hour, minute, 0, 0, time.UTC)
}

// shaOf is a deterministic 40-hex commit id that does not start with
// "abc123".
func shaOf(seed string) string {
	s := sha1.Sum([]byte(seed))
	h := hex.EncodeToString(s[:])
	if h[:6] == abc123[:6] {
		h = "0" + h[1:]
	}
	return h
}

// runs is the history of the generated archive: three repositories (one a
// fork), branches main, feature/*, release/2.0 and release/2.1, a nightly
// workflow whose runs cross the February/March and March/April
// boundaries, PR runs, re-run attempts, an expired artifact and a run
// without artifacts, spread from January to July 2025.
func runs() []run {
	var out []run
	id := int64(9_000_000_000)
	add := func(r run) {
		id++
		r.id = id
		r.attempt = cmp.Or(r.attempt, 1)
		r.event = cmp.Or(r.event, "push")
		r.conclusion = cmp.Or(r.conclusion, "success")
		r.sha = cmp.Or(r.sha, shaOf(r.owner+r.repo+strconv.FormatInt(r.id, 10)))
		out = append(out, r)
	}
	rerun := func(conclusion string) {
		r := out[len(out)-1]
		r.attempt++
		r.conclusion = conclusion
		out = append(out, r)
	}
	for m := time.January; m <= time.July; m++ {
		for _, d := range []int{3, 17} {
			add(run{owner: "octo-org", repo: "app", wf: ciWorkflow, branch: "main", created: day(m, d, 9, 30), artifacts: archived("dist", "test-results")})
			add(run{owner: "octo-org", repo: "lib", wf: ciWorkflow, branch: "main", created: day(m, d, 11, 0), artifacts: archived("dist")})
		}
	}
	add(run{owner: "octo-org", repo: "app", wf: ciWorkflow, event: "pull_request", branch: "feature/login", prs: []int64{41}, created: day(time.February, 11, 15, 0), artifacts: archived("dist", "test-results")})
	// A CI run that also uploads coverage: not the nightly workflow.
	add(run{owner: "octo-org", repo: "app", wf: ciWorkflow, branch: "main", created: day(time.March, 20, 8, 0), artifacts: archived("dist", "coverage")})

	// Commit abc123: pushed to feature/cache (failed, re-run), its pull
	// request, then release/2.1 fast-forwarded to it in May, and a fork
	// that built the same commit in June.
	add(run{owner: "octo-org", repo: "app", wf: ciWorkflow, branch: "feature/cache", sha: abc123, conclusion: "failure", created: day(time.March, 12, 10, 0), artifacts: archived("dist", "test-results")})
	rerun("success")
	add(run{owner: "octo-org", repo: "app", wf: ciWorkflow, event: "pull_request", branch: "feature/cache", sha: abc123, prs: []int64{42, 57}, created: day(time.March, 12, 10, 1), artifacts: archived("dist", "test-results")})
	add(run{owner: "forker", repo: "app", wf: ciWorkflow, branch: "main", sha: abc123, created: day(time.June, 3, 7, 45), artifacts: archived("dist")})
	// Near misses: a longer prefix that differs, and abc123 not at the start.
	add(run{owner: "octo-org", repo: "app", wf: ciWorkflow, branch: "main", sha: "abc1240" + abc123[7:], created: day(time.March, 13, 9, 0), artifacts: archived("dist")})
	add(run{owner: "octo-org", repo: "lib", wf: ciWorkflow, branch: "main", sha: "0abc123" + abc123[7:], created: day(time.March, 13, 9, 5), artifacts: archived("dist")})

	// Releases: release/2.1 before, during and after spring 2025, on the
	// exact boundaries; release/2.0 and main in spring; CI on release/2.1.
	rel := archived("app-linux-amd64", "app-darwin-arm64", "checksums")
	for _, c := range []time.Time{
		day(time.February, 20, 14, 0), day(time.February, 28, 23, 59),
		day(time.March, 1, 0, 0), day(time.March, 18, 16, 20), day(time.April, 22, 12, 0),
		day(time.May, 31, 23, 59), day(time.June, 1, 0, 0),
	} {
		add(run{owner: "octo-org", repo: "app", wf: releaseWorkflow, branch: "release/2.1", created: c, artifacts: rel})
		if c.Month() == time.April {
			rerun("success")
		}
	}
	add(run{owner: "octo-org", repo: "app", wf: releaseWorkflow, branch: "release/2.1", sha: abc123, created: day(time.May, 6, 10, 0), artifacts: rel})
	add(run{owner: "octo-org", repo: "app", wf: releaseWorkflow, branch: "release/2.0", created: day(time.April, 10, 10, 0), artifacts: rel})
	add(run{owner: "octo-org", repo: "app", wf: releaseWorkflow, branch: "main", created: day(time.April, 15, 10, 0), artifacts: rel})
	add(run{owner: "octo-org", repo: "app", wf: ciWorkflow, branch: "release/2.1", created: day(time.April, 22, 11, 0), artifacts: archived("dist")})

	// The nightly workflow: every four days from mid-February to
	// mid-April at 02:00, plus runs a few minutes either side of the
	// month boundaries; one March night without artifacts and one whose
	// coverage expired before it was copied. octo-org/lib has a nightly
	// with coverage in March too.
	for c := day(time.February, 14, 2, 0); c.Before(day(time.April, 15, 0, 0)); c = c.AddDate(0, 0, 4) {
		r := run{owner: "octo-org", repo: "app", wf: nightlyWorkflow, event: "schedule", branch: "main", created: c, artifacts: archived("coverage", "test-results")}
		switch {
		case c.Equal(day(time.March, 10, 2, 0)):
			r.conclusion, r.artifacts = "cancelled", nil
		case c.Equal(day(time.March, 18, 2, 0)):
			r.artifacts = []artifact{{name: "coverage", expired: true}, {name: "test-results"}}
		}
		add(r)
	}
	for _, c := range []time.Time{day(time.February, 28, 23, 50), day(time.March, 31, 23, 50), day(time.April, 1, 0, 5)} {
		add(run{owner: "octo-org", repo: "app", wf: nightlyWorkflow, event: "schedule", branch: "main", created: c, artifacts: archived("coverage")})
	}
	add(run{owner: "octo-org", repo: "lib", wf: nightlyWorkflow, event: "schedule", branch: "main", created: day(time.March, 5, 2, 0), artifacts: archived("coverage")})
	return out
}

// setup writes the archive of runs() into a filestore at a temporary
// directory, as the worker would (artifacts, SHA256SUMS, then the
// manifest, then its catalogue file), compacts some months into Parquet,
// and then leaves the three kinds of duplicate a reader must resolve: a
// March manifest updated after its month was compacted (its small file is
// newer than the Parquet row), an April attempt whose unchanged catalogue
// file was written again (the same view in a small file and in Parquet, as
// during a compaction), and a stale small file older than the Parquet
// view.
func setup(t *testing.T) *testArchive {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := filestore.New(filestore.Config{Dir: dir})
	if err != nil {
		t.Fatalf("filestore: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a := &testArchive{dir: dir, store: st, manifests: map[string]*archive.Manifest{}}
	artifactID := int64(3_000_000_000)
	for _, r := range runs() {
		m := a.manifest(r)
		l := archive.Layout{Owner: r.owner, Repo: r.repo, RunID: r.id}
		// A re-run attempt lists the first attempt's artifacts again
		// with the same ids; give each attempt its own here.
		for _, spec := range r.artifacts {
			artifactID++
			m.Artifacts = append(m.Artifacts, a.putArtifact(t, l, m, artifactID, spec))
		}
		a.putManifest(t, l, m)
	}

	// The April release/2.0 run is updated before its month is compacted,
	// and its first catalogue file put back afterwards: a small file older
	// than the Parquet view, as a crashed writer or a restored backup
	// could leave it.
	m := a.find(t, func(m *archive.Manifest) bool { return m.WorkflowRun.HeadBranch == "release/2.0" })
	staleKey := catalog.AttemptKey(m.Repository.Owner, m.Repository.Name, "2025-04", m.WorkflowRun.ID, m.WorkflowRun.RunAttempt)
	stale := a.read(t, staleKey)
	m.ArchivedAt = m.ArchivedAt.Add(time.Hour)
	m.Artifacts[2].DeletedFromGitHub = true
	a.putManifest(t, layoutOf(m), m)

	for _, p := range []struct{ owner, repo, month string }{
		{"octo-org", "app", "2025-02"}, {"octo-org", "app", "2025-03"}, {"octo-org", "app", "2025-04"},
		{"octo-org", "lib", "2025-03"},
	} {
		res, err := catalog.Compact(ctx, st, p.owner, p.repo, p.month)
		if err != nil {
			t.Fatalf("compact %v: %v", p, err)
		}
		if res.Key == "" || res.Merged == 0 || res.Kept != 0 {
			t.Fatalf("compact %v: %+v, want a Parquet file replacing every small file", p, res)
		}
		a.compacted = append(a.compacted, res)
	}

	if _, err := st.Put(ctx, staleKey, bytes.NewReader(stale), int64(len(stale)), archive.PutOptions{ContentType: catalog.ContentTypeJSONL}); err != nil {
		t.Fatalf("put %s: %v", staleKey, err)
	}
	// A later delivery deletes the March 14 nightly's coverage from
	// GitHub: the manifest changes after its month was compacted.
	m = a.find(t, func(m *archive.Manifest) bool {
		return m.WorkflowName == nightlyWorkflow.name && m.WorkflowRun.CreatedAt.Equal(day(time.March, 14, 2, 0))
	})
	m.ArchivedAt = m.ArchivedAt.Add(36 * time.Hour)
	m.Artifacts[0].DeletedFromGitHub = true
	a.putManifest(t, layoutOf(m), m)
	// The April release's re-run, catalogued again unchanged.
	m = a.find(t, func(m *archive.Manifest) bool {
		return m.WorkflowName == releaseWorkflow.name && m.WorkflowRun.RunAttempt == 2
	})
	if err := catalog.Write(ctx, st, layoutOf(m).ManifestKey(m.WorkflowRun.RunAttempt)); err != nil {
		t.Fatalf("catalog write: %v", err)
	}
	return a
}

func layoutOf(m *archive.Manifest) archive.Layout {
	return archive.Layout{Owner: m.Repository.Owner, Repo: m.Repository.Name, RunID: m.WorkflowRun.ID}
}

// read returns the stored object at key.
func (a *testArchive) read(t *testing.T, key string) []byte {
	t.Helper()
	rc, err := a.store.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

// find returns the only manifest that match selects.
func (a *testArchive) find(t *testing.T, match func(*archive.Manifest) bool) *archive.Manifest {
	t.Helper()
	var found []*archive.Manifest
	for _, m := range a.manifests {
		if match(m) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("fixture: %d manifests match, want 1", len(found))
	}
	return found[0]
}

// manifest is the manifest a worker writes for r, before its artifacts.
func (a *testArchive) manifest(r run) *archive.Manifest {
	repoID := map[string]int64{"octo-org/app": 1001, "octo-org/lib": 1002, "forker/app": 2001}[r.owner+"/"+r.repo]
	updated := r.created.Add(7*time.Minute + time.Duration(r.attempt)*time.Hour)
	return &archive.Manifest{
		SchemaVersion:  archive.ManifestVersion,
		Repository:     runevent.Repository{ID: repoID, Owner: r.owner, Name: r.repo, FullName: r.owner + "/" + r.repo},
		InstallationID: 55_000_001,
		WorkflowRun: runevent.WorkflowRun{
			ID: r.id, RunAttempt: r.attempt, WorkflowID: r.wf.id, Name: r.wf.name, Path: r.wf.path,
			Event: r.event, HeadBranch: r.branch, HeadSHA: r.sha, Conclusion: r.conclusion, Status: "completed",
			CreatedAt: r.created, UpdatedAt: updated, PullRequests: r.prs,
			HTMLURL: fmt.Sprintf("https://github.com/%s/%s/actions/runs/%d/attempts/%d", r.owner, r.repo, r.id, r.attempt),
		},
		WorkflowName: r.wf.name,
		DeliveryID:   fmt.Sprintf("d-%d-%d", r.id, r.attempt),
		// Archived a little after the run ended, with microseconds (what
		// the catalogue keeps).
		ArchivedAt: updated.Add(93*time.Second + time.Duration(r.id%1_000_000)*time.Microsecond),
		Complete:   true,
	}
}

// putArtifact stores an artifact's bytes (unless it expired) and returns
// its manifest record. Release artifacts have one attestation.
func (a *testArchive) putArtifact(t *testing.T, l archive.Layout, m *archive.Manifest, id int64, spec artifact) archive.ArtifactRecord {
	t.Helper()
	created := m.WorkflowRun.UpdatedAt.Add(-time.Minute)
	expires := created.AddDate(0, 0, 90)
	rec := archive.ArtifactRecord{ID: id, Name: spec.name, ContentType: "application/zip", CreatedAt: &created, ExpiresAt: &expires}
	if spec.expired {
		rec.Status = archive.StatusExpired
		rec.DigestMissing = true
		return rec
	}
	body := fmt.Appendf(nil, "PK\x03\x04 %s of run %d attempt %d", spec.name, m.WorkflowRun.ID, m.WorkflowRun.RunAttempt)
	sum := sha256.Sum256(body)
	key := l.ArtifactPrefix(id) + archive.ObjectName(spec.name, rec.ContentType, "")
	if _, err := a.store.Put(t.Context(), key, bytes.NewReader(body), int64(len(body)),
		archive.PutOptions{Kind: archive.KindArtifact, ContentType: rec.ContentType, IfAbsent: true, SHA256: sum[:]}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	digest := "sha256:" + hex.EncodeToString(sum[:])
	rec.Status, rec.Key, rec.Size, rec.SizeInBytes = archive.StatusArchived, key, int64(len(body)), int64(len(body))
	rec.SHA256, rec.GitHubDigest = hex.EncodeToString(sum[:]), &digest
	if m.WorkflowName == releaseWorkflow.name {
		rec.Attestations = &archive.AttestationRecord{
			Count: 1, Key: l.AttestationsKey(id), CheckedAt: m.ArchivedAt,
			PredicateTypes: []string{"https://slsa.dev/provenance/v1"},
		}
	}
	return rec
}

// putManifest writes SHA256SUMS and the manifest, then the attempt's
// catalogue file, in the worker's order, and remembers the manifest.
func (a *testArchive) putManifest(t *testing.T, l archive.Layout, m *archive.Manifest) {
	t.Helper()
	ctx := t.Context()
	attempt := m.WorkflowRun.RunAttempt
	sums := m.SHA256Sums(l)
	if _, err := a.store.Put(ctx, l.SumsKey(attempt), bytes.NewReader(sums), int64(len(sums)), archive.PutOptions{ContentType: "text/plain; charset=utf-8"}); err != nil {
		t.Fatalf("put sums: %v", err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatalf("encode manifest: %v", err)
	}
	key := l.ManifestKey(attempt)
	if _, err := a.store.Put(ctx, key, bytes.NewReader(b), int64(len(b)), archive.PutOptions{ContentType: "application/json"}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	if err := catalog.Write(ctx, a.store, key); err != nil {
		t.Fatalf("catalog write %s: %v", key, err)
	}
	a.manifests[key] = m
}

// want is a catalogue row as the tests compare it: computed here from the
// manifests, independently of package catalog, and scanned from DuckDB.
type want struct {
	Owner, Repo, Month string
	Repository         string
	RunID, RunAttempt  int64
	Workflow, Branch   string
	SHA                string
	PRs                string // comma-separated
	Created            time.Time
	ArtifactID         int64
	Name, Status, Key  string
	Size               int64
	SHA256             string
	ArchivedAt         time.Time
	Deleted            bool
	Attestations       int64
}

// wantRows are the rows of every stored manifest that match, in the order
// of the queries (repository, run id, attempt, artifact id).
func (a *testArchive) wantRows(match func(*archive.Manifest, archive.ArtifactRecord) bool) []want {
	var out []want
	for _, m := range a.manifests {
		run := m.WorkflowRun
		base := want{
			Owner: m.Repository.Owner, Repo: m.Repository.Name, Month: run.CreatedAt.UTC().Format("2006-01"),
			Repository: m.Repository.FullName, RunID: run.ID, RunAttempt: int64(run.RunAttempt),
			Workflow: m.WorkflowName, Branch: run.HeadBranch, SHA: run.HeadSHA, PRs: joinInts(run.PullRequests),
			Created: run.CreatedAt.UTC(), ArchivedAt: m.ArchivedAt.UTC().Truncate(time.Microsecond),
		}
		arts := m.Artifacts
		if len(arts) == 0 {
			arts = []archive.ArtifactRecord{{Status: "none"}}
		}
		for _, ar := range arts {
			if !match(m, ar) {
				continue
			}
			w := base
			w.ArtifactID, w.Name, w.Status, w.Key, w.Size, w.SHA256, w.Deleted = ar.ID, ar.Name, ar.Status, ar.Key, ar.Size, ar.SHA256, ar.DeletedFromGitHub
			if ar.Attestations != nil {
				w.Attestations = int64(ar.Attestations.Count)
			}
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(x, y want) int {
		return cmp.Or(cmp.Compare(x.Repository, y.Repository), cmp.Compare(x.RunID, y.RunID),
			cmp.Compare(x.RunAttempt, y.RunAttempt), cmp.Compare(x.ArtifactID, y.ArtifactID))
	})
	return out
}

func joinInts(v []int64) string {
	var b []byte
	for i, n := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(b)
}
