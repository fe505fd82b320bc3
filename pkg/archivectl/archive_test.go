package archivectl_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
)

// lsRun mirrors ls --json.
type lsRun struct {
	Repository  string                   `json:"repository"`
	RunID       int64                    `json:"run_id"`
	RunAttempt  int                      `json:"run_attempt"`
	Workflow    string                   `json:"workflow"`
	HeadBranch  string                   `json:"head_branch"`
	Conclusion  string                   `json:"conclusion"`
	ManifestKey string                   `json:"manifest_key"`
	Artifacts   []archive.ArtifactRecord `json:"artifacts"`
}

// verifyReport mirrors verify --json.
type verifyReport struct {
	OK        bool  `json:"ok"`
	Deep      bool  `json:"deep"`
	Manifests int   `json:"manifests"`
	Objects   int   `json:"objects"`
	Hashed    int64 `json:"bytes_hashed"`
	Expired   int   `json:"expired_artifacts"`
	Problems  []struct {
		Repository string `json:"repository"`
		RunID      int64  `json:"run_id"`
		ArtifactID int64  `json:"artifact_id"`
		Key        string `json:"key"`
		Problem    string `json:"problem"`
	} `json:"problems"`
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, s)
	}
	return v
}

// archived is a small archive: two repositories, three runs, a shared
// artifact name, an expired artifact.
type archived struct {
	app, lib            ghsim.Repo
	ci, release, libRun ghsim.Run
	dist, unit, e2e     ghsim.Artifact
	relA, relB, expired ghsim.Artifact
	pkg                 ghsim.Artifact
	ciM, releaseM, libM *archive.Manifest
}

func fill(t *testing.T, sim *ghsim.Server, archiveRunFn func(ghsim.Repo, ghsim.Run) *archive.Manifest) *archived {
	t.Helper()
	a := &archived{app: sim.AddRepo(77, "octo-org", "app"), lib: sim.AddRepo(77, "octo-org", "lib")}
	a.ci = sim.AddRun("octo-org", "app", ghsim.RunSpec{Name: "CI", HeadBranch: "main"})
	a.dist = sim.AddArtifact("octo-org", "app", a.ci.ID, ghsim.ArtifactSpec{Name: "dist", Size: 300 << 10})
	a.unit = sim.AddArtifact("octo-org", "app", a.ci.ID, ghsim.ArtifactSpec{Name: "coverage-unit", Size: 2048})
	a.e2e = sim.AddArtifact("octo-org", "app", a.ci.ID, ghsim.ArtifactSpec{Name: "coverage-e2e", Size: 1000, Raw: true, FileName: "e2e.txt"})
	a.release = sim.AddRun("octo-org", "app", ghsim.RunSpec{Attempt: 2, Name: "Release", Path: ".github/workflows/release.yml", HeadBranch: "feature/x", Conclusion: "failure"})
	a.relA = sim.AddArtifact("octo-org", "app", a.release.ID, ghsim.ArtifactSpec{Name: "dist", Size: 5000})
	a.relB = sim.AddArtifact("octo-org", "app", a.release.ID, ghsim.ArtifactSpec{Name: "dist", Size: 6000})
	a.expired = sim.AddArtifact("octo-org", "app", a.release.ID, ghsim.ArtifactSpec{Name: "old-logs", Size: 10, Expired: true})
	a.libRun = sim.AddRun("octo-org", "lib", ghsim.RunSpec{})
	a.pkg = sim.AddArtifact("octo-org", "lib", a.libRun.ID, ghsim.ArtifactSpec{Name: "pkg", Size: 4096})
	a.ciM = archiveRunFn(a.app, a.ci)
	a.releaseM = archiveRunFn(a.app, a.release)
	a.libM = archiveRunFn(a.lib, a.libRun)
	return a
}

