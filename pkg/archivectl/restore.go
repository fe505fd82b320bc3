package archivectl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// coldStore is a store whose objects can sit in an archive storage class
// (S3 GLACIER, DEEP_ARCHIVE, Intelligent-Tiering archive tiers), which must
// be restored before they can be read. Stores without storage classes
// (file://) do not implement it: their objects are always readable.
type coldStore interface {
	ObjectState(ctx context.Context, key string) (s3store.ObjectState, error)
	Restore(ctx context.Context, key string, days int, tier types.Tier) (already bool, err error)
}

var _ coldStore = (*s3store.Store)(nil)

var restoreCommand = &command{
	name:     "restore",
	synopsis: "owner/repo [RUN [ARTIFACT]] [--days N] [--tier T] [--attempt N] [--wait]",
	summary:  "ask S3 to restore archived (Glacier, Deep Archive) artifacts so they can be read",
	help: `Asks S3 for a temporary copy of every selected artifact that sits in an
archive storage class (GLACIER, DEEP_ARCHIVE, or an Intelligent-Tiering
archive tier): such objects cannot be read ("get", "verify --deep") until
the restore finishes, hours later. Objects are selected through the
manifests: all archived artifacts of the repository, of run RUN, or the
artifact ARTIFACT (an id, or a name: every artifact of the run with it).

Prints one line per object: restore requested, already in progress,
already restored until DATE (asking again moves that date to --days from
now, as S3 does), or not cold (nothing to do). Restores cost a retrieval
fee per GB (Bulk is the cheapest, Expedited is not available for Deep
Archive). A file:// destination has nothing to restore.

--wait then polls every --interval until every selected object can be
read, with a progress bar on stderr when it is a terminal; --timeout (or
Ctrl-C) stops waiting with exit code 1, leaving the restores running.

Exit code 1 if a request failed or the wait ended early.

Examples:
  archivectl restore octo-org/app 1234567890 dist --days 3 --wait
  archivectl restore octo-org/app --tier Bulk --days 14`,
	env: []envGroup{envDestination, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &restoreOptions{}
		fs.IntVar(&o.days, "days", 7, "keep the restored copy `N` days")
		fs.StringVar(&o.tier, "tier", string(types.TierStandard), "retrieval tier: `Bulk`, Standard or Expedited")
		fs.IntVar(&o.attempt, "attempt", 0, "only the manifest of run attempt `N` (default: every attempt)")
		fs.BoolVar(&o.wait, "wait", false, "wait until every selected object can be read")
		fs.DurationVar(&o.interval, "interval", time.Minute, "with --wait: check the restores every `D`")
		fs.DurationVar(&o.timeout, "timeout", 0, "with --wait: give up after `D` (0: no limit)")
		fs.BoolVar(&o.json, "json", false, "print the outcome as JSON")
		return o.run
	},
}

type restoreOptions struct {
	days, attempt     int
	tier              string
	parsedTier        types.Tier
	wait, json        bool
	interval, timeout time.Duration
}

// restoreResult is one object's outcome (--json prints a list of them).
type restoreResult struct {
	objectID
	StorageClass string     `json:"storage_class,omitempty"`
	Outcome      string     `json:"outcome"` // requested, in_progress, restored, not_cold, failed
	Until        *time.Time `json:"restored_until,omitempty"`
	Error        string     `json:"error,omitempty"`
	// Readable after --wait.
	Readable bool `json:"readable"`
}

// Restore outcomes.
const (
	outcomeRequested  = "requested"
	outcomeInProgress = "in_progress"
	outcomeRestored   = "restored"
	outcomeNotCold    = "not_cold"
	outcomeFailed     = "failed"
)

// restorers bounds the restore requests in flight.
const restorers = 8

func (o *restoreOptions) run(ctx context.Context, c *cli, args []string) error {
	sel, err := o.parse(args)
	if err != nil {
		return err
	}
	st, closeStore, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	entries, err := loadManifests(ctx, st, sel.scope)
	if err != nil {
		return err
	}
	refs, err := sel.objects(entries, o.attempt)
	if err != nil {
		return err
	}
	cs, ok := st.(coldStore)
	if !ok {
		fmt.Fprintf(c.stdout, "%s has no storage classes: all %s can be read, nothing to restore\n", st.Location(""), plural(len(refs), "object"))
		return nil
	}
	if o.wait && o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	results := make([]restoreResult, len(refs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, restorers)
	for i, r := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = o.restoreOne(ctx, cs, r)
		}()
	}
	wg.Wait()
	failed := slices.ContainsFunc(results, func(r restoreResult) bool { return r.Outcome == outcomeFailed })
	var waitErr error
	if o.wait && !failed {
		if !o.json {
			if err := o.print(c, results); err != nil {
				return err
			}
		}
		waitErr = o.waitReadable(ctx, c, cs, results)
	}
	switch {
	case o.json:
		if err := writeJSON(c.stdout, results); err != nil {
			return err
		}
	case !o.wait || failed:
		if err := o.print(c, results); err != nil {
			return err
		}
	}
	if waitErr != nil {
		return waitErr
	}
	if failed {
		return errReported
	}
	return nil
}

