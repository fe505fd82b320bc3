package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

// catalogTimeout bounds the catalogue write after a run.
const catalogTimeout = 30 * time.Second

// writeCatalog writes the catalogue file of the attempt whose manifest m
// is (catalog.Write reads the manifest as stored). The catalogue is
// derived data: a failure never fails the job; it is logged and counted
// in archiver_catalog_write_failures_total, and `archivectl catalog
// rebuild` repairs it.
func (w *Worker) writeCatalog(m *archive.Manifest, log *slog.Logger) {
	if w.cfg.Catalog == nil {
		return
	}
	key := archive.Layout{Owner: m.Repository.Owner, Repo: m.Repository.Name, RunID: m.WorkflowRun.ID}.ManifestKey(m.WorkflowRun.RunAttempt)
	ctx, cancel := context.WithTimeout(w.jobsCtx, catalogTimeout)
	defer cancel()
	if err := catalog.Write(ctx, w.cfg.Catalog, key); err != nil {
		w.m.catalogFailures.Inc()
		log.Warn("catalogue file not written; catalog rebuild repairs it", "key", key, "err", err)
		return
	}
	w.m.catalogWrites.Inc()
}
