package archivectl

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

var backfillCommand = &command{
	name:     "backfill",
	synopsis: "owner/repo... | --installation ID [owner/repo...] [--since DATE] [--dry-run] [--json]",
	summary:  "enqueue the runs of artifacts GitHub still has but the archive lacks",
	help: `Lists every artifact of the repositories (all pages of "List artifacts
for a repository"), or of every repository of App installation ID, and
looks each one up in the archive (an object under its artifact folder).
The runs of the artifacts that are missing are enqueued as run events
(source "backfill") with the same message id as the webhook's,
wr:<run_id>:<run_attempt> of the run's latest attempt, so a run already
queued is not queued twice. Expired artifacts and, with --since, artifacts
created before DATE are skipped.

A run that is not completed yet is skipped (the webhook enqueues it when it
completes). A run attempt that already has a manifest (complete or not) but
lacks some listed artifacts is reopened: its event carries the missing ids
and its own message id, wr:<run_id>:<run_attempt>:reopen:<hash>, so it is
not dropped as a duplicate of the first event; the worker lists the run
again and adds what is missing to the manifest.

GitHub rate limits are honoured: on a limit the command waits until GitHub
allows the next request and says so on stderr. With GITHUB_TOKEN the
events carry installation 0; with App credentials each repository's
installation is looked up. Use the credentials the worker uses.

Examples:
  archivectl backfill octo-org/app --since 30d --dry-run
  archivectl backfill --installation 12345678 --json > backfill.json`,
	env: []envGroup{envGitHub, envDestination, envNATS},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &backfillOptions{}
		fs.Int64Var(&o.installation, "installation", 0, "App installation `ID`: every repository it reaches (or only the ones named)")
		fs.StringVar(&o.since, "since", "", "only artifacts created since `DATE` (2026-01-02, RFC 3339, or 72h / 30d ago)")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be enqueued; publish nothing (NATS is not needed)")
		fs.BoolVar(&o.json, "json", false, "print the report as JSON")
		return o.run
	},
}

type backfillOptions struct {
	installation int64
	since        string
	dryRun, json bool
}

// Results of a run in the backfill report.
const (
	resultEnqueued     = "enqueued"
	resultWouldEnqueue = "would enqueue"
	resultDuplicate    = "duplicate"
	resultSkipped      = "skipped"
	resultError        = "error"
)

// backfillReport is what backfill did (--json prints it).
type backfillReport struct {
	DryRun       bool           `json:"dry_run"`
	Since        *time.Time     `json:"since,omitempty"`
	Repositories []backfillRepo `json:"repositories"`
}

type backfillRepo struct {
	Repository     string        `json:"repository"`
	InstallationID int64         `json:"installation_id"`
	Listed         int           `json:"artifacts_listed"`
	Expired        int           `json:"expired"`
	BeforeSince    int           `json:"before_since"`
	Archived       int           `json:"archived"`
	Missing        int           `json:"not_archived"`
	Runs           []backfillRun `json:"runs"`
	Error          string        `json:"error,omitempty"`
}

type backfillRun struct {
	RunID       int64   `json:"run_id"`
	RunAttempt  int     `json:"run_attempt,omitempty"`
	ArtifactIDs []int64 `json:"artifact_ids"`
	MsgID       string  `json:"msg_id,omitempty"`
	Result      string  `json:"result"`
	Sequence    uint64  `json:"stream_sequence,omitempty"`
	Reason      string  `json:"reason,omitempty"`
}

// backfillTarget is a repository to backfill, with its installation.
type backfillTarget struct {
	repo runevent.Repository
	inst int64
}

// backfiller holds what every repository's backfill shares.
type backfiller struct {
	c     *cli
	gh    *ghclient.Clients
	st    archive.Store
	pub   *events.Publisher // nil with --dry-run
	since time.Time
	human bool
}

