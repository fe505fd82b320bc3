package archivectl

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	synopsis: "owner/repo... | --installation ID [owner/repo...] [--since DATE] [--attestations] [--dry-run] [--json]",
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

With --attestations, the artifacts that are archived (and have a digest)
are checked too: every attempt manifest of their runs is read, and an
artifact whose record in the latest manifest recording it has no
attestation lookup, or a failed one, reopens its run (the run's latest
attempt) the same way, so a worker with ARCHIVER_ATTESTATIONS=true looks
its attestations up again. It is off by default: without attestation
lookups every archived artifact would qualify.

GitHub rate limits are honoured: on a limit the command waits until GitHub
allows the next request and says so on stderr. With GITHUB_TOKEN the
events carry installation 0; with App credentials each repository's
installation is looked up. Use the credentials the worker uses.

Examples:
  archivectl backfill octo-org/app --since 30d --dry-run
  archivectl backfill octo-org/app --attestations
  archivectl backfill --installation 12345678 --json > backfill.json`,
	env: []envGroup{envGitHub, envDestination, envNATS},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &backfillOptions{}
		fs.Int64Var(&o.installation, "installation", 0, "App installation `ID`: every repository it reaches (or only the ones named)")
		fs.StringVar(&o.since, "since", "", "only artifacts created since `DATE` (2026-01-02, RFC 3339, or 72h / 30d ago)")
		fs.BoolVar(&o.attestations, "attestations", false, "also enqueue runs whose archived artifacts lack an attestation lookup, or whose lookup failed")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be enqueued; publish nothing (NATS is not needed)")
		fs.BoolVar(&o.json, "json", false, "print the report as JSON")
		return o.run
	},
}

type backfillOptions struct {
	installation int64
	since        string
	dryRun, json bool
	attestations bool
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
	Attestations bool           `json:"attestations"` // --attestations: without_attestations counts
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
	Unattested     int           `json:"without_attestations"` // archived, attestation lookup failed or never ran
	Runs           []backfillRun `json:"runs"`
	Error          string        `json:"error,omitempty"`
}

type backfillRun struct {
	RunID       int64   `json:"run_id"`
	RunAttempt  int     `json:"run_attempt,omitempty"`
	ArtifactIDs []int64 `json:"artifact_ids"`
	Unattested  []int64 `json:"without_attestations,omitempty"` // reopened with ArtifactIDs
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
	// attest: check the archived artifacts' attestation lookups too.
	attest bool
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
	b := &backfiller{c: c, gh: gh, st: st, since: since, human: !o.json, attest: o.attestations}
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

	rep := &backfillReport{DryRun: o.dryRun, Attestations: o.attestations, Repositories: []backfillRepo{}}
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
	byRun := map[int64]*runWork{}
	work := func(runID int64) *runWork {
		if byRun[runID] == nil {
			byRun[runID] = &runWork{}
		}
		return byRun[runID]
	}
	for _, a := range missing {
		w := work(a.RunID)
		w.missing = append(w.missing, a.ID)
	}
	var unattested []unattested
	if b.attest {
		if unattested, err = b.unattested(ctx, owner, name, archivedOf(candidates, missing)); err != nil {
			return fail(err)
		}
	}
	r.Unattested = len(unattested)
	for _, u := range unattested {
		w := work(u.runID)
		w.unattested = append(w.unattested, u)
	}
	if b.human {
		var attest string
		if b.attest {
			attest = fmt.Sprintf(", %d without attestations", r.Unattested)
		}
		fmt.Fprintf(c.stdout, "%s: %s listed: %d archived, %d expired, %d before --since, %d not archived%s in %s\n",
			r.Repository, plural(r.Listed, "artifact"), r.Archived, r.Expired, r.BeforeSince, r.Missing, attest, plural(len(byRun), "run"))
	}
	for _, runID := range slices.Sorted(maps.Keys(byRun)) {
		run := b.enqueue(ctx, client, t, runID, byRun[runID])
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
	err := eachRun(runs, func(i int, runID int64) error {
		l := archive.Layout{Owner: owner, Repo: name, RunID: runID}
		objs, err := b.st.List(ctx, l.RunPrefix()+"artifacts/")
		present[i] = map[string]bool{}
		for _, o := range objs {
			present[i][o.Key[:strings.LastIndex(o.Key, "/")+1]] = true
		}
		return err
	})
	if err != nil {
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

// eachRun calls f for every run, storeCheckers at a time, and joins the
// errors.
func eachRun(runs []int64, f func(i int, runID int64) error) error {
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, storeCheckers)
	for i, runID := range runs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(i, runID)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// unattested is an archived artifact whose attestation lookup failed (err
// is its error) or never ran (err is "").
type unattested struct {
	runID, id int64
	err       string
}

// archivedOf returns the candidates that are not missing.
func archivedOf(candidates, missing []archive.RemoteArtifact) []archive.RemoteArtifact {
	gone := make(map[int64]bool, len(missing))
	for _, a := range missing {
		gone[a.ID] = true
	}
	return slices.DeleteFunc(slices.Clone(candidates), func(a archive.RemoteArtifact) bool { return gone[a.ID] })
}

// unattested returns the archived artifacts with a digest whose record, in
// the latest attempt manifest of their run that records them, has no
// attestation lookup or a failed one (what the worker looks up again). An
// artifact archived but recorded in no manifest has had no lookup either.
// Each run's attempt manifests are listed once and read.
func (b *backfiller) unattested(ctx context.Context, owner, name string, archived []archive.RemoteArtifact) ([]unattested, error) {
	byRun := map[int64][]int64{}
	for _, a := range archived {
		if a.Digest != "" {
			byRun[a.RunID] = append(byRun[a.RunID], a.ID)
		}
	}
	runs := slices.Sorted(maps.Keys(byRun))
	found := make([][]unattested, len(runs))
	err := eachRun(runs, func(i int, runID int64) error {
		records, err := b.latestRecords(ctx, archive.Layout{Owner: owner, Repo: name, RunID: runID})
		if err != nil {
			return err
		}
		for _, id := range byRun[runID] {
			rec, ok := records[id]
			switch {
			case !ok || (wantsAttestations(rec) && rec.Attestations == nil):
				found[i] = append(found[i], unattested{runID: runID, id: id})
			case wantsAttestations(rec) && rec.Attestations.Error != "":
				found[i] = append(found[i], unattested{runID: runID, id: id, err: rec.Attestations.Error})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the manifests of archived runs: %w", err)
	}
	return slices.Concat(found...), nil
}

// latestRecords reads every attempt manifest of a run (one List) and
// returns each artifact's record from the latest attempt that records it.
func (b *backfiller) latestRecords(ctx context.Context, l archive.Layout) (map[int64]archive.ArtifactRecord, error) {
	objs, err := b.st.List(ctx, l.RunPrefix()+"attempt-")
	if err != nil {
		return nil, err
	}
	type attempt struct {
		n   int
		key string
	}
	var attempts []attempt
	for _, o := range objs {
		if m := manifestKey.FindStringSubmatch(o.Key); m != nil {
			n, _ := strconv.Atoi(m[2])
			attempts = append(attempts, attempt{n, o.Key})
		}
	}
	slices.SortFunc(attempts, func(a, b attempt) int { return cmp.Compare(a.n, b.n) })
	records := map[int64]archive.ArtifactRecord{}
	for _, a := range attempts {
		m, err := readManifest(ctx, b.st, a.key)
		if errors.Is(err, archive.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		for _, r := range m.Artifacts {
			records[r.ID] = r
		}
	}
	return records, nil
}

// wantsAttestations reports whether the worker looks up a record's
// attestations: archived, with GitHub's digest (as package archive
// decides).
func wantsAttestations(r archive.ArtifactRecord) bool {
	return r.Status == archive.StatusArchived && r.GitHubDigest != nil && r.SHA256 != ""
}

// attestReason says why a run's archived artifacts are enqueued: their
// attestation lookups failed or never ran ("" when none).
func attestReason(us []unattested) string {
	var failed, never int
	var first string
	for _, u := range us {
		if u.err == "" {
			never++
			continue
		}
		if failed++; first == "" {
			first = u.err
		}
	}
	var parts []string
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("attestation lookup failed for %s (%s)", plural(failed, "artifact"), first))
	}
	if never > 0 {
		parts = append(parts, "no attestation lookup for "+plural(never, "artifact"))
	}
	return strings.Join(parts, "; ")
}

// runWork is what backfill found for one run: artifacts not archived, and
// archived ones whose attestation lookup failed or never ran.
type runWork struct {
	missing    []int64
	unattested []unattested
}

// enqueue publishes the run event of runID's latest attempt, unless the
// run is not completed. The event reopens the attempt when its manifest
// exists or when it is for attestation lookups.
func (b *backfiller) enqueue(ctx context.Context, client *ghclient.Client, t backfillTarget, runID int64, w *runWork) backfillRun {
	slices.Sort(w.missing)
	r := backfillRun{RunID: runID, ArtifactIDs: w.missing}
	if r.ArtifactIDs == nil {
		r.ArtifactIDs = []int64{}
	}
	for _, u := range w.unattested {
		r.Unattested = append(r.Unattested, u.id)
	}
	slices.Sort(r.Unattested)
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
	if m != nil || len(r.Unattested) > 0 {
		// The attempt has a manifest (complete or not) that lacks these
		// artifacts, or records them without attestations: reopen it,
		// under its own message id, so the event is not dropped as a
		// duplicate of the attempt's first one.
		ev.Reopen = slices.Sorted(slices.Values(slices.Concat(r.ArtifactIDs, r.Unattested)))
	}
	r.MsgID = ev.MsgID()
	r.Reason = attestReason(w.unattested)
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
	var what []string
	if len(r.ArtifactIDs) > 0 || len(r.Unattested) == 0 {
		what = append(what, plural(len(r.ArtifactIDs), "artifact")+" not archived")
	}
	if len(r.Unattested) > 0 {
		what = append(what, plural(len(r.Unattested), "artifact")+" without attestations")
	}
	s += fmt.Sprintf(", %s: %s", strings.Join(what, ", "), r.Result)
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
