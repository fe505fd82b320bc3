package catalog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.FixedZone("x", 3600))

func TestRows(t *testing.T) {
	r := run{owner: "octo", repo: "app", id: 42, attempt: 2, created: t0, sha: "abc1234def", branch: "main",
		workflow: "build", prs: []int64{7, 9}, artifacts: []string{"dist", "coverage"}}
	m := r.manifest()
	m.WorkflowName = "Build and test"
	m.Artifacts[1].Status = archive.StatusExpired
	m.Artifacts[0].Attestations = &archive.AttestationRecord{Count: 2, Key: "k", PredicateTypes: []string{"https://slsa.dev/provenance/v1"}}
	rows := catalog.Rows(m)
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	want := catalog.Row{
		Repository: "octo/app", RunID: 42, RunAttempt: 2, WorkflowName: "Build and test",
		WorkflowPath: ".github/workflows/build.yml", Event: "push", HeadBranch: "main", HeadSHA: "abc1234def",
		PullRequests: []int64{7, 9}, Conclusion: "success",
		RunCreatedAt: time.Date(2025, 3, 14, 8, 26, 53, 589793000, time.UTC),
		RunUpdatedAt: time.Date(2025, 3, 14, 8, 27, 53, 589793000, time.UTC),
		ArtifactID:   4200, ArtifactName: "dist", Status: archive.StatusArchived,
		Key: m.Artifacts[0].Key, Size: 100, SHA256: m.Artifacts[0].SHA256,
		ArchivedAt:   time.Date(2025, 3, 14, 8, 31, 53, 589793000, time.UTC),
		Attestations: 2, PredicateTypes: []string{"https://slsa.dev/provenance/v1"},
		ManifestKey: "octo/app/runs/42/attempt-2/manifest.json",
	}
	if !reflect.DeepEqual(rows[0], want) {
		t.Errorf("row 0:\n got %+v\nwant %+v", rows[0], want)
	}
	if rows[1].Status != archive.StatusExpired || rows[1].Attestations != 0 || rows[1].PredicateTypes == nil {
		t.Errorf("row 1: %+v", rows[1])
	}

	// A run without artifacts or pull requests: one row, lists as [].
	r.artifacts, r.prs = nil, nil
	m = r.manifest()
	rows = catalog.Rows(m)
	if len(rows) != 1 || rows[0].ArtifactID != 0 || rows[0].Status != catalog.StatusNone || rows[0].WorkflowName != "build" {
		t.Fatalf("rows of an attempt without artifacts: %+v", rows)
	}
	b, err := catalog.EncodeJSONL(rows)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"pull_requests":[]`)) || !bytes.Contains(b, []byte(`"predicate_types":[]`)) {
		t.Errorf("empty lists not encoded as []: %s", b)
	}
	var obj map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(b), &obj); err != nil {
		t.Fatal(err)
	}
	var keys, tags []string
	for k := range obj {
		keys = append(keys, k)
	}
	rt := reflect.TypeFor[catalog.Row]()
	for i := range rt.NumField() {
		tags = append(tags, rt.Field(i).Tag.Get("json"))
	}
	slices.Sort(keys)
	slices.Sort(tags)
	if !slices.Equal(keys, tags) {
		t.Errorf("JSON keys %v, want the json tags %v", keys, tags)
	}
	back, err := catalog.DecodeJSONL(bytes.NewReader(b))
	if err != nil || !reflect.DeepEqual(back, rows) {
		t.Errorf("DecodeJSONL = %+v, %v; want %+v", back, err, rows)
	}
}

func TestAttemptKey(t *testing.T) {
	for _, tc := range []struct {
		owner, repo, month string
		run                int64
		attempt            int
		want               string
	}{
		{"octo", "app", "2025-03", 42, 1, "_catalog/v1/owner=octo/repo=app/month=2025-03/42-1.jsonl"},
		{"Octo-Org", "my.repo", "2024-12", 9, 3, "_catalog/v1/owner=Octo-Org/repo=my.repo/month=2024-12/9-3.jsonl"},
		{"a/b", "..", "2024-01", 1, 1, "_catalog/v1/owner=a_b/repo=__/month=2024-01/1-1.jsonl"},
	} {
		if got := catalog.AttemptKey(tc.owner, tc.repo, tc.month, tc.run, tc.attempt); got != tc.want {
			t.Errorf("AttemptKey(%q, %q, %q, %d, %d) = %q, want %q", tc.owner, tc.repo, tc.month, tc.run, tc.attempt, got, tc.want)
		}
	}
	// The Parquet tree has the same partition folders, outside Prefix.
	if got, want := catalog.ParquetPartitionPrefix("a/b", "..", "2024-01"), "_catalog/v1-parquet/owner=a_b/repo=__/month=2024-01/"; got != want {
		t.Errorf("ParquetPartitionPrefix = %q, want %q", got, want)
	}
	if got := catalog.PartitionPrefix("a/b", "..", "2024-01"); got != "_catalog/v1/owner=a_b/repo=__/month=2024-01/" {
		t.Errorf("PartitionPrefix = %q", got)
	}
	if strings.HasPrefix(catalog.ParquetPrefix, catalog.Prefix) || strings.HasPrefix(catalog.Prefix, catalog.ParquetPrefix) {
		t.Errorf("Prefix %q and ParquetPrefix %q nest", catalog.Prefix, catalog.ParquetPrefix)
	}
	if got := catalog.Month(t0); got != "2025-03" {
		t.Errorf("Month = %q", got)
	}
}

func TestFilterValidate(t *testing.T) {
	for _, tc := range []struct {
		f  catalog.Filter
		ok bool
	}{
		{catalog.Filter{}, true},
		{catalog.Filter{SHA: "abc1234"}, true},
		{catalog.Filter{SHA: "ABC1234DEF"}, true},
		{catalog.Filter{SHA: "abc123"}, false},
		{catalog.Filter{SHA: "abc123z"}, false},
		{catalog.Filter{Branch: "release/["}, false},
		{catalog.Filter{Since: t0, Until: t0.Add(-time.Hour)}, false},
	} {
		if err := tc.f.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.f, err, tc.ok)
		}
	}
}

// fixture is a small archive: two repositories, runs over three months.
func fixture() []run {
	feb := time.Date(2025, 2, 10, 12, 0, 0, 0, time.UTC)
	mar := time.Date(2025, 3, 5, 12, 0, 0, 0, time.UTC)
	apr := time.Date(2025, 4, 1, 0, 30, 0, 0, time.UTC)
	return []run{
		{owner: "octo", repo: "app", id: 1, attempt: 1, created: feb, sha: "aaaaaaa111", branch: "main", workflow: "build", artifacts: []string{"dist", "coverage"}},
		{owner: "octo", repo: "app", id: 2, attempt: 1, created: mar, sha: "bbbbbbb222", branch: "release/2.1", workflow: "release", artifacts: []string{"dist"}},
		{owner: "octo", repo: "app", id: 2, attempt: 2, created: mar, sha: "bbbbbbb222", branch: "release/2.1", workflow: "release", artifacts: []string{"dist", "sbom"}},
		{owner: "octo", repo: "app", id: 3, attempt: 1, created: apr, sha: "ccccccc333", branch: "feature/x", workflow: "nightly", prs: []int64{12}, artifacts: []string{"coverage"}},
		{owner: "octo", repo: "lib", id: 4, attempt: 1, created: mar, sha: "aaaaaaa111", branch: "main", workflow: "build"},
		{owner: "other", repo: "app", id: 5, attempt: 1, created: mar, sha: "ddddddd444", branch: "main", workflow: "build", artifacts: []string{"dist"}},
	}
}

func TestWriteFind(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		for _, r := range fixture() {
			archiveRun(t, st, r)
		}
		info, err := st.Stat(t.Context(), catalog.AttemptKey("octo", "app", "2025-03", 2, 2))
		if err != nil || info.ContentType != catalog.ContentTypeJSONL {
			t.Errorf("catalogue file: %+v, %v", info, err)
		}
		for _, tc := range []struct {
			name string
			f    catalog.Filter
			want string
		}{
			{"all", catalog.Filter{}, "octo/app#1.1/dist octo/app#1.1/coverage octo/app#2.1/dist octo/app#2.2/dist octo/app#2.2/sbom octo/app#3.1/coverage octo/lib#4.1/ other/app#5.1/dist"},
			{"sha prefix", catalog.Filter{SHA: "AAAAAAA1"}, "octo/app#1.1/dist octo/app#1.1/coverage octo/lib#4.1/"},
			{"full sha in repo", catalog.Filter{Owner: "octo", Repo: "app", SHA: "aaaaaaa111"}, "octo/app#1.1/dist octo/app#1.1/coverage"},
			{"branch glob", catalog.Filter{Branch: "release/*"}, "octo/app#2.1/dist octo/app#2.2/dist octo/app#2.2/sbom"},
			{"workflow by file", catalog.Filter{Workflow: "nightly.yml"}, "octo/app#3.1/coverage"},
			{"workflow by name and artifact", catalog.Filter{Workflow: "build", Name: "dist"}, "octo/app#1.1/dist other/app#5.1/dist"},
			{"pr", catalog.Filter{PR: 12}, "octo/app#3.1/coverage"},
			{"run", catalog.Filter{Owner: "octo", Repo: "app", RunID: 2}, "octo/app#2.1/dist octo/app#2.2/dist octo/app#2.2/sbom"},
			{"owner", catalog.Filter{Owner: "other"}, "other/app#5.1/dist"},
			{"repo without owner", catalog.Filter{Repo: "lib"}, "octo/lib#4.1/"},
			{"since until", catalog.Filter{Owner: "octo", Since: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 3, 31, 23, 0, 0, 0, time.UTC)}, "octo/app#2.1/dist octo/app#2.2/dist octo/app#2.2/sbom octo/lib#4.1/"},
			{"nothing", catalog.Filter{SHA: "eeeeeee"}, ""},
		} {
			if got := attempts(find(t, st, tc.f)); got != tc.want {
				t.Errorf("%s: Find(%+v)\n got %s\nwant %s", tc.name, tc.f, got, tc.want)
			}
		}
		if _, err := catalog.Find(t.Context(), st, catalog.Filter{SHA: "abc"}); err == nil {
			t.Error("Find with a 3-digit SHA: no error")
		}
	})
}

// TestWriteRace: a writer that read an older manifest loses to one that
// wrote the newer manifest's rows, and its retry ends at the newest.
func TestWriteRace(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		r := fixture()[0]
		key := putManifest(t, st, r)
		catKey := catalog.AttemptKey(r.owner, r.repo, catalog.Month(r.created), r.id, r.attempt)

		for _, existing := range []bool{false, true} {
			if existing {
				if err := catalog.Write(t.Context(), st, key); err != nil {
					t.Fatal(err)
				}
			}
			// Writer A pauses before its put; meanwhile the manifest gains
			// an artifact and writer B writes the catalogue.
			r.artifacts = append(r.artifacts, "late")
			newer := r
			paused := false
			spy := &spyStore{store: st}
			spy.beforePut = func(k string) {
				if k != catKey || paused {
					return
				}
				paused = true
				putManifest(t, st, newer)
				if err := catalog.Write(t.Context(), st, key); err != nil {
					t.Errorf("writer B: %v", err)
				}
			}
			if err := catalog.Write(t.Context(), spy, key); err != nil {
				t.Fatalf("writer A: %v", err)
			}
			if !paused {
				t.Fatal("writer A never put")
			}
			got := attempts(find(t, st, catalog.Filter{RunID: r.id}))
			if !strings.HasSuffix(got, "/late") || strings.Count(got, "/late") != len(r.artifacts)-2 {
				t.Errorf("existing=%v: catalogue is %s, want the newest manifest's rows", existing, got)
			}
			if want := len(r.artifacts); len(strings.Fields(got)) != want {
				t.Errorf("existing=%v: %d rows (%s), want %d", existing, len(strings.Fields(got)), got, want)
			}
		}
	})
}

func TestWriteMissingManifest(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		err := catalog.Write(t.Context(), st, "octo/app/runs/1/attempt-1/manifest.json")
		if !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Write of a missing manifest = %v, want ErrNotFound", err)
		}
	})
}
