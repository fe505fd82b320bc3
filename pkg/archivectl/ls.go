package archivectl

import (
	"context"
	"flag"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

var lsCommand = &command{
	name:     "ls",
	synopsis: "[owner/repo] [--run ID] [--since DATE] [--branch B] [--workflow W] [--name GLOB] [--json] [--from-manifests]",
	summary:  "list archived runs and artifacts (from the catalogue)",
	help: `Lists the archived run attempts and their artifacts: of one repository,
or of the whole destination. One row per artifact; a run attempt without
artifacts shows one row with ARTIFACT "-". --since keeps the runs created
at or after DATE (a run without a creation time in its manifest counts as
created when it was archived). --json prints one object per run attempt,
with its artifact records.

ls reads the catalogue (see "archivectl find"), pruned to the repository
and to the months since --since. When the catalogue has nothing for the
scope (an archive written before the catalogue existed) it reads every
manifest.json instead, one GET per run attempt, and says so on stderr
with the command that builds the catalogue. --from-manifests forces that
scan; its artifact records are the manifests' own (with etag,
size_in_bytes, github_digest, ...), while the catalogue's carry id, name,
status, key, size, sha256, deleted_from_github and the attestation count.

Examples:
  archivectl ls octo-org/app --branch main --since 7d
  archivectl ls --name 'coverage-*' --json | jq '.[].artifacts[].key'`,
	env: []envGroup{envDestination, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &lsOptions{}
		o.query.declare(fs)
		fs.BoolVar(&o.json, "json", false, "print JSON")
		fs.BoolVar(&o.fromManifests, "from-manifests", false, "read every manifest.json instead of the catalogue (slow on a large archive)")
		return o.run
	},
}

type lsOptions struct {
	query         queryFlags
	json          bool
	fromManifests bool
}

// lsRun is one run attempt in ls --json.
type lsRun struct {
	Repository  string                   `json:"repository"`
	RunID       int64                    `json:"run_id"`
	RunAttempt  int                      `json:"run_attempt"`
	Workflow    string                   `json:"workflow,omitempty"`
	HeadBranch  string                   `json:"head_branch,omitempty"`
	HeadSHA     string                   `json:"head_sha,omitempty"`
	Conclusion  string                   `json:"conclusion,omitempty"`
	ArchivedAt  time.Time                `json:"archived_at"`
	ManifestKey string                   `json:"manifest_key"`
	Artifacts   []archive.ArtifactRecord `json:"artifacts"`
}

func (o *lsOptions) run(ctx context.Context, c *cli, args []string) error {
	sc, f, err := o.query.filter(args, c.now())
	if err != nil {
		return err
	}
	return c.withStore(ctx, func(st archive.Store) error {
		if !o.fromManifests {
			rows, err := findRows(ctx, st, f)
			if err != nil {
				return err
			}
			has := len(rows) > 0
			if !has {
				if has, err = hasCatalogue(ctx, st, sc); err != nil {
					return err
				}
			}
			if has {
				return o.print(c, runsFromRows(rows))
			}
			fmt.Fprintf(c.stderr, "archivectl ls: no catalogue for %s, reading every manifest; run 'archivectl catalog rebuild%s' to build it\n", sc, sc.arg())
		}
		runs, unreadable, err := o.scanManifests(ctx, c, st, sc, f.Since)
		if err != nil {
			return err
		}
		if err := o.print(c, runs); err != nil {
			return err
		}
		if unreadable > 0 {
			fmt.Fprintf(c.stderr, "archivectl ls: %s could not be read\n", plural(unreadable, "manifest"))
			return errReported
		}
		return nil
	})
}

// runsFromRows groups catalogue rows (sorted by repository, run, attempt
// and artifact) into run attempts.
func runsFromRows(rows []catalog.Row) []lsRun {
	var runs []lsRun
	for _, r := range rows {
		n := len(runs)
		if n == 0 || runs[n-1].Repository != r.Repository || runs[n-1].RunID != r.RunID || runs[n-1].RunAttempt != int(r.RunAttempt) {
			runs = append(runs, lsRun{
				Repository: r.Repository, RunID: r.RunID, RunAttempt: int(r.RunAttempt), Workflow: r.WorkflowName,
				HeadBranch: r.HeadBranch, HeadSHA: r.HeadSHA, Conclusion: r.Conclusion, ArchivedAt: r.ArchivedAt,
				ManifestKey: r.ManifestKey, Artifacts: []archive.ArtifactRecord{},
			})
			n++
		}
		if r.Status == catalog.StatusNone {
			continue
		}
		a := archive.ArtifactRecord{ID: r.ArtifactID, Name: r.ArtifactName, Status: r.Status, Key: r.Key, Size: r.Size,
			SHA256: r.SHA256, DeletedFromGitHub: r.DeletedFromGitHub}
		if r.Attestations > 0 || len(r.PredicateTypes) > 0 {
			a.Attestations = &archive.AttestationRecord{Count: int(r.Attestations), PredicateTypes: r.PredicateTypes}
		}
		runs[n-1].Artifacts = append(runs[n-1].Artifacts, a)
	}
	return runs
}

// scanManifests is ls without the catalogue: it reads every manifest of
// the scope (one GET each) and applies the filters to them.
func (o *lsOptions) scanManifests(ctx context.Context, c *cli, st archive.Store, sc scope, since time.Time) (runs []lsRun, unreadable int, err error) {
	entries, err := loadManifests(ctx, st, sc)
	if err != nil {
		return nil, 0, err
	}
	name := o.query.name
	for _, e := range entries {
		if e.Err != nil {
			unreadable++
			fmt.Fprintf(c.stderr, "archivectl ls: %s: %v\n", e.Key, e.Err)
			continue
		}
		m := e.Manifest
		if runCreatedAt(m).Before(since) || !o.matchRun(m) {
			continue
		}
		r := lsRun{
			Repository: e.repoName(), RunID: m.WorkflowRun.ID, RunAttempt: m.WorkflowRun.RunAttempt,
			Workflow: workflowName(m), HeadBranch: m.WorkflowRun.HeadBranch, HeadSHA: m.WorkflowRun.HeadSHA,
			Conclusion: m.WorkflowRun.Conclusion, ArchivedAt: m.ArchivedAt, ManifestKey: e.Key,
			Artifacts: []archive.ArtifactRecord{},
		}
		for _, a := range m.Artifacts {
			if name == "" || globMatch(name, a.Name) {
				r.Artifacts = append(r.Artifacts, a)
			}
		}
		if name != "" && len(r.Artifacts) == 0 {
			continue
		}
		runs = append(runs, r)
	}
	return runs, unreadable, nil
}

// runCreatedAt is when the run was created, or when it was archived for a
// manifest without the run's creation time.
func runCreatedAt(m *archive.Manifest) time.Time {
	if m.WorkflowRun.CreatedAt.IsZero() {
		return m.ArchivedAt
	}
	return m.WorkflowRun.CreatedAt
}

// print writes the runs as JSON or as a table.
func (o *lsOptions) print(c *cli, runs []lsRun) error {
	if o.json {
		if runs == nil {
			runs = []lsRun{}
		}
		return writeJSON(c.stdout, runs)
	}
	return o.table(c, runs)
}

func (o *lsOptions) table(c *cli, runs []lsRun) error {
	if len(runs) == 0 {
		fmt.Fprintln(c.stderr, "no archived runs match")
		return nil
	}
	paint := func(col int, s string) string {
		if col == 5 || col == 8 { // CONCLUSION, STATUS
			return statusColor(s)
		}
		return sgrNone
	}
	t := newTable(c.stdout, c.color, paint, "REPO", "RUN", "ATTEMPT", "WORKFLOW", "BRANCH", "CONCLUSION", "ARTIFACT", "ID", "STATUS", "SIZE", "ARCHIVED_AT")
	artifacts := 0
	var bytes int64
	for _, r := range runs {
		head := []string{r.Repository, strconv.FormatInt(r.RunID, 10), strconv.Itoa(r.RunAttempt), orDash(r.Workflow), orDash(r.HeadBranch), orDash(r.Conclusion)}
		if len(r.Artifacts) == 0 {
			t.row(append(head, "-", "-", "-", "-", shortTime(r.ArchivedAt))...)
			continue
		}
		for _, a := range r.Artifacts {
			size := "-"
			if a.Status == archive.StatusArchived {
				size = humanBytes(a.Size)
				bytes += a.Size
			}
			t.row(append(head, a.Name, strconv.FormatInt(a.ID, 10), a.Status, size, shortTime(r.ArchivedAt))...)
			artifacts++
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "%s, %s, %s archived\n", plural(len(runs), "run attempt"), plural(artifacts, "artifact"), humanBytes(bytes))
	return nil
}

// matchRun applies --branch and --workflow.
func (o *lsOptions) matchRun(m *archive.Manifest) bool {
	branch, workflow := o.query.branch, o.query.workflow
	if branch != "" && !globMatch(branch, m.WorkflowRun.HeadBranch) {
		return false
	}
	if workflow != "" {
		w := m.WorkflowRun
		return globMatch(workflow, workflowName(m)) || globMatch(workflow, w.Name) ||
			(w.Path != "" && (globMatch(workflow, w.Path) || globMatch(workflow, path.Base(w.Path))))
	}
	return true
}

func workflowName(m *archive.Manifest) string {
	if m.WorkflowName != "" {
		return m.WorkflowName
	}
	return m.WorkflowRun.Name
}

// globMatch is a case-insensitive path.Match (patterns were validated).
func globMatch(pattern, s string) bool {
	ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(s))
	return ok
}
