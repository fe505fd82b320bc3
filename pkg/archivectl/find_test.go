package archivectl_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// catalogued is an archive in MinIO whose manifests are written directly
// and catalogued with catalog.Write: runs in the current month and in
// closed months, a pull request, an attempt without artifacts, and one
// repository (octo-org/old) archived before the catalogue existed.
type catalogued struct {
	*s3Env
	ci, release, nightly, empty, old *archive.Manifest
}

// Head SHAs of the runs.
var (
	shaCI      = strings.Repeat("a1", 20)
	shaRelease = strings.Repeat("b2", 20)
	shaNightly = strings.Repeat("c3", 20)
	shaEmpty   = strings.Repeat("d4", 20)
	shaOld     = strings.Repeat("e5", 20)
)

func newCatalogued(t *testing.T) *catalogued {
	t.Helper()
	e := &catalogued{s3Env: newS3Env(t)}
	now := time.Now().UTC().Truncate(time.Second)
	e.ci = e.putManifest(t, true, "octo-org", "app", runevent.WorkflowRun{
		ID: 1001, RunAttempt: 1, Name: "CI", Path: ".github/workflows/ci.yml", Event: "push",
		HeadBranch: "main", HeadSHA: shaCI, Conclusion: "success", CreatedAt: now.Add(-time.Minute),
	}, artifact(11, "dist", archive.StatusArchived, 3000), artifact(12, "coverage-unit", archive.StatusArchived, 200))
	e.release = e.putManifest(t, true, "octo-org", "app", runevent.WorkflowRun{
		ID: 1002, RunAttempt: 2, Name: "Release", Path: ".github/workflows/release.yml", Event: "pull_request",
		HeadBranch: "release/2.1", HeadSHA: shaRelease, Conclusion: "failure", CreatedAt: now.Add(-60 * 24 * time.Hour),
		PullRequests: []int64{42},
	}, artifact(21, "dist", archive.StatusArchived, 5000), artifact(22, "old-logs", archive.StatusExpired, 0))
	e.nightly = e.putManifest(t, true, "octo-org", "lib", runevent.WorkflowRun{
		ID: 2001, RunAttempt: 1, Name: "Nightly", Path: ".github/workflows/nightly.yml", Event: "schedule",
		HeadBranch: "main", HeadSHA: shaNightly, Conclusion: "success", CreatedAt: now.Add(-400 * 24 * time.Hour),
	}, artifact(31, "coverage", archive.StatusArchived, 700))
	e.empty = e.putManifest(t, true, "octo-org", "lib", runevent.WorkflowRun{
		ID: 2002, RunAttempt: 1, Name: "Lint", Path: ".github/workflows/lint.yml", Event: "push",
		HeadBranch: "main", HeadSHA: shaEmpty, Conclusion: "success", CreatedAt: now.Add(-60 * 24 * time.Hour),
	})
	e.old = e.putManifest(t, false, "octo-org", "old", runevent.WorkflowRun{
		ID: 3001, RunAttempt: 1, Name: "CI", Path: ".github/workflows/ci.yml", Event: "push",
		HeadBranch: "main", HeadSHA: shaOld, Conclusion: "success", CreatedAt: now.Add(-2 * time.Hour),
	}, artifact(41, "bin", archive.StatusArchived, 900))
	return e
}

func artifact(id int64, name, status string, size int64) archive.ArtifactRecord {
	a := archive.ArtifactRecord{ID: id, Name: name, Status: status, Size: size, SizeInBytes: size}
	if status == archive.StatusArchived {
		a.SHA256 = strings.Repeat("0", 62) + strconv.FormatInt(id, 10)
	}
	return a
}

