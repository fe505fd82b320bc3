package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// Defaults for [Config].
const (
	DefaultConcurrency   = 4
	DefaultPartSize      = 16 << 20
	DefaultEmptyListWait = 2 * time.Minute
	DefaultMaxInlineWait = 90 * time.Second
	DefaultAttempts      = 3
	DefaultMaxResumes    = 8
	// MaxParts is S3's limit on parts per multipart upload.
	MaxParts = 10000
)

// Config configures an [Archiver].
type Config struct {
	Store      Store
	GitHub     Installations
	Downloader Downloader
	// Concurrency bounds artifact transfers in flight across all runs
	// (ARCHIVER_CONCURRENCY, default 4).
	Concurrency int
	// PartSize is the smallest multipart part (default 16 MiB); artifacts
	// up to this size are one streaming PUT. Larger artifacts get parts of
	// max(PartSize, length/10000) so any size up to 5 TiB fits.
	PartSize int64
	// EmptyListWait is how long after an event was received an empty
	// artifact list is retried before the run is recorded as having none
	// (default 2 min): artifacts can appear after the completed event.
	EmptyListWait time.Duration
	// MaxInlineWait is the longest rate-limit wait taken inside a job
	// (default 90 s); longer waits hand the job back with a delay.
	MaxInlineWait time.Duration
	// Attempts per artifact within one job for transient failures
	// (default 3).
	Attempts int
	// MaxResumes bounds Range resumes of one artifact (default 8).
	MaxResumes int
	// DeleteFromGitHub deletes verified artifacts at GitHub after the
	// manifest is written (ARCHIVER_DELETE_FROM_GITHUB, default false).
	DeleteFromGitHub bool
	// DeleteDryRun logs what would be deleted instead of deleting.
	DeleteDryRun bool
	// LeaseTTL is how long an artifact's transfer lease lasts without
	// renewal (ARCHIVER_LEASE_TTL, default 2 min); the holder renews it
	// every TTL/3. A worker that cannot renew in time stops its transfer.
	LeaseTTL time.Duration
	// MaxLeaseWait bounds how long a job waits for another worker's
	// transfer of an artifact before the artifact counts as failed for this
	// delivery (default 2 h).
	MaxLeaseWait time.Duration
	// Holder names this worker in leases (default host/pid/random).
	Holder  string
	Logger  *slog.Logger
	Metrics *Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Archiver copies a run's artifacts from GitHub into a Store.
type Archiver struct {
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	slots  chan struct{}
	leases *leases
}

// New returns an Archiver; cfg.Store, cfg.GitHub and cfg.Downloader are
// required.
func New(cfg Config) (*Archiver, error) {
	if cfg.Store == nil || cfg.GitHub == nil || cfg.Downloader == nil {
		return nil, errors.New("archive: Store, GitHub and Downloader are required")
	}
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)
	cfg.PartSize = cmp.Or(cfg.PartSize, DefaultPartSize)
	cfg.EmptyListWait = cmp.Or(cfg.EmptyListWait, DefaultEmptyListWait)
	cfg.MaxInlineWait = cmp.Or(cfg.MaxInlineWait, DefaultMaxInlineWait)
	cfg.Attempts = cmp.Or(cfg.Attempts, DefaultAttempts)
	cfg.MaxResumes = cmp.Or(cfg.MaxResumes, DefaultMaxResumes)
	cfg.LeaseTTL = cmp.Or(cfg.LeaseTTL, DefaultLeaseTTL)
	cfg.MaxLeaseWait = cmp.Or(cfg.MaxLeaseWait, DefaultMaxLeaseWait)
	if cfg.Holder == "" {
		cfg.Holder = defaultHolder()
	}
	if cfg.LeaseTTL < 3*time.Second {
		return nil, fmt.Errorf("archive: lease TTL %s: want at least 3s", cfg.LeaseTTL)
	}
	if cfg.PartSize < 5<<20 {
		return nil, fmt.Errorf("archive: part size %d: S3 needs at least 5 MiB", cfg.PartSize)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	return &Archiver{
		cfg:    cfg,
		log:    cfg.Logger,
		m:      cfg.Metrics,
		slots:  make(chan struct{}, cfg.Concurrency),
		leases: &leases{store: cfg.Store, ttl: cfg.LeaseTTL, holder: cfg.Holder, now: cfg.Now},
	}, nil
}

// RunResult is what [Archiver.ArchiveRun] did.
type RunResult struct {
	// Manifest is the attempt's manifest as committed (merged with what
	// other workers recorded), or nil when none was written.
	Manifest *Manifest
	// AlreadyComplete: a complete manifest existed and GitHub lists no
	// artifact it lacks; nothing was done.
	AlreadyComplete bool
}

// maxRelists bounds the extra listings that pick up artifacts which
// appeared while the run was being archived.
const maxRelists = 3

// ArchiveRun archives every artifact of the event's run attempt and
// commits its manifest. It is idempotent and safe to run concurrently with
// other workers on the same run or artifact: artifacts already in the store
// are verified and recorded, an artifact that another live worker is
// transferring is waited for (see the lease in [Config.LeaseTTL]), and the
// manifest is written with conditional writes that merge with what others
// recorded.
//
// The manifest is written at the end of every delivery that settled its
// artifacts, even when some failed: it lists every settled artifact
// (archived, expired, or failed with its error and tries) and says
// "complete": false while any failed, so later deliveries go on. It returns
// nil only when no artifact is failed (and, with deletion on, the archived
// ones are deleted at GitHub). When some failed, the error wraps
// ErrIncomplete and classifies as permanent if one of the failures is
// (dead-letter now), else as retryable.
//
// final (the job's last delivery) only stops waiting for artifacts to
// appear in an empty listing.
func (a *Archiver) ArchiveRun(ctx context.Context, ev *runevent.RunCompleted, final bool) (RunResult, error) {
	l := Layout{Owner: ev.Repository.Owner, Repo: ev.Repository.Name, RunID: ev.WorkflowRun.ID}
	attempt := ev.WorkflowRun.RunAttempt
	log := a.log.With("delivery_id", ev.DeliveryID, "repo", ev.Repository.FullName, "run_id", ev.WorkflowRun.ID, "run_attempt", attempt)

	prev, _, err := a.readManifest(ctx, l.ManifestKey(attempt))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return RunResult{}, err
	}
	gh, err := a.cfg.GitHub.ForInstallation(ev.InstallationID)
	if err != nil {
		return RunResult{}, err
	}
	remote, err := a.listArtifacts(ctx, gh, ev)
	if err != nil {
		return RunResult{}, err
	}
	if prev != nil && prev.Done(a.cfg.DeleteFromGitHub) && len(missingFrom(prev.Artifacts, remote)) == 0 {
		a.m.runs.WithLabelValues("already_complete").Inc()
		log.Info("run already archived", "key", l.ManifestKey(attempt))
		return RunResult{Manifest: prev, AlreadyComplete: true}, nil
	}
	if len(remote) == 0 && prev == nil {
		if wait := ev.ReceivedAt.Add(a.cfg.EmptyListWait).Sub(a.cfg.Now()); wait > 0 && !final {
			a.m.runs.WithLabelValues("waiting").Inc()
			log.Info("run lists no artifacts yet, retrying later", "retry_in", min(wait, a.cfg.EmptyListWait/4))
			return RunResult{}, &RetryAfterError{
				At:  a.cfg.Now().Add(max(min(wait, a.cfg.EmptyListWait/4), time.Second)),
				Err: errors.New("archive: run lists no artifacts yet"),
			}
		}
	}
	var prevRecs map[int64]ArtifactRecord
	if prev != nil {
		prevRecs = make(map[int64]ArtifactRecord, len(prev.Artifacts))
		for _, r := range prev.Artifacts {
			prevRecs[r.ID] = r
		}
	}

	records, err := a.archiveAll(ctx, gh, ev, l, remote, prevRecs, log)
	if err != nil {
		return RunResult{}, err
	}
	// Artifacts can appear after the completed event: list again just
	// before the manifest, and archive anything new.
	for range maxRelists {
		again, err := gh.ListRunArtifacts(ctx, ev.Repository.Owner, ev.Repository.Name, ev.WorkflowRun.ID)
		if err != nil {
			if ctx.Err() != nil {
				return RunResult{}, ctx.Err()
			}
			log.Warn("listing the run again before the manifest failed; writing what was listed", "err", err)
			break
		}
		late := missingFrom(records, again)
		if len(late) == 0 {
			break
		}
		log.Info("artifacts appeared while archiving", "count", len(late))
		a.m.runs.WithLabelValues("late_artifacts").Inc()
		more, err := a.archiveAll(ctx, gh, ev, l, late, prevRecs, log)
		if err != nil {
			return RunResult{}, err
		}
		records = append(records, more...)
	}
	if prev != nil {
		kept, err := a.keepUnlisted(ctx, prev, records)
		if err != nil {
			return RunResult{}, err
		}
		records = append(records, kept...)
	}

	m := &Manifest{
		SchemaVersion:  ManifestVersion,
		Repository:     ev.Repository,
		InstallationID: ev.InstallationID,
		WorkflowRun:    ev.WorkflowRun,
		WorkflowName:   ev.WorkflowName,
		DeliveryID:     ev.DeliveryID,
		ArchivedAt:     a.cfg.Now().UTC(),
		Artifacts:      records,
	}
	m, err = a.commitManifest(ctx, l, m)
	if err != nil {
		return RunResult{}, err
	}
	log.Info("manifest written", "key", l.ManifestKey(attempt), "artifacts", len(m.Artifacts), "counts", m.Counts(), "complete", m.Complete)
	if a.cfg.DeleteFromGitHub {
		if m, err = a.deleteArchived(ctx, gh, ev, l, m, log); err != nil {
			return RunResult{Manifest: m}, err
		}
	}
	if err := a.failures(m, records); err != nil {
		a.m.runs.WithLabelValues("incomplete").Inc()
		return RunResult{Manifest: m}, err
	}
	a.m.runs.WithLabelValues("complete").Inc()
	return RunResult{Manifest: m}, nil
}