// restoreSelection is what the positional arguments select.
type restoreSelection struct {
	scope    scope
	artifact string // id or name, "" for all
}

func (o *restoreOptions) parse(args []string) (restoreSelection, error) {
	var sel restoreSelection
	if len(args) < 1 || len(args) > 3 {
		return sel, usagef("want owner/repo [RUN [ARTIFACT]], got %d arguments", len(args))
	}
	var err error
	if sel.scope.owner, sel.scope.repo, err = parseRepo(args[0]); err != nil {
		return sel, err
	}
	if len(args) > 1 {
		if sel.scope.runID, err = strconv.ParseInt(args[1], 10, 64); err != nil || sel.scope.runID <= 0 {
			return sel, usagef("RUN %q: want a workflow run id", args[1])
		}
	}
	if len(args) > 2 {
		sel.artifact = args[2]
	}
	switch {
	case o.days < 1:
		return sel, usagef("--days %d: want at least 1", o.days)
	case o.attempt < 0:
		return sel, usagef("--attempt %d: want a run attempt (1, 2, ...)", o.attempt)
	case o.wait && o.interval <= 0:
		return sel, usagef("--interval %s: want a positive duration", o.interval)
	case o.timeout < 0:
		return sel, usagef("--timeout %s: want a positive duration, or 0 for no limit", o.timeout)
	}
	o.parsedTier, err = parseTier(o.tier)
	return sel, err
}

// parseTier accepts the S3 retrieval tiers, in any case.
func parseTier(s string) (types.Tier, error) {
	for _, t := range types.Tier("").Values() {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", usagef("--tier %q: want Bulk, Standard or Expedited", s)
}

// objects returns the selected archived artifacts, one ref per key (the
// latest attempt's record), in manifest order.
func (sel restoreSelection) objects(entries []entry, attempt int) ([]objectRef, error) {
	var blocks [][]objectRef // per manifest, latest attempt first
	seen := map[string]bool{}
	read, matched := 0, 0
	for i := len(entries) - 1; i >= 0; i-- {
		e := &entries[i]
		if e.Err != nil || (attempt != 0 && e.Attempt != attempt) {
			continue
		}
		read++
		var block []objectRef
		for _, a := range e.Manifest.Artifacts {
			if sel.artifact != "" && a.Name != sel.artifact && strconv.FormatInt(a.ID, 10) != sel.artifact {
				continue
			}
			matched++
			if a.Status != archive.StatusArchived || a.Key == "" || seen[a.Key] {
				continue
			}
			seen[a.Key] = true
			block = append(block, objectRef{e, a})
		}
		blocks = append(blocks, block)
	}
	slices.Reverse(blocks)
	refs := slices.Concat(blocks...)
	switch {
	case read == 0 && len(entries) > 0 && attempt == 0:
		return nil, fmt.Errorf("no readable manifest: %v", entries[0].Err)
	case read == 0:
		what := "no manifest"
		if attempt != 0 {
			what += fmt.Sprintf(" of attempt %d", attempt)
		}
		return nil, fmt.Errorf("%s in the archive for %s", what, sel.describe())
	case matched == 0:
		return nil, fmt.Errorf("no artifact %q in %s", sel.artifact, sel.describe())
	case len(refs) == 0:
		return nil, fmt.Errorf("nothing to restore in %s: no artifact there is archived (failed or expired at GitHub)", sel.describe())
	}
	return refs, nil
}

func (sel restoreSelection) describe() string {
	s := sel.scope.owner + "/" + sel.scope.repo
	if sel.scope.runID != 0 {
		s += fmt.Sprintf(" run %d", sel.scope.runID)
	}
	return s
}

// restoreOne asks for the restore of one object if it is archived.
func (o *restoreOptions) restoreOne(ctx context.Context, cs coldStore, r objectRef) restoreResult {
	res := restoreResult{objectID: r.id()}
	fail := func(err error) restoreResult {
		res.Outcome, res.Error = outcomeFailed, err.Error()
		return res
	}
	st, err := cs.ObjectState(ctx, r.rec.Key)
	if err != nil {
		return fail(err)
	}
	res.StorageClass = string(st.StorageClass)
	if !st.Archived {
		res.Outcome, res.Readable = outcomeNotCold, true
		return res
	}
	if !st.RestoreOngoing {
		days := o.days
		if st.ArchiveStatus != "" {
			days = 0 // Intelligent-Tiering restores take no Days
		}
		already, err := cs.Restore(ctx, r.rec.Key, days, o.parsedTier)
		if errors.Is(err, s3store.ErrNotArchived) { // moved out of the archive meanwhile
			res.Outcome, res.Readable = outcomeNotCold, true
			return res
		}
		if err != nil {
			return fail(err)
		}
		if !already {
			res.Outcome = outcomeRequested
			return res
		}
		if st, err = cs.ObjectState(ctx, r.rec.Key); err != nil {
			return fail(err)
		}
	}
	res.setState(st)
	return res
}

// setState records a restore's state as ObjectState reports it.
func (r *restoreResult) setState(st s3store.ObjectState) {
	r.Readable = st.Readable()
	switch {
	case st.RestoreOngoing:
		r.Outcome = outcomeInProgress
	case st.Restored():
		r.Outcome = outcomeRestored
		if !st.RestoreExpiry.IsZero() {
			until := st.RestoreExpiry
			r.Until = &until
		}
	}
}

func (o *restoreOptions) print(c *cli, results []restoreResult) error {
	t := newTable(c.stdout, c.color, func(col int, s string) string {
		if col != 6 {
			return sgrNone
		}
		switch {
		case strings.HasPrefix(s, "failed"):
			return sgrRed
		case strings.HasPrefix(s, "restore requested"), strings.HasPrefix(s, "already in progress"):
			return sgrYellow
		}
		return sgrGreen
	}, "REPO", "RUN", "ATTEMPT", "ARTIFACT", "ID", "CLASS", "RESTORE", "KEY")
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Outcome]++
		t.row(r.Repository, strconv.FormatInt(r.RunID, 10), strconv.Itoa(r.Attempt), r.Artifact, strconv.FormatInt(r.ArtifactID, 10),
			orDash(r.StorageClass), o.describe(r), r.Key)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "%s: %d restore requested, %d already in progress, %d already restored, %d not cold, %d failed\n",
		plural(len(results), "object"), counts[outcomeRequested], counts[outcomeInProgress], counts[outcomeRestored], counts[outcomeNotCold], counts[outcomeFailed])
	return nil
}