// putManifest writes a manifest as the worker would (artifact keys from the
// layout) and, with catalogue, its catalogue file through catalog.Write.
func (e *catalogued) putManifest(t *testing.T, catalogue bool, owner, repo string, run runevent.WorkflowRun, arts ...archive.ArtifactRecord) *archive.Manifest {
	t.Helper()
	l := archive.Layout{Owner: owner, Repo: repo, RunID: run.ID}
	for i := range arts {
		if arts[i].Status == archive.StatusArchived {
			arts[i].Key = l.ArtifactPrefix(arts[i].ID) + arts[i].Name + ".zip"
		}
	}
	m := &archive.Manifest{
		SchemaVersion: archive.ManifestVersion,
		Repository:    runevent.Repository{ID: 7, Owner: owner, Name: repo, FullName: owner + "/" + repo},
		WorkflowRun:   run, WorkflowName: run.Name,
		ArchivedAt: run.CreatedAt.Add(10 * time.Minute), Complete: true, Artifacts: arts,
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	key := l.ManifestKey(run.RunAttempt)
	putObject(t, e.s3Env, key, b)
	if catalogue {
		if err := catalog.Write(t.Context(), e.Store, key); err != nil {
			t.Fatalf("catalog.Write %s: %v", key, err)
		}
	}
	return m
}

// deleteCatalogue removes every catalogue file under prefix (relative to
// catalog.Prefix).
func (e *catalogued) deleteCatalogue(t *testing.T, prefix string) {
	t.Helper()
	objs, err := e.Store.List(t.Context(), catalog.Prefix+prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("no catalogue files under %s", catalog.Prefix+prefix)
	}
	for _, o := range objs {
		e.Delete(t, o.Key)
	}
}

// findRows runs find --json with args and returns its rows.
func findRows(t *testing.T, ev env, args ...string) []catalog.Row {
	t.Helper()
	return decode[[]catalog.Row](t, run(t, ev, append([]string{"find", "--json"}, args...)...).want(t, archivectl.ExitOK).stdout)
}

// attempts renders rows as "run/attempt:artifact" for comparisons.
func attempts(rows []catalog.Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, strconv.FormatInt(r.RunID, 10)+"/"+strconv.FormatInt(r.RunAttempt, 10)+":"+strconv.FormatInt(r.ArtifactID, 10))
	}
	return out
}

