package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
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
	Logger       *slog.Logger
	Metrics      *Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Archiver copies a run's artifacts from GitHub into a Store.
type Archiver struct {
	cfg   Config
	log   *slog.Logger
	m     *Metrics
	slots chan struct{}
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
	return &Archiver{cfg: cfg, log: cfg.Logger, m: cfg.Metrics, slots: make(chan struct{}, cfg.Concurrency)}, nil
}

// RunResult is what [Archiver.ArchiveRun] did.
type RunResult struct {
	Manifest *Manifest
	// AlreadyComplete: a complete manifest existed; nothing was done.
	AlreadyComplete bool
}

// ArchiveRun archives every artifact of the event's run attempt and writes
// its manifest last. It is idempotent: artifacts already in the store are
// verified against it and skipped, and a complete manifest ends the job at
// once.
//
// It returns nil only when the manifest is durable and every artifact is
// archived or expired. With final set (the job's last delivery), failed
// artifacts are recorded as "failed" in the manifest and ErrIncomplete is
// returned; otherwise nothing is written and the error says how to retry
// (see [Classify]).
func (a *Archiver) ArchiveRun(ctx context.Context, ev *events.RunCompleted, final bool) (RunResult, error) {
	l := Layout{Owner: ev.Repository.Owner, Repo: ev.Repository.Name, RunID: ev.WorkflowRun.ID}
	attempt := ev.WorkflowRun.RunAttempt
	log := a.log.With("delivery_id", ev.DeliveryID, "repo", ev.Repository.FullName, "run_id", ev.WorkflowRun.ID, "run_attempt", attempt)

	prev, err := a.readManifest(ctx, l.ManifestKey(attempt))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return RunResult{}, err
	}
	if prev != nil && prev.Complete(a.cfg.DeleteFromGitHub) {
		a.m.runs.WithLabelValues("already_complete").Inc()
		log.Info("run already archived", "key", l.ManifestKey(attempt))
		return RunResult{Manifest: prev, AlreadyComplete: true}, nil
	}

	gh, err := a.cfg.GitHub.ForInstallation(ev.InstallationID)
	if err != nil {
		return RunResult{}, err
	}
	remote, err := a.listArtifacts(ctx, gh, ev)
	if err != nil {
		return RunResult{}, err
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

	records := make([]ArtifactRecord, len(remote))
	var wg sync.WaitGroup
	for i, r := range remote {
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return RunResult{}, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-a.slots; wg.Done() }()
			records[i] = a.archiveArtifact(ctx, gh, ev, l, r, log)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return RunResult{}, err
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
	var failed []error
	var retryAt time.Time
	for _, r := range records {
		if r.Status != StatusFailed {
			continue
		}
		failed = append(failed, fmt.Errorf("artifact %d: %w", r.ID, r.err))
		if o, at := Classify(r.err); o == OutcomeRetryAfter && at.After(retryAt) {
			retryAt = at
		}
	}
	if len(failed) > 0 && !final {
		a.m.runs.WithLabelValues("incomplete").Inc()
		err := fmt.Errorf("%w: %d of %d artifacts failed: %w", ErrIncomplete, len(failed), len(records), errors.Join(failed...))
		if !retryAt.IsZero() {
			return RunResult{}, &RetryAfterError{At: retryAt, Err: err}
		}
		return RunResult{}, err
	}

	if err := a.writeManifest(ctx, l, m); err != nil {
		return RunResult{}, err
	}
	log.Info("manifest written", "key", l.ManifestKey(attempt), "artifacts", len(records), "counts", m.Counts())
	if a.cfg.DeleteFromGitHub {
		if err := a.deleteArchived(ctx, gh, ev, l, m, log); err != nil {
			return RunResult{Manifest: m}, err
		}
	}
	if len(failed) > 0 {
		a.m.runs.WithLabelValues("incomplete").Inc()
		return RunResult{Manifest: m}, fmt.Errorf("%w: %d of %d artifacts recorded as failed: %w", ErrIncomplete, len(failed), len(records), errors.Join(failed...))
	}
	a.m.runs.WithLabelValues("complete").Inc()
	return RunResult{Manifest: m}, nil
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
func (a *Archiver) listArtifacts(ctx context.Context, gh GitHub, ev *events.RunCompleted) ([]RemoteArtifact, error) {
	for {
		arts, err := gh.ListRunArtifacts(ctx, ev.Repository.Owner, ev.Repository.Name, ev.WorkflowRun.ID)
		if err == nil {
			return arts, nil
		}
		if !a.waitInline(ctx, err) {
			return nil, err
		}
	}
}

// waitInline sleeps through a short rate limit and reports whether the
// caller should retry.
func (a *Archiver) waitInline(ctx context.Context, err error) bool {
	o, at := Classify(err)
	if o != OutcomeRetryAfter {
		return false
	}
	d := at.Sub(a.cfg.Now())
	if d > a.cfg.MaxInlineWait {
		return false
	}
	a.log.Warn("github rate limit, waiting", "wait", d, "err", err)
	return sleep(ctx, d) == nil
}

func (a *Archiver) readManifest(ctx context.Context, key string) (*Manifest, error) {
	rc, err := a.cfg.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf []byte
	buf, err = readAllLimit(rc, 64<<20)
	if err != nil {
		return nil, fmt.Errorf("archive: read manifest %s: %w", key, err)
	}
	return DecodeManifest(buf)
}

// writeManifest writes SHA256SUMS, then manifest.json (the commit marker).
func (a *Archiver) writeManifest(ctx context.Context, l Layout, m *Manifest) error {
	attempt := m.WorkflowRun.RunAttempt
	sums := m.SHA256Sums(l)
	if err := a.putSmall(ctx, l.SumsKey(attempt), sums, "text/plain; charset=utf-8"); err != nil {
		return err
	}
	b, err := m.Encode()
	if err != nil {
		return err
	}
	return a.putSmall(ctx, l.ManifestKey(attempt), b, "application/json")
}

func (a *Archiver) putSmall(ctx context.Context, key string, b []byte, contentType string) error {
	if _, err := a.cfg.Store.Put(ctx, key, bytesReader(b), int64(len(b)), PutOptions{ContentType: contentType}); err != nil {
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