func (o *backfillOptions) run(ctx context.Context, c *cli, args []string) error {
	if o.installation == 0 && len(args) == 0 {
		return usagef("name owner/repo, or --installation ID")
	}
	type named struct{ owner, repo string }
	var names []named
	for _, a := range args {
		owner, repo, err := parseRepo(a)
		if err != nil {
			return err
		}
		names = append(names, named{owner, repo})
	}
	since, err := parseSince(o.since, c.now())
	if err != nil {
		return err
	}
	gh, useToken, err := c.gitHub(false)
	if err != nil {
		return err
	}
	if o.installation != 0 && useToken {
		return usagef("--installation needs App credentials (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY), not GITHUB_TOKEN")
	}
	st, closeStore, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	b := &backfiller{c: c, gh: gh, st: st, since: since, human: !o.json}
	if !o.dryRun {
		js, topo, closeNATS, err := c.jetStream()
		if err != nil {
			return err
		}
		defer closeNATS()
		if _, err := js.Stream(ctx, topo.Stream); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("stream %s not found: start the webhook or worker once to provision it (or check ARCHIVER_STREAM)", topo.Stream)
			}
			return fmt.Errorf("stream %s: %w", topo.Stream, err)
		}
		b.pub = events.NewPublisher(js, topo, 0)
	}

	rep := &backfillReport{DryRun: o.dryRun, Repositories: []backfillRepo{}}
	if !since.IsZero() {
		rep.Since = &since
	}
	failed := false
	// The repositories to backfill, each with its installation.
	var targets []backfillTarget
	switch {
	case o.installation != 0 && len(names) == 0:
		client, err := gh.Installation(o.installation)
		if err != nil {
			return err
		}
		for page := 1; page != 0; {
			var repos []runevent.Repository
			err := c.retryRateLimited(ctx, fmt.Sprintf("listing the repositories of installation %d", o.installation), func() (err error) {
				repos, page, err = client.ListInstallationReposPage(ctx, page)
				return err
			})
			if err != nil {
				return err
			}
			for _, r := range repos {
				targets = append(targets, backfillTarget{repo: r, inst: o.installation})
			}
		}
		if b.human {
			fmt.Fprintf(c.stdout, "installation %d: %s\n", o.installation, plural(len(targets), "repository"))
		}
	default:
		for _, n := range names {
			t, err := b.resolve(ctx, n.owner, n.repo, o.installation, useToken)
			if err != nil {
				failed = true
				rep.Repositories = append(rep.Repositories, backfillRepo{Repository: n.owner + "/" + n.repo, Runs: []backfillRun{}, Error: err.Error()})
				if b.human {
					fmt.Fprintf(c.stdout, "%s/%s: %v\n", n.owner, n.repo, err)
				}
				continue
			}
			targets = append(targets, t)
		}
	}
	for _, t := range targets {
		r := b.repository(ctx, t)
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.Error != "" || slices.ContainsFunc(r.Runs, func(r backfillRun) bool { return r.Result == resultError }) {
			failed = true
		}
		rep.Repositories = append(rep.Repositories, r)
	}
	if o.json {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	} else {
		b.summary(rep)
	}
	if failed {
		return errReported
	}
	return nil
}

// resolve finds a named repository's GitHub spelling and id and, with App
// credentials and no --installation, the App's installation on it.
func (b *backfiller) resolve(ctx context.Context, owner, name string, inst int64, useToken bool) (backfillTarget, error) {
	full := owner + "/" + name
	if inst == 0 && !useToken {
		app, err := b.gh.App()
		if err != nil {
			return backfillTarget{}, err
		}
		err = b.c.retryRateLimited(ctx, "finding the installation of "+full, func() (err error) {
			inst, err = app.RepoInstallation(ctx, owner, name)
			return err
		})
		if err != nil {
			return backfillTarget{}, err
		}
	}
	client, err := b.gh.Installation(inst)
	if err != nil {
		return backfillTarget{}, err
	}
	var repo runevent.Repository
	err = b.c.retryRateLimited(ctx, "getting "+full, func() (err error) {
		repo, err = client.GetRepo(ctx, owner, name)
		return err
	})
	return backfillTarget{repo: repo, inst: inst}, err
}

