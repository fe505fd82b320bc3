package worker_test

import (
	"context"
	"sync/atomic"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

// countingArchiver counts ArchiveRun calls.
type countingArchiver struct {
	worker.Archiver
	calls atomic.Int64
}

func (c *countingArchiver) ArchiveRun(ctx context.Context, ev *runevent.RunCompleted, final bool) (archive.RunResult, error) {
	c.calls.Add(1)
	return c.Archiver.ArchiveRun(ctx, ev, final)
}
