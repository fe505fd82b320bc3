package catalog_test

import (
	"fmt"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// A run attempt's rows go to one small JSONL file in the partition of the
// run's creation month.
func ExampleRows() {
	created := time.Date(2025, 3, 14, 9, 26, 0, 0, time.UTC)
	m := &archive.Manifest{
		SchemaVersion: archive.ManifestVersion,
		Repository:    runevent.Repository{Owner: "octo", Name: "app"},
		WorkflowRun:   runevent.WorkflowRun{ID: 42, RunAttempt: 1, HeadSHA: "abc1234", CreatedAt: created},
		ArchivedAt:    created.Add(time.Minute),
		Artifacts:     []archive.ArtifactRecord{{ID: 7, Name: "dist", Status: archive.StatusArchived, Size: 10}},
	}
	rows := catalog.Rows(m)
	fmt.Println(catalog.AttemptKey("octo", "app", catalog.Month(created), 42, 1))
	fmt.Println(rows[0].ArtifactName, rows[0].ManifestKey)
	// Output:
	// _catalog/v1/owner=octo/repo=app/month=2025-03/42-1.jsonl
	// dist octo/app/runs/42/attempt-1/manifest.json
}