// key returns the archived key of artifact id in m.
func key(t *testing.T, m *archive.Manifest, id int64) string {
	t.Helper()
	for _, r := range m.Artifacts {
		if r.ID == id {
			return r.Key
		}
	}
	t.Fatalf("manifest of run %d has no artifact %d", m.WorkflowRun.ID, id)
	return ""
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestS3 drives ls, get and verify against an archive in MinIO written by
// the real archiver, then corrupts it.
func TestS3(t *testing.T) {
	e := newS3Env(t)
	a := fill(t, e.Sim, func(r ghsim.Repo, run ghsim.Run) *archive.Manifest { return archiveRun(t, e.Env, r, run) })
	ev := e.env

	t.Run("ls", func(t *testing.T) {
		r := run(t, ev, "ls").want(t, archivectl.ExitOK)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 1+3+3+1 {
			t.Fatalf("%d lines, want a header and 7 rows:\n%s", len(lines), r.stdout)
		}
		mustContain(t, "header", lines[0], "REPO", "RUN", "ATTEMPT", "WORKFLOW", "BRANCH", "CONCLUSION", "ARTIFACT", "ID", "STATUS", "SIZE", "ARCHIVED_AT")
		mustContain(t, "ls", r.stdout, "octo-org/lib", strconv.FormatInt(a.pkg.ID, 10), "old-logs", "expired", "300.0 KiB", "feature/x", "failure")
		mustNotContain(t, "ls (not a terminal)", r.stdout, "\x1b[")
		mustContain(t, "ls summary", r.stderr, "3 run attempts, 7 artifacts")
		// Columns line up: every row has ID where the header has it.
		col := strings.Index(lines[0], "ID ")
		for _, l := range lines[1:] {
			if l[col-1] != ' ' || l[col] == ' ' {
				t.Fatalf("row not aligned with header at column %d:\n%s\n%s", col, lines[0], l)
			}
		}
	})

	t.Run("ls json and filters", func(t *testing.T) {
		runs := decode[[]lsRun](t, run(t, ev, "ls", "octo-org/app", "--json").want(t, 0).stdout)
		if len(runs) != 2 || runs[0].RunID != a.ci.ID || runs[1].RunID != a.release.ID || runs[1].RunAttempt != 2 {
			t.Fatalf("ls octo-org/app --json: %+v", runs)
		}
		if got := runs[1]; got.Workflow != "Release" || got.HeadBranch != "feature/x" || got.Conclusion != "failure" ||
			len(got.Artifacts) != 3 || got.ManifestKey != "octo-org/app/runs/"+strconv.FormatInt(a.release.ID, 10)+"/attempt-2/manifest.json" {
			t.Fatalf("release run %+v", got)
		}
		for _, tc := range []struct {
			args []string
			runs []int64
			arts int
		}{
			{[]string{"--branch", "main"}, []int64{a.ci.ID, a.libRun.ID}, 4},
			{[]string{"--workflow", "release.yml"}, []int64{a.release.ID}, 3},
			{[]string{"--workflow", "ci"}, []int64{a.ci.ID, a.libRun.ID}, 4},
			{[]string{"--name", "coverage-*"}, []int64{a.ci.ID}, 2},
			{[]string{"octo-org/app", "--run", strconv.FormatInt(a.release.ID, 10)}, []int64{a.release.ID}, 3},
			{[]string{"--since", "1h"}, []int64{a.ci.ID, a.release.ID, a.libRun.ID}, 7},
			{[]string{"--since", "2099-01-01"}, nil, 0},
		} {
			got := decode[[]lsRun](t, run(t, ev, append([]string{"ls", "--json"}, tc.args...)...).want(t, 0).stdout)
			var ids []int64
			arts := 0
			for _, r := range got {
				ids = append(ids, r.RunID)
				arts += len(r.Artifacts)
			}
			if !slices.Equal(ids, tc.runs) || arts != tc.arts {
				t.Errorf("ls %v: runs %v with %d artifacts, want %v with %d", tc.args, ids, arts, tc.runs, tc.arts)
			}
		}
		run(t, ev, "ls", "--since", "yesterday").want(t, archivectl.ExitUsage)
		run(t, ev, "ls", "not-a-repo").want(t, archivectl.ExitUsage)
	})

	t.Run("get", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "dist.zip")
		r := run(t, ev, "get", "octo-org/app", strconv.FormatInt(a.ci.ID, 10), strconv.FormatInt(a.dist.ID, 10), "-o", out).want(t, 0)
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, content(t, e.Sim, a.dist.ID)) {
			t.Fatalf("get wrote %d bytes (%v), want the artifact's %d", len(got), err, a.dist.Size)
		}
		mustContain(t, "get", r.stderr, "verified", sha(got))

		// By name, into a directory: the object's file name.
		run(t, ev, "get", "octo-org/app", strconv.FormatInt(a.ci.ID, 10), "coverage-e2e", "-o", dir).want(t, 0)
		if got, err := os.ReadFile(filepath.Join(dir, "e2e.txt")); err != nil || !bytes.Equal(got, content(t, e.Sim, a.e2e.ID)) {
			t.Fatalf("get by name into a directory: %d bytes, %v", len(got), err)
		}
		// To stdout.
		r = run(t, ev, "get", "-o", "-", "octo-org/app", strconv.FormatInt(a.release.ID, 10), strconv.FormatInt(a.relB.ID, 10)).want(t, 0)
		if !bytes.Equal([]byte(r.stdout), content(t, e.Sim, a.relB.ID)) {
			t.Fatalf("get -o - wrote %d bytes, want %d", len(r.stdout), a.relB.Size)
		}

		relRun := strconv.FormatInt(a.release.ID, 10)
		r = run(t, ev, "get", "octo-org/app", relRun, "dist", "-o", filepath.Join(dir, "x")).want(t, archivectl.ExitFailure)
		mustContain(t, "ambiguous name", r.stderr, "ambiguous", strconv.FormatInt(a.relA.ID, 10), strconv.FormatInt(a.relB.ID, 10))
		r = run(t, ev, "get", "octo-org/app", relRun, "old-logs", "-o", filepath.Join(dir, "x")).want(t, archivectl.ExitFailure)
		mustContain(t, "expired artifact", r.stderr, "expired")
		r = run(t, ev, "get", "octo-org/app", relRun, "nope").want(t, archivectl.ExitFailure)
		mustContain(t, "unknown artifact", r.stderr, "old-logs")
		run(t, ev, "get", "octo-org/app", "1", "dist").want(t, archivectl.ExitFailure)
		run(t, ev, "get", "octo-org/app", "abc", "dist").want(t, archivectl.ExitUsage)
		run(t, ev, "get", "octo-org/app").want(t, archivectl.ExitUsage)
		if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
			t.Fatalf("a failed get left %s behind: %v", filepath.Join(dir, "x"), err)
		}
	})

	t.Run("verify clean", func(t *testing.T) {
		r := run(t, ev, "verify").want(t, 0)
		mustContain(t, "verify", r.stdout, "OK: 3 manifests, 6 objects")
		rep := decode[verifyReport](t, run(t, ev, "verify", "--deep", "--json").want(t, 0).stdout)
		want := a.dist.Size + a.unit.Size + a.e2e.Size + a.relA.Size + a.relB.Size + a.pkg.Size
		if !rep.OK || !rep.Deep || rep.Manifests != 3 || rep.Objects != 7-1 || rep.Hashed != want || rep.Expired != 1 || len(rep.Problems) != 0 {
			t.Fatalf("verify --deep --json: %+v, want 6 objects, %d bytes hashed", rep, want)
		}
	})

	t.Run("verify finds corruption", func(t *testing.T) {
		pkgKey := key(t, a.libM, a.pkg.ID)
		orig := content(t, e.Sim, a.pkg.ID)
		bad := bytes.Clone(orig)
		bad[100] ^= 0xff // same size, different bytes
		putObject(t, e, pkgKey, bad)

		r := run(t, ev, "verify").want(t, archivectl.ExitFailure)
		mustContain(t, "verify", r.stdout, pkgKey, "etag", "FAILED: 1 problem in")
		// Scoped to the other repository, the archive is fine.
		run(t, ev, "verify", "octo-org/app").want(t, 0)
		rep := decode[verifyReport](t, run(t, ev, "verify", "--deep", "--json", "octo-org/lib").want(t, 1).stdout)
		if rep.OK || len(rep.Problems) != 2 || rep.Problems[0].ArtifactID != a.pkg.ID || rep.Problems[0].Key != pkgKey {
			t.Fatalf("verify --deep octo-org/lib: %+v, want the etag and sha256 problems of %s", rep, pkgKey)
		}
		if !strings.Contains(rep.Problems[0].Problem+rep.Problems[1].Problem, "sha256 "+sha(bad)) {
			t.Fatalf("deep problems %+v do not name the corrupt hash", rep.Problems)
		}
		// get refuses the corrupt bytes and leaves nothing behind.
		dir := t.TempDir()
		r = run(t, ev, "get", "octo-org/lib", strconv.FormatInt(a.libRun.ID, 10), "pkg", "-o", filepath.Join(dir, "pkg.zip")).want(t, archivectl.ExitFailure)
		mustContain(t, "get corrupt", r.stderr, "do not match")
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("get of a corrupt object left %v", left)
		}

		// A missing object and a missing SHA256SUMS.
		e2eKey := key(t, a.ciM, a.e2e.ID)
		e.Delete(t, e2eKey)
		l := archive.Layout{Owner: "octo-org", Repo: "app", RunID: a.ci.ID}
		e.Delete(t, l.SumsKey(1))
		r = run(t, ev, "verify", "octo-org/app").want(t, archivectl.ExitFailure)
		mustContain(t, "verify", r.stdout, e2eKey, "missing", l.SumsKey(1), "FAILED: 2 problems")
	})
}

// putObject overwrites an object in MinIO behind the archive's back.
func putObject(t *testing.T, e *s3Env, key string, b []byte) {
	t.Helper()
	_, err := e.Store.Client().PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(e.Bucket), Key: aws.String(e.Store.ObjectKey(key)), Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
	})
	if err != nil {
		t.Fatal(err)
	}
}
