package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"time"
)

// Bounds of the retry loops of one artifact within one job.
const (
	// maxRateWaits bounds inline waits for GitHub rate limits.
	maxRateWaits = 5
	// maxLeaseLosses bounds transfers restarted after losing the lease.
	maxLeaseLosses = 3
	// maxResumeBackoff caps the wait before a Range resume.
	maxResumeBackoff = 5 * time.Second
)

// archiveArtifact settles one artifact: archived (copied now, or found
// already verified in the store, or waited for while another worker copied
// it), expired, or failed after its tries. Only the holder of the
// artifact's lease transfers it; other workers wait for that transfer and
// record its result, so two jobs that need the same artifact at once cost
// one transfer.
func (a *Archiver) archiveArtifact(ctx context.Context, j *job, r RemoteArtifact) ArtifactRecord {
	rec := baseRecord(r)
	log := j.log.With("artifact_id", r.ID)
	if r.Expired {
		rec.Status = StatusExpired
		a.m.artifacts.WithLabelValues("expired").Inc()
		return rec
	}
	a.m.inFlight.Inc()
	defer a.m.inFlight.Dec()
	fail := func(err error, tries int) ArtifactRecord {
		if ctx.Err() == nil {
			log.Warn("artifact not archived", "tries", tries, "err", err)
		}
		rec.Status, rec.Error, rec.err, rec.Tries = StatusFailed, err.Error(), err, tries
		a.m.artifacts.WithLabelValues("failed").Inc()
		return rec
	}
	tries, rateWaits, losses := 0, 0, 0
	var waitingSince time.Time
	for {
		if err := ctx.Err(); err != nil {
			return fail(err, tries)
		}
		held, holder, err := a.leases.acquire(ctx, r.ID)
		if err == nil && held == nil {
			// Another live worker is transferring it: wait, then record.
			out, found, err := a.existing(ctx, j.l, r)
			if err == nil && found {
				a.m.artifacts.WithLabelValues("skipped").Inc()
				return out
			}
			now := a.cfg.Now()
			if waitingSince.IsZero() {
				waitingSince = now
				a.m.leaseWaits.Inc()
				log.Info("artifact is being archived by another worker, waiting for it", "holder", holder.Holder, "lease_expires", holder.Expires)
			}
			if now.Sub(waitingSince) > a.cfg.MaxLeaseWait {
				return fail(fmt.Errorf("archive: artifact %d still being archived by %s after %s", r.ID, holder.Holder, a.cfg.MaxLeaseWait), tries)
			}
			_ = Sleep(ctx, a.leasePoll())
			continue
		}
		var out ArtifactRecord
		var skipped bool
		tries++ // a failed lease lookup counts as a try too
		if err == nil {
			out, skipped, err = a.transferHeld(ctx, j, r, held, log)
		}
		if err == nil {
			if skipped {
				a.m.artifacts.WithLabelValues("skipped").Inc()
			} else {
				a.m.artifacts.WithLabelValues("archived").Inc()
			}
			return out
		}
		if errors.Is(err, ErrLeaseLost) && ctx.Err() == nil {
			a.m.leasesLost.Inc()
			if losses++; losses <= maxLeaseLosses {
				log.Warn("lost the artifact's lease; deferring to the new holder", "err", err)
				tries--
				continue
			}
		}
		if errors.Is(err, ErrGone) {
			log.Info("artifact gone at github, recording as expired", "err", err)
			rec.Status = StatusExpired
			a.m.artifacts.WithLabelValues("expired").Inc()
			return rec
		}
		a.m.failures.WithLabelValues(failureReason(err)).Inc()
		retry := false
		switch o, _ := Classify(err); o {
		case OutcomeRetryAfter:
			// Rate limits do not use up tries, but their waits are bounded;
			// long ones hand the job back.
			if rateWaits++; rateWaits <= maxRateWaits && a.waitInline(ctx, err) {
				retry = true
				tries = max(tries-1, 0)
			}
		case OutcomeRetry:
			retry = tries < a.cfg.Attempts && Sleep(ctx, time.Duration(tries)*time.Second) == nil
		}
		if !retry || ctx.Err() != nil {
			return fail(err, max(tries, 1))
		}
		log.Warn("artifact transfer failed, retrying", "try", tries, "err", err)
	}
}

