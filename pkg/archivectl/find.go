package archivectl

import (
	"context"
	"flag"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

var findCommand = &command{
	name:     "find",
	synopsis: "[owner/repo] [--sha S] [--branch GLOB] [--workflow GLOB] [--name GLOB] [--pr N] [--since DATE] [--until DATE] [--run ID] [--json]",
	summary:  "find archived artifacts by commit, branch, workflow, name or pull request (from the catalogue)",
	help: `Answers from the archive's catalogue (_catalog/v1/ and, compacted,
_catalog/v1-parquet/: one row per artifact per run attempt), reading only
the partitions that can hold the answer: the repository's when one is
named, and only the months of run creation between --since and --until.
Prints one row per artifact; a run attempt without artifacts shows one
row with ARTIFACT "-". --json prints the catalogue rows.

--sha takes a full head SHA or a prefix of at least 7 hex digits.
--branch, --workflow and --name are globs; --workflow matches the
workflow's name, file name or path. --since and --until bound the run's
creation time.

No match prints "no artifacts match" on stderr (JSON: []) with exit code
0, as ls does. A destination without a catalogue for the scope (archived
before the catalogue existed) is an error (exit code 1): run
'archivectl catalog rebuild' first.

Examples:
  archivectl find --sha 3f2c9e1
  archivectl find octo-org/app --branch 'release/*' --since 2026-03-01 --until 2026-06-01
  archivectl find --workflow nightly --name coverage --since 30d --json | jq -r '.[].key'`,
	env: []envGroup{envDestination, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &findOptions{}
		o.query.declare(fs)
		fs.StringVar(&o.query.sha, "sha", "", "only runs of head commit `S` (full SHA or a prefix of 7+ hex digits)")
		fs.Int64Var(&o.query.pr, "pr", 0, "only runs of pull request `N`")
		fs.StringVar(&o.query.until, "until", "", "only runs created before `DATE` (2026-01-02, RFC 3339, or 72h / 7d ago)")
		fs.BoolVar(&o.json, "json", false, "print the catalogue rows as JSON")
		return o.run
	},
}

type findOptions struct {
	query queryFlags
	json  bool
}

// queryFlags are the filters ls and find share, and find's own (sha, pr,
// until), as typed.
type queryFlags struct {
	runID                  int64
	since, until           string
	branch, workflow, name string
	sha                    string
	pr                     int64
}

// declare declares the flags ls and find share.
func (q *queryFlags) declare(fs *flag.FlagSet) {
	fs.Int64Var(&q.runID, "run", 0, "only workflow run `ID`")
	fs.StringVar(&q.since, "since", "", "only runs created since `DATE` (2026-01-02, RFC 3339, or 72h / 7d ago)")
	fs.StringVar(&q.branch, "branch", "", "only runs of head branch `B` (glob)")
	fs.StringVar(&q.workflow, "workflow", "", "only runs of workflow `W`: its name, file name or path (glob)")
	fs.StringVar(&q.name, "name", "", "only artifacts whose name matches `GLOB`")
}

// filter checks the flags and the optional owner/repo argument and turns
// them into the scope and the catalogue filter.
func (q *queryFlags) filter(args []string, now time.Time) (scope, catalog.Filter, error) {
	sc, err := scopeFromArgs(args, q.runID)
	if err != nil {
		return scope{}, catalog.Filter{}, err
	}
	f := catalog.Filter{Owner: sc.owner, Repo: sc.repo, RunID: q.runID, Branch: q.branch, Workflow: q.workflow, Name: q.name, PR: q.pr}
	for _, p := range []string{q.branch, q.workflow, q.name} {
		if _, err := path.Match(p, ""); err != nil {
			return scope{}, catalog.Filter{}, usagef("pattern %q: %v", p, err)
		}
	}
	if f.Since, err = parseTime("--since", q.since, now); err != nil {
		return scope{}, catalog.Filter{}, err
	}
	if f.Until, err = parseTime("--until", q.until, now); err != nil {
		return scope{}, catalog.Filter{}, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return scope{}, catalog.Filter{}, usagef("--until %s is not after --since %s", q.until, q.since)
	}
	if q.sha != "" {
		f.SHA = strings.ToLower(q.sha)
		if !validSHAPrefix(f.SHA) {
			return scope{}, catalog.Filter{}, usagef("--sha %q: want 7 to 64 hex digits", q.sha)
		}
	}
	if q.pr < 0 {
		return scope{}, catalog.Filter{}, usagef("--pr %d: want a pull request number", q.pr)
	}
	return sc, f, nil
}

// validSHAPrefix: 7 to 64 lowercase hex digits (SHA-1 and SHA-256
// repositories).
func validSHAPrefix(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

func (o *findOptions) run(ctx context.Context, c *cli, args []string) error {
	sc, f, err := o.query.filter(args, c.now())
	if err != nil {
		return err
	}
	return c.withStore(ctx, func(st archive.Store) error {
		rows, err := findRows(ctx, st, f)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			has, err := hasCatalogue(ctx, st, sc)
			if err != nil {
				return err
			}
			if !has {
				return fmt.Errorf("no catalogue for %s: run 'archivectl catalog rebuild%s' to build it from the manifests", sc, sc.arg())
			}
		}
		if o.json {
			if rows == nil {
				rows = []catalog.Row{}
			}
			return writeJSON(c.stdout, rows)
		}
		return findTable(c, rows)
	})
}

// findRows is catalog.Find with archivectl's globs: --branch, --workflow
// and --name match case-insensitively (as ls always has), so they are
// applied here to the rows Find returns for the other filters (they prune
// no partition, so Find reads the same files). An attempt without
// artifacts has no name: --name leaves it out.
func findRows(ctx context.Context, st archive.Store, f catalog.Filter) ([]catalog.Row, error) {
	branch, workflow, name := f.Branch, f.Workflow, f.Name
	f.Branch, f.Workflow, f.Name = "", "", ""
	rows, err := catalog.Find(ctx, st, f)
	if err != nil {
		return nil, fmt.Errorf("read the catalogue: %w", err)
	}
	return slices.DeleteFunc(rows, func(r catalog.Row) bool {
		switch {
		case branch != "" && !globMatch(branch, r.HeadBranch):
			return true
		case workflow != "" && !globMatch(workflow, r.WorkflowName) &&
			!(r.WorkflowPath != "" && (globMatch(workflow, r.WorkflowPath) || globMatch(workflow, path.Base(r.WorkflowPath)))):
			return true
		case name != "" && (r.Status == catalog.StatusNone || !globMatch(name, r.ArtifactName)):
			return true
		}
		return false
	}), nil
}

// hasCatalogue reports whether the catalogue has any partition for the
// scope's repository (or any at all).
func hasCatalogue(ctx context.Context, st archive.Store, sc scope) (bool, error) {
	parts, err := catalog.Partitions(ctx, st, sc.owner, sc.repo)
	if err != nil {
		return false, fmt.Errorf("list the catalogue: %w", err)
	}
	return len(parts) > 0, nil
}

// String names the scope for messages: "octo/app" or "the destination".
func (s scope) String() string {
	if s.owner == "" {
		return "the destination"
	}
	return s.owner + "/" + s.repo
}

// arg is the scope as a command-line argument: " octo/app" or "".
func (s scope) arg() string {
	if s.owner == "" {
		return ""
	}
	return " " + s.owner + "/" + s.repo
}

// shortSHA is the first 12 hex digits of a commit.
func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func findTable(c *cli, rows []catalog.Row) error {
	if len(rows) == 0 {
		fmt.Fprintln(c.stderr, "no artifacts match")
		return nil
	}
	paint := func(col int, s string) string {
		if col == 7 { // STATUS
			return statusColor(s)
		}
		return sgrNone
	}
	t := newTable(c.stdout, c.color, paint, "REPO", "RUN", "ATTEMPT", "WORKFLOW", "BRANCH", "SHA", "ARTIFACT", "STATUS", "SIZE", "KEY")
	attempts, artifacts := 0, 0
	var bytes int64
	for i, r := range rows {
		if i == 0 || r.Repository != rows[i-1].Repository || r.RunID != rows[i-1].RunID || r.RunAttempt != rows[i-1].RunAttempt {
			attempts++
		}
		name, size, key := "-", "-", orDash(r.Key)
		if r.Status != catalog.StatusNone {
			name = r.ArtifactName
			artifacts++
		}
		if r.Status == archive.StatusArchived {
			size = humanBytes(r.Size)
			bytes += r.Size
		}
		t.row(r.Repository, strconv.FormatInt(r.RunID, 10), strconv.FormatInt(r.RunAttempt, 10), orDash(r.WorkflowName),
			orDash(r.HeadBranch), orDash(shortSHA(r.HeadSHA)), name, r.Status, size, key)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "%s in %s, %s archived\n", plural(artifacts, "artifact"), plural(attempts, "run attempt"), humanBytes(bytes))
	return nil
}