// repository backfills one repository.
func (b *backfiller) repository(ctx context.Context, t backfillTarget) backfillRepo {
	c, owner, name := b.c, t.repo.Owner, t.repo.Name
	r := backfillRepo{Repository: t.repo.FullName, InstallationID: t.inst, Runs: []backfillRun{}}
	fail := func(err error) backfillRepo {
		r.Error = err.Error()
		if b.human {
			fmt.Fprintf(c.stdout, "%s: %v\n", r.Repository, err)
		}
		return r
	}
	client, err := b.gh.Installation(t.inst)
	if err != nil {
		return fail(err)
	}
	var arts []archive.RemoteArtifact
	for page := 1; page != 0; {
		var got []archive.RemoteArtifact
		err := c.retryRateLimited(ctx, fmt.Sprintf("listing artifacts of %s (page %d)", r.Repository, page), func() (err error) {
			got, page, err = client.ListRepoArtifactsPage(ctx, owner, name, page)
			return err
		})
		if err != nil {
			return fail(err)
		}
		arts = append(arts, got...)
		if c.errTTY {
			fmt.Fprintf(c.stderr, "\r\x1b[2K%s: listing artifacts: %d so far", r.Repository, len(arts))
		}
	}
	if c.errTTY {
		fmt.Fprint(c.stderr, "\r\x1b[2K")
	}
	r.Listed = len(arts)
	var candidates []archive.RemoteArtifact
	for _, a := range arts {
		switch {
		case a.Expired:
			r.Expired++
		case a.CreatedAt.Before(b.since):
			r.BeforeSince++
		default:
			candidates = append(candidates, a)
		}
	}
	missing, err := b.missing(ctx, owner, name, candidates)
	if err != nil {
		return fail(err)
	}
	r.Archived = len(candidates) - len(missing)
	r.Missing = len(missing)
	byRun := map[int64][]int64{}
	for _, a := range missing {
		byRun[a.RunID] = append(byRun[a.RunID], a.ID)
	}
	if b.human {
		fmt.Fprintf(c.stdout, "%s: %s listed: %d archived, %d expired, %d before --since, %d not archived in %s\n",
			r.Repository, plural(r.Listed, "artifact"), r.Archived, r.Expired, r.BeforeSince, r.Missing, plural(len(byRun), "run"))
	}
	for _, runID := range slices.Sorted(maps.Keys(byRun)) {
		ids := byRun[runID]
		slices.Sort(ids)
		run := b.enqueue(ctx, client, t, runID, ids)
		if b.human {
			fmt.Fprintf(c.stdout, "  %s\n", run.describe())
		}
		r.Runs = append(r.Runs, run)
	}
	return r
}

// storeCheckers bounds the archive listings in flight.
const storeCheckers = 8

// missing returns the artifacts that have no object in the archive (under
// Layout.ArtifactPrefix), listing each run's artifact folders once.
func (b *backfiller) missing(ctx context.Context, owner, name string, arts []archive.RemoteArtifact) ([]archive.RemoteArtifact, error) {
	var runs []int64
	index := map[int64]int{} // run id → position in runs
	for _, a := range arts {
		if _, ok := index[a.RunID]; !ok {
			index[a.RunID] = len(runs)
			runs = append(runs, a.RunID)
		}
	}
	present := make([]map[string]bool, len(runs)) // artifact prefixes with an object, per run
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, storeCheckers)
	for i, runID := range runs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			l := archive.Layout{Owner: owner, Repo: name, RunID: runID}
			objs, err := b.st.List(ctx, l.RunPrefix()+"artifacts/")
			present[i], errs[i] = map[string]bool{}, err
			for _, o := range objs {
				present[i][o.Key[:strings.LastIndex(o.Key, "/")+1]] = true
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("look up artifacts in the archive: %w", err)
	}
	var out []archive.RemoteArtifact
	for _, a := range arts {
		l := archive.Layout{Owner: owner, Repo: name, RunID: a.RunID}
		if !present[index[a.RunID]][l.ArtifactPrefix(a.ID)] {
			out = append(out, a)
		}
	}
	return out, nil
}