// leasePoll is how often a waiting worker checks an artifact that another
// worker is transferring.
func (a *Archiver) leasePoll() time.Duration {
	return min(max(a.cfg.LeaseTTL/8, time.Second), 5*time.Second)
}

// transferHeld transfers the artifact while holding its lease, renewing it
// in the background. If the lease is lost the transfer is cancelled and the
// error wraps ErrLeaseLost. The lease is released at the end.
func (a *Archiver) transferHeld(ctx context.Context, j *job, r RemoteArtifact, held *lease, log *slog.Logger) (ArtifactRecord, bool, error) {
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	kctx, stopKeep := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		held.keep(kctx, func(err error) { cancel(fmt.Errorf("%w: %v", ErrLeaseLost, err)) })
	}()
	out, skipped, err := a.transfer(tctx, j, r, log)
	stopKeep()
	<-kept
	if cause := context.Cause(tctx); err != nil && ctx.Err() == nil && errors.Is(cause, ErrLeaseLost) {
		return out, skipped, cause
	}
	if rerr := held.release(ctx); rerr != nil {
		log.Warn("releasing the artifact's lease failed; it expires on its own", "err", rerr)
	}
	return out, skipped, err
}

// existing records the artifact if a verified copy is already in the
// store.
func (a *Archiver) existing(ctx context.Context, l Layout, r RemoteArtifact) (ArtifactRecord, bool, error) {
	prefix := l.ArtifactPrefix(r.ID)
	found, err := a.cfg.Store.List(ctx, prefix)
	if err != nil {
		return ArtifactRecord{}, false, fmt.Errorf("archive: list %s: %w", prefix, err)
	}
	if len(found) == 0 {
		return ArtifactRecord{}, false, nil
	}
	rec, err := a.recordExisting(ctx, r, found[0].Key)
	return rec, err == nil, err
}

func failureReason(err error) string {
	switch o, _ := Classify(err); {
	case errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrChecksumMismatch):
		return "digest_mismatch"
	case errors.Is(err, ErrSizeMismatch):
		return "size_mismatch"
	case errors.Is(err, ErrBadRedirect):
		return "bad_redirect"
	case errors.Is(err, ErrStalled):
		return "stalled"
	case o == OutcomeRetryAfter:
		return "rate_limited"
	case o == OutcomePermanent:
		return "permanent"
	case o == OutcomeCanceled:
		return "canceled"
	default:
		return "transient"
	}
}

func baseRecord(r RemoteArtifact) ArtifactRecord {
	rec := ArtifactRecord{ID: r.ID, Name: r.Name, SizeInBytes: r.SizeInBytes, DigestMissing: r.Digest == ""}
	if r.Digest != "" {
		d := "sha256:" + r.Digest
		rec.GitHubDigest = &d
	}
	if !r.CreatedAt.IsZero() {
		t := r.CreatedAt.UTC()
		rec.CreatedAt = &t
	}
	if !r.ExpiresAt.IsZero() {
		t := r.ExpiresAt.UTC()
		rec.ExpiresAt = &t
	}
	return rec
}