// archiveAll settles the artifacts, Concurrency at a time. prev holds the
// records of an earlier manifest of this attempt, for the try counts. It
// fails only when ctx ends.
func (a *Archiver) archiveAll(ctx context.Context, gh GitHub, ev *runevent.RunCompleted, l Layout, remote []RemoteArtifact, prev map[int64]ArtifactRecord, log *slog.Logger) ([]ArtifactRecord, error) {
	records := make([]ArtifactRecord, len(remote))
	var wg sync.WaitGroup
	for i, r := range remote {
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-a.slots }()
			rec := a.archiveArtifact(ctx, gh, ev, l, r, log)
			if p, ok := prev[r.ID]; ok && rec.Status == StatusFailed && p.Status == StatusFailed {
				rec.Tries += p.Tries
			}
			records[i] = rec
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return records, nil
}

// missingFrom returns the artifacts of remote that have no record.
func missingFrom(records []ArtifactRecord, remote []RemoteArtifact) []RemoteArtifact {
	have := make(map[int64]bool, len(records))
	for _, r := range records {
		have[r.ID] = true
	}
	var out []RemoteArtifact
	for _, r := range remote {
		if !have[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// failures returns nil when the committed manifest has no failed artifact,
// else an ErrIncomplete error with this delivery's failures: permanent when
// one of them is (the run is dead-lettered at once), rate limited until the
// latest retry time, else retryable.
func (a *Archiver) failures(m *Manifest, records []ArtifactRecord) error {
	still := map[int64]bool{}
	for _, r := range m.Artifacts {
		if r.Status == StatusFailed {
			still[r.ID] = true
		}
	}
	if len(still) == 0 {
		return nil
	}
	var errs []error
	var retryAt time.Time
	permanent := false
	for _, r := range records {
		if !still[r.ID] || r.err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("artifact %d: %w", r.ID, r.err))
		switch o, at := Classify(r.err); o {
		case OutcomePermanent:
			permanent = true
		case OutcomeRetryAfter:
			if at.After(retryAt) {
				retryAt = at
			}
		}
	}
	if len(errs) == 0 {
		// Failed records from other deliveries that this one did not retry.
		errs = append(errs, errors.New("failed in an earlier delivery"))
	}
	err := fmt.Errorf("%w: %d of %d artifacts failed (recorded in the manifest): %w", ErrIncomplete, len(still), len(m.Artifacts), errors.Join(errs...))
	switch {
	case permanent:
		return Permanent(err)
	case !retryAt.IsZero():
		return &RetryAfterError{At: retryAt, Err: err}
	}
	return err
}

// keepUnlisted carries over the records of an earlier manifest of this
// attempt for artifacts GitHub no longer lists: deleted by us (a crash or an
// S3 outage before the manifest recorded it) or expired since. A manifest
// never loses an archived artifact: its object is confirmed in the store
// (size, ETag, SHA-256) and the record kept; with deletion on, an archived
// artifact gone at GitHub counts as deleted. An earlier failure whose
// artifact is gone becomes expired.
func (a *Archiver) keepUnlisted(ctx context.Context, prev *Manifest, records []ArtifactRecord) ([]ArtifactRecord, error) {
	listed := make(map[int64]bool, len(records))
	for _, r := range records {
		listed[r.ID] = true
	}
	var kept []ArtifactRecord
	for _, p := range prev.Artifacts {
		if listed[p.ID] {
			continue
		}
		switch p.Status {
		case StatusArchived:
			info, err := a.cfg.Store.Stat(ctx, p.Key)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("archive: confirm %s: %w", p.Key, err)
			}
			if err != nil {
				p.Status, p.Error = StatusFailed, "archived object is missing from the store"
			} else if reason := confirmMismatch(info, &p); reason != "" {
				p.Status, p.Error = StatusFailed, "archived object changed: "+reason
			} else if a.cfg.DeleteFromGitHub {
				p.DeletedFromGitHub = true
			}
		case StatusFailed:
			p.Status, p.Error = StatusExpired, ""
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// listArtifacts lists the run's artifacts, waiting inline for short rate
// limits.
func (a *Archiver) listArtifacts(ctx context.Context, gh GitHub, ev *runevent.RunCompleted) ([]RemoteArtifact, error) {
	for try := 1; ; try++ {
		arts, err := gh.ListRunArtifacts(ctx, ev.Repository.Owner, ev.Repository.Name, ev.WorkflowRun.ID)
		if err == nil {
			return arts, nil
		}
		if try > maxRateWaits || !a.waitInline(ctx, err) {
			return nil, err
		}
	}
}

// waitInline sleeps through a short rate limit and reports whether the
// caller should retry. It waits at least one second, even for a retry time
// in the past (clock skew, Retry-After: 0).
func (a *Archiver) waitInline(ctx context.Context, err error) bool {
	o, at := Classify(err)
	if o != OutcomeRetryAfter {
		return false
	}
	d := max(at.Sub(a.cfg.Now()), time.Second)
	if d > a.cfg.MaxInlineWait {
		return false
	}
	a.log.Warn("github rate limit, waiting", "wait", d, "err", err)
	return sleep(ctx, d) == nil
}

// readManifest reads a manifest and the ETag to replace it with. The ETag
// is taken before the body, so a concurrent change makes the conditional
// write fail rather than overwrite what it did not see.
func (a *Archiver) readManifest(ctx context.Context, key string) (*Manifest, string, error) {
	info, err := a.cfg.Store.Stat(ctx, key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("archive: stat manifest %s: %w", key, err)
	}
	rc, err := a.cfg.Store.Open(ctx, key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("archive: read manifest %s: %w", key, err)
	}
	defer rc.Close()
	buf, err := readAllLimit(rc, 64<<20)
	if err != nil {
		return nil, "", fmt.Errorf("archive: read manifest %s: %w", key, err)
	}
	m, err := DecodeManifest(buf)
	if err != nil {
		return nil, "", err
	}
	return m, info.ETag, nil
}

// maxManifestWrites bounds the read-merge-write rounds of one commit.
const maxManifestWrites = 8

// commitManifest merges m with the attempt's stored manifest and writes the
// result conditionally (If-None-Match when there was none, If-Match on the
// ETag read otherwise). When another worker wrote in between, it reads
// again, merges and retries, so no writer's record is ever lost. It returns
// the manifest as written. SHA256SUMS, derived from it, is written first.
func (a *Archiver) commitManifest(ctx context.Context, l Layout, m *Manifest) (*Manifest, error) {
	key := l.ManifestKey(m.WorkflowRun.RunAttempt)
	for try := 1; ; try++ {
		stored, etag, err := a.readManifest(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		merged := MergeManifests(&Manifest{}, m)
		if stored != nil {
			merged = MergeManifests(stored, m)
		}
		if err := a.putSmall(ctx, l.SumsKey(merged.WorkflowRun.RunAttempt), merged.SHA256Sums(l), "text/plain; charset=utf-8", PutOptions{}); err != nil {
			return nil, err
		}
		b, err := merged.Encode()
		if err != nil {
			return nil, err
		}
		opts := PutOptions{IfAbsent: stored == nil, IfMatch: etag}
		err = a.putSmall(ctx, key, b, "application/json", opts)
		if err == nil {
			return merged, nil
		}
		if !errors.Is(err, ErrExists) && !errors.Is(err, ErrConflict) {
			return nil, err
		}
		a.m.manifestConflicts.Inc()
		if try >= maxManifestWrites {
			return nil, fmt.Errorf("archive: write %s: still changing after %d merges: %w", key, try, err)
		}
		a.log.Info("manifest changed by another worker, merging again", "key", key, "try", try)
		if err := sleep(ctx, time.Second+rand.N(time.Second)); err != nil {
			return nil, err
		}
	}
}

func (a *Archiver) putSmall(ctx context.Context, key string, b []byte, contentType string, opts PutOptions) error {
	opts.ContentType = contentType
	if _, err := a.cfg.Store.Put(ctx, key, bytesReader(b), int64(len(b)), opts); err != nil {
		return fmt.Errorf("archive: write %s: %w", key, err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
