package archive

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// archiveAll settles the artifacts, Concurrency at a time; a failed
// artifact adds the tries of the attempt's earlier manifest. It fails only
// when ctx ends.
func (a *Archiver) archiveAll(ctx context.Context, j *job, remote []RemoteArtifact) ([]ArtifactRecord, error) {
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
			rec := a.archiveArtifact(ctx, j, r)
			if p, ok := j.prevRecs[r.ID]; ok && rec.Status == StatusFailed && p.Status == StatusFailed {
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
func (a *Archiver) listArtifacts(ctx context.Context, j *job) ([]RemoteArtifact, error) {
	for try := 1; ; try++ {
		arts, err := j.gh.ListRunArtifacts(ctx, j.ev.Repository.Owner, j.ev.Repository.Name, j.ev.WorkflowRun.ID)
		if err == nil {
			return arts, nil
		}
		if try > maxRateWaits || !a.waitInline(ctx, err) {
			return nil, err
		}
	}
}

// archiveListed settles every listed artifact, then lists the run again
// just before the manifest (artifacts can appear after the completed event)
// and archives what is new, and finally carries over the records of the
// attempt's earlier manifest for artifacts GitHub no longer lists.
func (a *Archiver) archiveListed(ctx context.Context, j *job, remote []RemoteArtifact) ([]ArtifactRecord, error) {
	records, err := a.archiveAll(ctx, j, remote)
	if err != nil {
		return nil, err
	}
	for range maxRelists {
		again, err := a.listArtifacts(ctx, j)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			j.log.Warn("listing the run again before the manifest failed; writing what was listed", "err", err)
			break
		}
		late := missingFrom(records, again)
		if len(late) == 0 {
			break
		}
		j.log.Info("artifacts appeared while archiving", "count", len(late))
		a.m.runs.WithLabelValues("late_artifacts").Inc()
		more, err := a.archiveAll(ctx, j, late)
		if err != nil {
			return nil, err
		}
		records = append(records, more...)
	}
	if j.prev == nil {
		return records, nil
	}
	kept, err := a.keepUnlisted(ctx, j.prev, records)
	if err != nil {
		return nil, err
	}
	return append(records, kept...), nil
}

// maxRelists bounds the extra listings that pick up artifacts which
// appeared while the run was being archived.
const maxRelists = 3