// transfer copies one artifact, or finds it already archived (skipped).
func (a *Archiver) transfer(ctx context.Context, j *job, r RemoteArtifact, log *slog.Logger) (ArtifactRecord, bool, error) {
	prefix := j.l.ArtifactPrefix(r.ID)
	if rec, found, err := a.existing(ctx, j.l, r); err != nil || found {
		return rec, true, err
	}

	start := a.cfg.Now()
	dl, err := a.open(ctx, j, r, 0)
	if err != nil {
		return ArtifactRecord{}, false, err
	}
	defer func() { dl.Body.Close() }()

	key := prefix + ObjectName(r.Name, dl.ContentType, dl.FileName)
	opts := PutOptions{
		Kind:        KindArtifact,
		ContentType: dl.ContentType,
		IfAbsent:    true,
		Metadata: map[string]string{
			MetaArtifactID: strconv.FormatInt(r.ID, 10),
			MetaRunID:      strconv.FormatInt(j.l.RunID, 10),
			MetaRepository: j.ev.Repository.FullName,
			MetaName:       url.QueryEscape(r.Name),
		},
	}
	var want []byte
	if r.Digest != "" {
		if want, err = hex.DecodeString(r.Digest); err != nil || len(want) != sha256.Size {
			return ArtifactRecord{}, false, Permanent(fmt.Errorf("archive: artifact %d: malformed github digest %q", r.ID, r.Digest))
		}
		opts.Metadata[MetaSHA256] = r.Digest
		opts.SHA256 = want
	}

	h := sha256.New()
	var info ObjectInfo
	if dl.Length <= a.cfg.PartSize {
		info, err = a.putSingle(ctx, key, dl, h, opts)
	} else {
		info, err = a.putMultipart(ctx, j, r, key, &dl, h, want, opts, log)
	}
	if errors.Is(err, ErrExists) {
		// Another worker archived it concurrently; what is there is verified.
		rec, err := a.recordExisting(ctx, r, key)
		return rec, true, err
	}
	if err != nil {
		return ArtifactRecord{}, false, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != nil && sum != r.Digest {
		// Unreachable for stores that verify SHA256, kept as a last guard.
		return ArtifactRecord{}, false, fmt.Errorf("archive: artifact %d: %w", r.ID, ErrDigestMismatch)
	}
	elapsed := a.cfg.Now().Sub(start)
	a.m.bytes.Add(float64(dl.Length))
	a.m.duration.Observe(elapsed.Seconds())
	if elapsed > 0 {
		a.m.throughput.Observe(float64(dl.Length) / elapsed.Seconds())
	}
	rec := baseRecord(r)
	rec.Status, rec.Key, rec.Size, rec.SHA256 = StatusArchived, key, dl.Length, sum
	rec.ContentType, rec.FileName = dl.ContentType, dl.FileName
	rec.ETag, rec.VersionID = info.ETag, info.VersionID
	log.Info("artifact archived", "key", key, "size", dl.Length, "sha256", sum, "duration", elapsed)
	return rec, false, nil
}

// open asks GitHub for a fresh redirect URL and opens it at offset.
func (a *Archiver) open(ctx context.Context, j *job, r RemoteArtifact, offset int64) (*Download, error) {
	u, err := j.gh.DownloadURL(ctx, j.ev.Repository.Owner, j.ev.Repository.Name, r.ID)
	if err != nil {
		return nil, err
	}
	dl, err := a.cfg.Downloader.Open(ctx, u, offset)
	if err != nil {
		return nil, fmt.Errorf("archive: artifact %d: %w", r.ID, err)
	}
	dl.Body = &countingReader{r: dl.Body, add: a.m.downloaded.Add}
	return dl, nil
}

// putSingle streams a small artifact as one PUT. The store verifies the
// SHA-256 given in opts (S3 does so server-side), and Put fails unless
// exactly dl.Length bytes arrive.
func (a *Archiver) putSingle(ctx context.Context, key string, dl *Download, h hash.Hash, opts PutOptions) (ObjectInfo, error) {
	info, err := a.cfg.Store.Put(ctx, key, io.TeeReader(dl.Body, h), dl.Length, opts)
	if err != nil && !errors.Is(err, ErrExists) {
		return info, fmt.Errorf("archive: put %s: %w", key, err)
	}
	return info, err
}

// putMultipart copies a large artifact part by part through [Archiver.pipeParts]:
// the download fills part buffers while the previous part uploads. A broken
// download resumes at a part boundary with a fresh redirect URL and a Range
// request, and a failed part upload is written again from its buffer, so
// bytes already read are not fetched again. The upload completes only when
// the byte count and GitHub's digest match; otherwise it is aborted.
func (a *Archiver) putMultipart(ctx context.Context, j *job, r RemoteArtifact, key string, dlp **Download, h hash.Hash, want []byte, opts PutOptions, log *slog.Logger) (info ObjectInfo, err error) {
	partSize := PartSize((*dlp).Length, a.cfg.PartSize)
	// A multipart upload is verified by us, not by the server.
	opts.SHA256 = nil
	up, err := a.cfg.Store.CreateUpload(ctx, key, opts)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: create upload %s: %w", key, err)
	}
	completed := false
	defer func() {
		if !completed {
			if aerr := up.Abort(context.WithoutCancel(ctx)); aerr != nil {
				log.Warn("abort upload failed", "key", key, "err", aerr)
			}
		}
	}()

	if err := a.pipeParts(ctx, j, r, up, dlp, h, partSize, log.With("key", key)); err != nil {
		if errors.Is(err, ErrUploadGone) && ctx.Err() == nil {
			// Someone aborted our upload: a worker that completed the
			// object, or cleaned up after it. The object decides.
			completed = true
			return ObjectInfo{}, a.uploadGone(ctx, key, err)
		}
		return ObjectInfo{}, err
	}
	if sum := h.Sum(nil); want != nil && !bytes.Equal(sum, want) {
		return ObjectInfo{}, fmt.Errorf("archive: artifact %d: got sha256 %x, github digest %x: %w", r.ID, sum, want, ErrDigestMismatch)
	}
	info, err = up.Complete(ctx)
	if err != nil {
		if errors.Is(err, ErrExists) {
			completed = true // Complete aborted it already.
			return ObjectInfo{}, err
		}
		if errors.Is(err, ErrUploadGone) {
			completed = true
			return ObjectInfo{}, a.uploadGone(ctx, key, err)
		}
		return ObjectInfo{}, fmt.Errorf("archive: complete %s: %w", key, err)
	}
	completed = true
	return info, nil
}