// TestFind drives find, ls and catalog rebuild|compact against a
// catalogue in MinIO written by catalog.Write.
func TestFind(t *testing.T) {
	e := newCatalogued(t)
	ev := e.env

	t.Run("filters", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--sha", shaCI}, []string{"1001/1:11", "1001/1:12"}},
			{[]string{"--sha", shaRelease[:7]}, []string{"1002/2:21", "1002/2:22"}},
			{[]string{"--sha", strings.ToUpper(shaNightly[:10])}, []string{"2001/1:31"}},
			{[]string{"--sha", shaEmpty}, []string{"2002/1:0"}},
			{[]string{"--sha", "fffffff"}, nil},
			{[]string{"--branch", "release/*"}, []string{"1002/2:21", "1002/2:22"}},
			{[]string{"octo-org/lib", "--branch", "main"}, []string{"2001/1:31", "2002/1:0"}},
			{[]string{"--workflow", "nightly.yml"}, []string{"2001/1:31"}},
			{[]string{"--workflow", ".github/workflows/release.yml"}, []string{"1002/2:21", "1002/2:22"}},
			{[]string{"--workflow", "Release"}, []string{"1002/2:21", "1002/2:22"}},
			{[]string{"--name", "coverage*"}, []string{"1001/1:12", "2001/1:31"}},
			{[]string{"--name", "dist", "octo-org/app"}, []string{"1001/1:11", "1002/2:21"}},
			{[]string{"--pr", "42"}, []string{"1002/2:21", "1002/2:22"}},
			{[]string{"--pr", "43"}, nil},
			{[]string{"--since", "30d"}, []string{"1001/1:11", "1001/1:12"}},
			{[]string{"--since", "90d", "--until", "30d"}, []string{"1002/2:21", "1002/2:22", "2002/1:0"}},
			{[]string{"--until", "300d"}, []string{"2001/1:31"}},
			{[]string{"--run", "1002", "octo-org/app"}, []string{"1002/2:21", "1002/2:22"}},
		} {
			if got := attempts(findRows(t, ev, tc.args...)); !slices.Equal(got, tc.want) {
				t.Errorf("find %q: %q, want %q", tc.args, got, tc.want)
			}
		}
		rows := findRows(t, ev, "--sha", shaRelease)
		if r := rows[0]; r.Repository != "octo-org/app" || r.WorkflowName != "Release" || r.HeadBranch != "release/2.1" ||
			!slices.Equal(r.PullRequests, []int64{42}) || r.ManifestKey != "octo-org/app/runs/1002/attempt-2/manifest.json" ||
			r.Key != e.release.Artifacts[0].Key || r.Size != 5000 || r.Status != archive.StatusArchived {
			t.Errorf("find --sha %s: row %+v", shaRelease, r)
		}
	})

	t.Run("table", func(t *testing.T) {
		r := run(t, ev, "find", "octo-org/app", "--sha", shaCI).want(t, archivectl.ExitOK)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines, want a header and 2 rows:\n%s", len(lines), r.stdout)
		}
		mustContain(t, "header", lines[0], "REPO", "RUN", "ATTEMPT", "WORKFLOW", "BRANCH", "SHA", "ARTIFACT", "STATUS", "SIZE", "KEY")
		mustContain(t, "find", r.stdout, "octo-org/app", "1001", "CI", "main", shaCI[:12], "coverage-unit", "archived", "2.9 KiB", e.ci.Artifacts[0].Key)
		mustNotContain(t, "find", r.stdout, shaCI[:13])
		mustContain(t, "summary", r.stderr, "2 artifacts in 1 run attempt")

		r = run(t, ev, "find", "--sha", "fffffff").want(t, archivectl.ExitOK)
		if r.stdout != "" {
			t.Fatalf("find without a match printed %q", r.stdout)
		}
		mustContain(t, "no match", r.stderr, "no artifacts match")
		if r := run(t, ev, "find", "--sha", "fffffff", "--json").want(t, 0); strings.TrimSpace(r.stdout) != "[]" {
			t.Fatalf("find --json without a match: %q", r.stdout)
		}
		for _, args := range [][]string{{"--sha", "abc"}, {"--sha", "xyz1234"}, {"--since", "yesterday"}, {"--until", "soon"},
			{"--since", "1d", "--until", "2d"}, {"--name", "["}, {"a/b/c"}, {"--pr", "-1"}} {
			run(t, ev, append([]string{"find"}, args...)...).want(t, archivectl.ExitUsage)
		}
	})

	t.Run("ls from the catalogue", func(t *testing.T) {
		runs := decode[[]lsRun](t, run(t, ev, "ls", "octo-org/app", "--json").want(t, 0).stdout)
		if len(runs) != 2 || runs[0].RunID != 1001 || runs[1].RunID != 1002 || runs[1].RunAttempt != 2 ||
			runs[1].Workflow != "Release" || runs[1].Conclusion != "failure" || len(runs[1].Artifacts) != 2 ||
			runs[1].Artifacts[0].Key != e.release.Artifacts[0].Key || runs[1].ManifestKey != "octo-org/app/runs/1002/attempt-2/manifest.json" {
			t.Fatalf("ls octo-org/app --json: %+v", runs)
		}
		r := run(t, ev, "ls", "octo-org/app", "--since", "30d").want(t, 0)
		mustContain(t, "ls --since 30d", r.stdout, "1001", "coverage-unit")
		mustNotContain(t, "ls --since 30d", r.stdout, "1002")
		mustNotContain(t, "ls stderr", r.stderr, "catalog rebuild")
		mustContain(t, "ls summary", r.stderr, "1 run attempt, 2 artifacts")

		// The attempt without artifacts is listed, except with --name.
		runs = decode[[]lsRun](t, run(t, ev, "ls", "octo-org/lib", "--json").want(t, 0).stdout)
		if len(runs) != 2 || runs[1].RunID != 2002 || len(runs[1].Artifacts) != 0 {
			t.Fatalf("ls octo-org/lib --json: %+v", runs)
		}
		runs = decode[[]lsRun](t, run(t, ev, "ls", "octo-org/lib", "--name", "cov*", "--json").want(t, 0).stdout)
		if len(runs) != 1 || runs[0].RunID != 2001 {
			t.Fatalf("ls octo-org/lib --name 'cov*' --json: %+v", runs)
		}

		// ls answers from the catalogue, not the manifests: a run whose
		// manifest is gone is still listed; --from-manifests does not list it.
		l := archive.Layout{Owner: "octo-org", Repo: "app", RunID: 1001}
		b := e.Read(t, l.ManifestKey(1))
		e.Delete(t, l.ManifestKey(1))
		runs = decode[[]lsRun](t, run(t, ev, "ls", "octo-org/app", "--json").want(t, 0).stdout)
		if len(runs) != 2 {
			t.Fatalf("ls from the catalogue lists %d runs, want 2", len(runs))
		}
		runs = decode[[]lsRun](t, run(t, ev, "ls", "octo-org/app", "--json", "--from-manifests").want(t, 0).stdout)
		if len(runs) != 1 || runs[0].RunID != 1002 || runs[0].Artifacts[1].SizeInBytes != 0 || runs[0].Artifacts[0].SizeInBytes != 5000 {
			t.Fatalf("ls --from-manifests: %+v, want run 1002 with the manifest's records", runs)
		}
		putObject(t, e.s3Env, l.ManifestKey(1), b)
	})

	t.Run("fallback without a catalogue", func(t *testing.T) {
		r := run(t, ev, "ls", "octo-org/old").want(t, 0)
		mustContain(t, "ls octo-org/old", r.stdout, "3001", "bin")
		mustContain(t, "hint", r.stderr, "no catalogue for octo-org/old", "archivectl catalog rebuild octo-org/old")
		r = run(t, ev, "find", "octo-org/old", "--sha", shaOld).want(t, archivectl.ExitFailure)
		mustContain(t, "find without a catalogue", r.stderr, "archivectl catalog rebuild octo-org/old")

		r = run(t, ev, "catalog", "rebuild", "octo-org/old").want(t, 0)
		mustContain(t, "rebuild", r.stdout, "1 manifest read, 1 catalogue file written, 0 failed")
		if got := attempts(findRows(t, ev, "--sha", shaOld)); !slices.Equal(got, []string{"3001/1:41"}) {
			t.Fatalf("find --sha after rebuild: %q", got)
		}
		r = run(t, ev, "ls", "octo-org/old").want(t, 0)
		mustNotContain(t, "ls after rebuild", r.stderr, "no catalogue")
	})

	t.Run("rebuild after deleting the catalogue", func(t *testing.T) {
		before := findRows(t, ev)
		if len(before) != 7 {
			t.Fatalf("find: %d rows, want 7: %q", len(before), attempts(before))
		}
		e.deleteCatalogue(t, "")
		run(t, ev, "find", "--sha", shaCI).want(t, archivectl.ExitFailure)
		r := run(t, ev, "catalog", "rebuild").want(t, 0)
		mustContain(t, "rebuild", r.stdout, "5 manifests read, 5 catalogue files written, 0 failed")
		if after := findRows(t, ev); !slices.EqualFunc(before, after, sameRow) {
			t.Fatalf("after rebuild:\n%+v\nwant\n%+v", after, before)
		}
	})

	t.Run("compact", func(t *testing.T) {
		before := findRows(t, ev)
		r := run(t, ev, "catalog", "compact").want(t, 0)
		// Closed months: release (app) and the empty run (lib) 60 days ago,
		// nightly (lib) 400 days ago; ci and old are in the current month.
		month := func(m *archive.Manifest) string { return catalog.Month(m.WorkflowRun.CreatedAt) }
		mustContain(t, "compact", r.stdout, "PARTITION", "owner=octo-org/repo=app/month="+month(e.release), "owner=octo-org/repo=lib/month="+month(e.nightly), ".parquet")
		mustNotContain(t, "compact", r.stdout, "month="+month(e.ci))
		mustContain(t, "compact summary", r.stderr, "3 partitions compacted")
		parts, err := catalog.Partitions(t.Context(), e.Store, "", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			closed := p.Month < catalog.Month(time.Now())
			if closed && (p.SmallFiles != 0 || p.ParquetFiles != 1) || !closed && (p.SmallFiles == 0 || p.ParquetFiles != 0) {
				t.Errorf("after compact: partition %+v", p)
			}
		}
		if after := findRows(t, ev); !slices.EqualFunc(before, after, sameRow) {
			t.Fatalf("after compact:\n%+v\nwant\n%+v", after, before)
		}
		for _, sha := range []string{shaCI, shaRelease, shaNightly, shaEmpty} {
			if len(findRows(t, ev, "--sha", sha[:8])) == 0 {
				t.Errorf("find --sha %s after compact: no rows", sha[:8])
			}
		}
		// Nothing left to do; a named month is compacted even when open.
		r = run(t, ev, "catalog", "compact").want(t, 0)
		mustContain(t, "second compact", r.stderr, "nothing to compact")
		res := decode[[]catalog.CompactResult](t, run(t, ev, "catalog", "compact", "octo-org/app", "--month", month(e.ci), "--json").want(t, 0).stdout)
		if len(res) != 1 || res[0].Rows != 2 || res[0].Merged != 1 || res[0].Key == "" {
			t.Fatalf("compact --month %s: %+v", month(e.ci), res)
		}
		if after := findRows(t, ev); !slices.EqualFunc(before, after, sameRow) {
			t.Fatalf("after compacting the open month:\n%+v\nwant\n%+v", after, before)
		}
		run(t, ev, "catalog", "compact", "--month", "March").want(t, archivectl.ExitUsage)
	})

	t.Run("usage", func(t *testing.T) {
		r := run(t, ev, "catalog").want(t, archivectl.ExitUsage)
		mustContain(t, "catalog", r.stderr, "catalog rebuild", "catalog compact")
		r = run(t, ev, "catalog", "compact", "-h").want(t, 0)
		mustContain(t, "catalog compact -h", r.stdout, "-month YYYY-MM", "ARCHIVER_DESTINATION", "ARCHIVER_S3_STORAGE_CLASS")
		r = run(t, ev, "find", "-h").want(t, 0)
		mustContain(t, "find -h", r.stdout, "-sha S", "-pr N", "-until DATE", "ARCHIVER_DESTINATION")
		run(t, ev, "catalog", "frobnicate").want(t, archivectl.ExitUsage)
	})
}

// sameRow compares rows as find prints them (times as instants).
func sameRow(a, b catalog.Row) bool {
	return a.Repository == b.Repository && a.RunID == b.RunID && a.RunAttempt == b.RunAttempt && a.ArtifactID == b.ArtifactID &&
		a.ArtifactName == b.ArtifactName && a.Status == b.Status && a.Key == b.Key && a.Size == b.Size && a.SHA256 == b.SHA256 &&
		a.HeadSHA == b.HeadSHA && a.HeadBranch == b.HeadBranch && a.WorkflowName == b.WorkflowName && a.WorkflowPath == b.WorkflowPath &&
		a.Event == b.Event && a.Conclusion == b.Conclusion && slices.Equal(a.PullRequests, b.PullRequests) &&
		a.RunCreatedAt.Equal(b.RunCreatedAt) && a.ArchivedAt.Equal(b.ArchivedAt) && a.ManifestKey == b.ManifestKey
}
