package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// Defaults for [Config].
const (
	DefaultConcurrency   = 4
	DefaultPartSize      = 8 << 20
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
	// PartSize is the smallest multipart part (default 8 MiB); artifacts
	// up to this size are one streaming PUT. Larger artifacts get parts of
	// max(PartSize, length/10000) so any size up to 5 TiB fits. A transfer
	// holds two buffers of its part size: one uploading while the next is
	// read from the download.
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
	// Attestations looks up the attestations (Sigstore bundles) of every
	// archived artifact with a digest and stores them next to it (see
	// Layout.AttestationsKey), when the GitHub client implements
	// [AttestationLister] (ARCHIVER_ATTESTATIONS, default false; GitHub
	// Enterprise Server has no attestations). A failed lookup never fails
	// the artifact: it is recorded in the manifest and retried by a later
	// delivery.
	Attestations bool
	// TrustedRoots, when set with Attestations, gives the Sigstore trusted
	// roots, stored once per UTC day at TrustedRootKey so that bundles can
	// be verified offline later. Default nil: no snapshots.
	TrustedRoots TrustedRootSource
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
	trust  trustSnapshot // attestations.go
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
	// artifact it lacks (nor, with attestations on, does an archived
	// artifact lack its attestation lookup); nothing was done.
	AlreadyComplete bool
}

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
	j, err := a.start(ctx, ev)
	if err != nil {
		return RunResult{}, err
	}
	remote, err := a.listArtifacts(ctx, j)
	if err != nil {
		return RunResult{}, err
	}
	if j.prev != nil && j.prev.Done(a.cfg.DeleteFromGitHub) && len(missingFrom(j.prev.Artifacts, remote)) == 0 && !a.attestationsDue(j) {
		a.m.runs.WithLabelValues("already_complete").Inc()
		j.log.Info("run already archived", "key", j.manifestKey())
		return RunResult{Manifest: j.prev, AlreadyComplete: true}, nil
	}
	if err := a.awaitArtifacts(j, remote, final); err != nil {
		return RunResult{}, err
	}
	records, err := a.archiveListed(ctx, j, remote)
	if err != nil {
		return RunResult{}, err
	}
	if err := a.attestAll(ctx, j, records); err != nil {
		return RunResult{}, err
	}
	m, err := a.commitManifest(ctx, j.l, j.manifest(records, a.cfg.Now()))
	if err != nil {
		return RunResult{}, err
	}
	j.log.Info("manifest written", "key", j.manifestKey(), "artifacts", len(m.Artifacts), "counts", m.Counts(), "complete", m.Complete)
	if a.cfg.DeleteFromGitHub {
		if m, err = a.deleteArchived(ctx, j, m); err != nil {
			return RunResult{Manifest: m}, err
		}
	}
	if err := failures(m, records); err != nil {
		a.m.runs.WithLabelValues("incomplete").Inc()
		return RunResult{Manifest: m}, err
	}
	a.m.runs.WithLabelValues("complete").Inc()
	return RunResult{Manifest: m}, nil
}

// job is one ArchiveRun: the event, where its keys go, its logger, the
// installation's GitHub client, and the attempt's manifest as this delivery
// found it (nil if none).
type job struct {
	ev   *runevent.RunCompleted
	l    Layout
	log  *slog.Logger
	gh   GitHub
	prev *Manifest
	// prevRecs indexes prev's records by artifact id.
	prevRecs map[int64]ArtifactRecord
}

// start reads the attempt's manifest, if any, and picks the
// installation's GitHub client.
func (a *Archiver) start(ctx context.Context, ev *runevent.RunCompleted) (*job, error) {
	j := &job{
		ev:  ev,
		l:   Layout{Owner: ev.Repository.Owner, Repo: ev.Repository.Name, RunID: ev.WorkflowRun.ID},
		log: a.log.With("delivery_id", ev.DeliveryID, "repo", ev.Repository.FullName, "run_id", ev.WorkflowRun.ID, "run_attempt", ev.WorkflowRun.RunAttempt),
	}
	prev, _, err := a.readManifest(ctx, j.manifestKey())
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if prev != nil {
		j.prev = prev
		j.prevRecs = make(map[int64]ArtifactRecord, len(prev.Artifacts))
		for _, r := range prev.Artifacts {
			j.prevRecs[r.ID] = r
		}
	}
	if j.gh, err = a.cfg.GitHub.ForInstallation(ev.InstallationID); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *job) manifestKey() string { return j.l.ManifestKey(j.ev.WorkflowRun.RunAttempt) }

// manifest is this delivery's view of the attempt's manifest.
func (j *job) manifest(records []ArtifactRecord, now time.Time) *Manifest {
	return &Manifest{
		SchemaVersion:  ManifestVersion,
		Repository:     j.ev.Repository,
		InstallationID: j.ev.InstallationID,
		WorkflowRun:    j.ev.WorkflowRun,
		WorkflowName:   j.ev.WorkflowName,
		DeliveryID:     j.ev.DeliveryID,
		ArchivedAt:     now.UTC(),
		Artifacts:      records,
	}
}

// awaitArtifacts hands the job back for later when the run lists no
// artifacts yet and has no manifest: artifacts can appear after the
// completed event. After EmptyListWait, or on the final delivery, an empty
// run is recorded as such.
func (a *Archiver) awaitArtifacts(j *job, remote []RemoteArtifact, final bool) error {
	if len(remote) > 0 || j.prev != nil || final {
		return nil
	}
	wait := j.ev.ReceivedAt.Add(a.cfg.EmptyListWait).Sub(a.cfg.Now())
	if wait <= 0 {
		return nil
	}
	retryIn := max(min(wait, a.cfg.EmptyListWait/4), time.Second)
	a.m.runs.WithLabelValues("waiting").Inc()
	j.log.Info("run lists no artifacts yet, retrying later", "retry_in", retryIn)
	return &RetryAfterError{At: a.cfg.Now().Add(retryIn), Err: errors.New("archive: run lists no artifacts yet")}
}
