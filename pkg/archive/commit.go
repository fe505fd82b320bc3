package archive

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// readVersioned reads a small object (at most limit bytes) and the ETag to
// replace it with. The ETag is taken before the body, so a concurrent
// change makes the caller's conditional write fail rather than overwrite
// what it did not see. A missing object is ErrNotFound, unwrapped by
// context.
func readVersioned(ctx context.Context, st Store, key string, limit int64) ([]byte, string, error) {
	info, err := st.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("archive: stat %s: %w", key, err)
	}
	rc, err := st.Open(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("archive: read %s: %w", key, err)
	}
	defer rc.Close()
	b, err := readAllLimit(rc, limit)
	if err != nil {
		return nil, "", fmt.Errorf("archive: read %s: %w", key, err)
	}
	return b, info.ETag, nil
}

// readManifest reads a manifest and the ETag to replace it with.
func (a *Archiver) readManifest(ctx context.Context, key string) (*Manifest, string, error) {
	b, etag, err := readVersioned(ctx, a.cfg.Store, key, 64<<20)
	if err != nil {
		return nil, "", err
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, "", err
	}
	return m, etag, nil
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
		if err := Sleep(ctx, time.Second+rand.N(time.Second)); err != nil {
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
