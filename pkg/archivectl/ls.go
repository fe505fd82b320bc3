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
)

var lsCommand = &command{
	name:     "ls",
	synopsis: "[owner/repo] [--run ID] [--since DATE] [--branch B] [--workflow W] [--name GLOB] [--json]",
	summary:  "list archived runs and artifacts (from the manifests)",
	help: `Lists the archived run attempts and their artifacts, read from each
attempt's manifest.json: of one repository, or of the whole destination.
One row per artifact; a run attempt without artifacts shows one row with
ARTIFACT "-". --since keeps attempts archived at or after DATE. --json
prints one object per run attempt, with the manifest's artifact records.

Examples:
  archivectl ls octo-org/app --branch main --since 7d
  archivectl ls --name 'coverage-*' --json | jq '.[].artifacts[].key'`,
	env: []envGroup{envDestination, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &lsOptions{}
		fs.Int64Var(&o.runID, "run", 0, "only this workflow run `ID`")
		fs.StringVar(&o.since, "since", "", "only attempts archived since `DATE` (2026-01-02, RFC 3339, or 72h / 7d ago)")
		fs.StringVar(&o.branch, "branch", "", "only runs of head branch `B` (glob)")
		fs.StringVar(&o.workflow, "workflow", "", "only runs of workflow `W`: its name, file name or path (glob)")
		fs.StringVar(&o.name, "name", "", "only artifacts whose name matches `GLOB`")
		fs.BoolVar(&o.json, "json", false, "print JSON")
		return o.run
	},
}

type lsOptions struct {
	runID                  int64
	since                  string
	branch, workflow, name string
	json                   bool
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
	sc, err := scopeFromArgs(args, o.runID)
	if err != nil {
		return err
	}
	since, err := parseSince(o.since, c.now())
	if err != nil {
		return err
	}
	for _, p := range []string{o.branch, o.workflow, o.name} {
		if _, err := path.Match(p, ""); err != nil {
			return usagef("pattern %q: %v", p, err)
		}
	}
	st, closeStore, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	entries, err := loadManifests(ctx, st, sc)
	if err != nil {
		return err
	}

	var runs []lsRun
	unreadable := 0
	for _, e := range entries {
		if e.Err != nil {
			unreadable++
			fmt.Fprintf(c.stderr, "archivectl ls: %s: %v\n", e.Key, e.Err)
			continue
		}
		m := e.Manifest
		if m.ArchivedAt.Before(since) || !o.matchRun(m) {
			continue
		}
		r := lsRun{
			Repository: e.repoName(), RunID: m.WorkflowRun.ID, RunAttempt: m.WorkflowRun.RunAttempt,
			Workflow: workflowName(m), HeadBranch: m.WorkflowRun.HeadBranch, HeadSHA: m.WorkflowRun.HeadSHA,
			Conclusion: m.WorkflowRun.Conclusion, ArchivedAt: m.ArchivedAt, ManifestKey: e.Key,
			Artifacts: []archive.ArtifactRecord{},
		}
		for _, a := range m.Artifacts {
			if o.name == "" || globMatch(o.name, a.Name) {
				r.Artifacts = append(r.Artifacts, a)
			}
		}
		if o.name != "" && len(r.Artifacts) == 0 {
			continue
		}
		runs = append(runs, r)
	}

	if o.json {
		if runs == nil {
			runs = []lsRun{}
		}
		if err := writeJSON(c.stdout, runs); err != nil {
			return err
		}
	} else if err := o.table(c, runs); err != nil {
		return err
	}
	if unreadable > 0 {
		fmt.Fprintf(c.stderr, "archivectl ls: %s could not be read\n", plural(unreadable, "manifest"))
		return errReported
	}
	return nil
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
	if o.branch != "" && !globMatch(o.branch, m.WorkflowRun.HeadBranch) {
		return false
	}
	if o.workflow != "" {
		w := m.WorkflowRun
		return globMatch(o.workflow, workflowName(m)) || globMatch(o.workflow, w.Name) ||
			(w.Path != "" && (globMatch(o.workflow, w.Path) || globMatch(o.workflow, path.Base(w.Path))))
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
