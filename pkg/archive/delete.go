package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

// deleteArchived deletes from GitHub every archived artifact whose object is
// confirmed in the store (HEAD: same size, same ETag as the verified
// upload, and the same SHA-256 metadata when there is one). It runs only
// after the manifest is written, then rewrites the manifest with
// deleted_from_github set. In dry-run mode it only logs.
func (a *Archiver) deleteArchived(ctx context.Context, gh GitHub, ev *events.RunCompleted, l Layout, m *Manifest, log *slog.Logger) error {
	changed := false
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
			return fmt.Errorf("archive: confirm %s before delete: %w", rec.Key, err)
		}
		if reason := confirmMismatch(info, rec); reason != "" {
			a.m.deletes.WithLabelValues("refused").Inc()
			return Permanent(fmt.Errorf("archive: refusing to delete artifact %d at github: %s %s", rec.ID, rec.Key, reason))
		}
		if a.cfg.DeleteDryRun {
			a.m.deletes.WithLabelValues("dry_run").Inc()
			log.Info("dry run: would delete artifact from github", "artifact_id", rec.ID, "key", rec.Key)
			continue
		}
		if err := gh.DeleteArtifact(ctx, ev.Repository.Owner, ev.Repository.Name, rec.ID); err != nil {
			a.m.deletes.WithLabelValues("failed").Inc()
			if changed {
				// Keep what was deleted so far on record.
				if werr := a.writeManifest(ctx, l, m); werr != nil {
					log.Error("rewrite manifest after partial delete", "err", werr)
				}
			}
			return fmt.Errorf("archive: delete artifact %d at github: %w", rec.ID, err)
		}
		a.m.deletes.WithLabelValues("deleted").Inc()
		log.Info("artifact deleted from github", "artifact_id", rec.ID, "key", rec.Key)
		rec.DeletedFromGitHub = true
		changed = true
	}
	if !changed {
		return nil
	}
	return a.writeManifest(ctx, l, m)
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