// uploadGone maps a multipart upload that vanished under us: ErrExists if
// the object is now complete at key (record it), else a retryable error.
func (a *Archiver) uploadGone(ctx context.Context, key string, err error) error {
	if _, serr := a.cfg.Store.Stat(ctx, key); serr == nil {
		return fmt.Errorf("archive: %s completed by another writer: %w", key, ErrExists)
	}
	return fmt.Errorf("archive: upload %s: %w", key, err)
}

// reopen resumes a download at offset with a fresh redirect URL. A blob host
// that ignores the Range is read up to offset and discarded.
func (a *Archiver) reopen(ctx context.Context, j *job, r RemoteArtifact, offset, length int64) (*Download, error) {
	dl, err := a.open(ctx, j, r, offset)
	if err != nil {
		return nil, err
	}
	if dl.Length != length {
		dl.Body.Close()
		return nil, fmt.Errorf("archive: artifact %d changed length from %d to %d: %w", r.ID, length, dl.Length, ErrSizeMismatch)
	}
	if skip := offset - dl.Offset; skip > 0 {
		if _, err := io.CopyN(io.Discard, dl.Body, skip); err != nil {
			dl.Body.Close()
			return nil, fmt.Errorf("archive: artifact %d: skip to %d: %w", r.ID, offset, err)
		}
	}
	return dl, nil
}

// PartSize returns the part size for an object of length bytes: at least
// min, and large enough (rounded up to a MiB) that the object fits in
// MaxParts parts.
func PartSize(length, min int64) int64 {
	const mib = 1 << 20
	need := (length + MaxParts - 1) / MaxParts
	need = (need + mib - 1) / mib * mib
	return max(min, need)
}

// recordExisting verifies and records an object found at an artifact's
// key. Only verified uploads are ever completed, so a complete object is a
// verified copy; its SHA-256 comes from its metadata (GitHub's digest) or,
// for artifacts without a digest, from reading it back.
func (a *Archiver) recordExisting(ctx context.Context, r RemoteArtifact, key string) (ArtifactRecord, error) {
	info, err := a.cfg.Store.Stat(ctx, key)
	if err != nil {
		return ArtifactRecord{}, fmt.Errorf("archive: stat %s: %w", key, err)
	}
	sum := info.Metadata[MetaSHA256]
	if sum == "" {
		if sum, err = a.hashObject(ctx, key, info.Size); err != nil {
			return ArtifactRecord{}, err
		}
	}
	if r.Digest != "" && sum != r.Digest {
		return ArtifactRecord{}, Permanent(fmt.Errorf("archive: %s holds sha256 %s but github's digest is %s", key, sum, r.Digest))
	}
	rec := baseRecord(r)
	rec.Status, rec.Key, rec.Size, rec.SHA256 = StatusArchived, key, info.Size, sum
	rec.ContentType, rec.ETag, rec.VersionID = info.ContentType, info.ETag, info.VersionID
	return rec, nil
}

func (a *Archiver) hashObject(ctx context.Context, key string, size int64) (string, error) {
	rc, err := a.cfg.Store.Open(ctx, key)
	if err != nil {
		return "", fmt.Errorf("archive: open %s: %w", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", fmt.Errorf("archive: read %s: %w", key, err)
	}
	if n != size {
		return "", fmt.Errorf("archive: read %s: %d of %d bytes: %w", key, n, size, ErrSizeMismatch)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type countingReader struct {
	r   io.ReadCloser
	add func(float64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(float64(n))
	}
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func readAllLimit(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err == nil && int64(len(b)) > n {
		err = fmt.Errorf("larger than %d bytes", n)
	}
	return b, err
}