// describe is the RESTORE column: what happened to the object.
func (o *restoreOptions) describe(r restoreResult) string {
	switch r.Outcome {
	case outcomeRequested:
		return fmt.Sprintf("restore requested (%d days, %s)", o.days, o.parsedTier)
	case outcomeInProgress:
		return "already in progress"
	case outcomeRestored:
		if r.Until != nil {
			return "already restored until " + r.Until.UTC().Format(time.RFC3339)
		}
		return "already restored"
	case outcomeNotCold:
		return "not cold (nothing to do)"
	}
	return "failed: " + r.Error
}

// waitReadable polls the objects that cannot be read yet until all can,
// or ctx ends; it updates results.
func (o *restoreOptions) waitReadable(ctx context.Context, c *cli, cs coldStore, results []restoreResult) error {
	var pending []int
	for i, r := range results {
		if !r.Readable {
			pending = append(pending, i)
		}
	}
	if len(pending) == 0 {
		fmt.Fprintf(c.stderr, "all %s can be read\n", plural(len(results), "object"))
		return nil
	}
	fmt.Fprintf(c.stderr, "waiting for %s to be restored (checking every %s)\n", plural(len(pending), "object"), o.interval)
	prog := newProgress(c.stderr, c.errTTY, "restore --wait", int64(len(pending)), false)
	defer prog.Done()
	for {
		var still []int
		for _, i := range pending {
			st, err := cs.ObjectState(ctx, results[i].Key)
			if err != nil && ctx.Err() == nil {
				// A failed check is not a failed restore: try again next round.
				c.log.Warn("restore check failed", "key", results[i].Key, "err", err)
			}
			if err != nil || !st.Readable() {
				still = append(still, i)
				continue
			}
			results[i].setState(st)
			prog.Add(1)
		}
		pending = still
		if len(pending) == 0 {
			prog.Done()
			fmt.Fprintf(c.stderr, "all %s can be read\n", plural(len(results), "object"))
			return nil
		}
		if err := c.wait(ctx, o.interval); err != nil {
			prog.Done()
			keys := make([]string, len(pending))
			for j, i := range pending {
				keys[j] = results[i].Key
			}
			return fmt.Errorf("stopped waiting with %s of %d still being restored (%s): %w",
				plural(len(pending), "object"), len(results), strings.Join(keys, ", "), err)
		}
	}
}

// restoreCommandLine is the archivectl restore invocation for one
// artifact of a run.
func restoreCommandLine(repo string, runID, artifactID int64) string {
	return fmt.Sprintf("archivectl restore %s %d %d", repo, runID, artifactID)
}

// coldProblem explains why an archived object cannot be read now, and how
// to get it back; "" if it can be read.
func coldProblem(st s3store.ObjectState, repo string, runID, artifactID int64) string {
	if st.Readable() {
		return ""
	}
	cmd := restoreCommandLine(repo, runID, artifactID)
	class := string(st.StorageClass)
	if st.ArchiveStatus != "" {
		class += " " + string(st.ArchiveStatus)
	}
	if st.RestoreOngoing {
		return fmt.Sprintf("in %s, restore in progress: wait for it with `%s --wait`", class, cmd)
	}
	return fmt.Sprintf("in %s, needs a restore before it can be read: `%s` (add --wait to wait for it)", class, cmd)
}
