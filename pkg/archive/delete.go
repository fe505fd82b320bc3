package archive

import (
	"context"
	"errors"
	"fmt"
)

// deleteArchived deletes from GitHub every archived artifact of m, the
// manifest as committed, whose object is confirmed in the store (HEAD: same
// size, same ETag as the verified upload, and the same SHA-256 metadata when
// there is one). So an artifact is deleted only once a durable manifest
// lists its verified copy. It then commits the manifest again with
// deleted_from_github set, and returns it. In dry-run mode it only logs.
func (a *Archiver) deleteArchived(ctx context.Context, j *job, m *Manifest) (*Manifest, error) {
	log := j.log
	m = MergeManifests(&Manifest{}, m) // a copy to mark
	changed := false
	commit := func() (*Manifest, error) {
		if !changed {
			return m, nil
		}
		return a.commitManifest(ctx, j.l, m)
	}
	for i := range m.Artifacts {
		rec := &m.Artifacts[i]
		if rec.Status != StatusArchived || rec.DeletedFromGitHub {
			continue
		}
		info, err := a.cfg.Store.Stat(ctx, rec.Key)
		if err != nil {
			outcome := "failed" // the store did not answer: retried later
			if errors.Is(err, ErrNotFound) {
				outcome = "refused"
			}
			a.m.deletes.WithLabelValues(outcome).Inc()
			if cm, cerr := commit(); cerr != nil {
				log.Error("rewrite manifest after partial delete", "err", cerr)
			} else {
				m = cm
			}
			return m, fmt.Errorf("archive: confirm %s before delete: %w", rec.Key, err)
		}
		if reason := confirmMismatch(info, rec); reason != "" {
			a.m.deletes.WithLabelValues("refused").Inc()
			if cm, cerr := commit(); cerr != nil {
				log.Error("rewrite manifest after partial delete", "err", cerr)
			} else {
				m = cm
			}
			return m, Permanent(fmt.Errorf("archive: refusing to delete artifact %d at github: %s %s", rec.ID, rec.Key, reason))
		}
		if a.cfg.DeleteDryRun {
			a.m.deletes.WithLabelValues("dry_run").Inc()
			log.Info("dry run: would delete artifact from github", "artifact_id", rec.ID, "key", rec.Key)
			continue
		}
		if err := j.gh.DeleteArtifact(ctx, j.ev.Repository.Owner, j.ev.Repository.Name, rec.ID); err != nil {
			a.m.deletes.WithLabelValues("failed").Inc()
			// Keep what was deleted so far on record.
			if cm, cerr := commit(); cerr != nil {
				log.Error("rewrite manifest after partial delete", "err", cerr)
			} else {
				m = cm
			}
			return m, fmt.Errorf("archive: delete artifact %d at github: %w", rec.ID, err)
		}
		a.m.deletes.WithLabelValues("deleted").Inc()
		log.Info("artifact deleted from github", "artifact_id", rec.ID, "key", rec.Key)
		rec.DeletedFromGitHub = true
		changed = true
	}
	return commit()
}

// confirmMismatch explains why the stored object is not the verified copy
// recorded in rec, or returns "".
func confirmMismatch(info ObjectInfo, rec *ArtifactRecord) string {
	switch {
	case info.Size != rec.Size:
		return fmt.Sprintf("has %d bytes, manifest says %d", info.Size, rec.Size)
	case rec.ETag != "" && info.ETag != rec.ETag:
		return fmt.Sprintf("has etag %s, manifest says %s", info.ETag, rec.ETag)
	case info.Metadata[MetaSHA256] != "" && info.Metadata[MetaSHA256] != rec.SHA256:
		return fmt.Sprintf("has sha256 %s, manifest says %s", info.Metadata[MetaSHA256], rec.SHA256)
	}
	return ""
}