// enqueue publishes the run event of runID's latest attempt, unless the
// run is not completed or that attempt's manifest is already complete.
func (b *backfiller) enqueue(ctx context.Context, client *ghclient.Client, t backfillTarget, runID int64, ids []int64) backfillRun {
	r := backfillRun{RunID: runID, ArtifactIDs: ids}
	var run ghclient.Run
	err := b.c.retryRateLimited(ctx, fmt.Sprintf("getting run %d of %s", runID, t.repo.FullName), func() (err error) {
		run, err = client.GetRun(ctx, t.repo.Owner, t.repo.Name, runID)
		return err
	})
	switch {
	case errors.Is(err, ghclient.ErrNotFound):
		r.Result, r.Reason = resultSkipped, "run not found at GitHub (deleted?)"
		return r
	case err != nil:
		r.Result, r.Reason = resultError, err.Error()
		return r
	}
	r.RunAttempt = run.WorkflowRun.RunAttempt
	if run.WorkflowRun.Status != "completed" {
		r.Result, r.Reason = resultSkipped, fmt.Sprintf("run is %s; the webhook enqueues it when it completes", run.WorkflowRun.Status)
		return r
	}
	l := archive.Layout{Owner: t.repo.Owner, Repo: t.repo.Name, RunID: runID}
	m, err := readManifest(ctx, b.st, l.ManifestKey(r.RunAttempt))
	if err != nil && !errors.Is(err, archive.ErrNotFound) {
		r.Result, r.Reason = resultError, err.Error()
		return r
	}
	repo := run.Repository
	if repo.ID == 0 {
		repo = t.repo
	}
	ev := &runevent.RunCompleted{
		SchemaVersion:  runevent.SchemaVersion,
		Source:         runevent.SourceBackfill,
		ReceivedAt:     b.c.now().UTC(),
		InstallationID: t.inst,
		Repository:     repo,
		WorkflowRun:    run.WorkflowRun,
		WorkflowName:   run.WorkflowRun.Name,
	}
	if m != nil {
		// The attempt has a manifest (complete or not) that lacks these
		// artifacts: reopen it, under its own message id, so the event is
		// not dropped as a duplicate of the attempt's first one.
		ev.Reopen = ids
	}
	r.MsgID = ev.MsgID()
	if b.pub == nil {
		r.Result = resultWouldEnqueue
		return r
	}
	res, err := b.pub.Publish(ctx, ev)
	switch {
	case err != nil:
		r.Result, r.Reason = resultError, err.Error()
	case res.Duplicate:
		r.Result, r.Reason = resultDuplicate, "already queued within the duplicate window"
	default:
		r.Result, r.Sequence = resultEnqueued, res.Sequence
	}
	return r
}

// describe renders a run's result for humans.
func (r backfillRun) describe() string {
	var details []string
	if r.MsgID != "" {
		details = append(details, r.MsgID)
	}
	if r.Sequence != 0 {
		details = append(details, fmt.Sprintf("stream sequence %d", r.Sequence))
	}
	if r.Reason != "" {
		details = append(details, r.Reason)
	}
	s := fmt.Sprintf("run %d", r.RunID)
	if r.RunAttempt != 0 {
		s += fmt.Sprintf(" attempt %d", r.RunAttempt)
	}
	s += fmt.Sprintf(", %s not archived: %s", plural(len(r.ArtifactIDs), "artifact"), r.Result)
	if len(details) > 0 {
		s += " (" + strings.Join(details, "; ") + ")"
	}
	return s
}

func (b *backfiller) summary(rep *backfillReport) {
	counts := map[string]int{}
	for _, r := range rep.Repositories {
		for _, run := range r.Runs {
			counts[run.Result]++
		}
	}
	var parts []string
	for _, k := range []string{resultEnqueued, resultWouldEnqueue, resultDuplicate, resultSkipped, resultError} {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	fmt.Fprintf(b.c.stdout, "%s, runs: %s\n", plural(len(rep.Repositories), "repository"), cmp.Or(strings.Join(parts, ", "), "nothing to enqueue"))
}
