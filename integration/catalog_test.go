//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

// catalogWait bounds the wait for the catalogue files: the worker writes
// each one right after its manifest, before it settles the run, so they
// are normally there once the queue is idle.
const catalogWait = 30 * time.Second

// catalogKey is the full S3 key of the catalogue file of the attempt whose
// manifest is m.
func catalogKey(m *archive.Manifest) string {
	return prefix + "/" + catalog.AttemptKey(m.Repository.Owner, m.Repository.Name,
		catalog.Month(m.WorkflowRun.CreatedAt), m.WorkflowRun.ID, m.WorkflowRun.RunAttempt)
}

// catalogRow is what the invariant compares of a catalogue row: the
// fields a reader selects and filters on.
type catalogRow struct {
	Repository     string
	RunID          int64
	RunAttempt     int64
	HeadSHA        string
	ArtifactID     int64
	Name           string
	Status         string
	SHA256         string
	Key            string
	Size           int64
	Deleted        bool
	Attestations   int64
	PredicateTypes string
}

func projectRows(rows []catalog.Row) []catalogRow {
	out := make([]catalogRow, len(rows))
	for i, r := range rows {
		out[i] = catalogRow{
			Repository: r.Repository, RunID: r.RunID, RunAttempt: r.RunAttempt, HeadSHA: r.HeadSHA,
			ArtifactID: r.ArtifactID, Name: r.ArtifactName, Status: r.Status, SHA256: r.SHA256,
			Key: r.Key, Size: r.Size, Deleted: r.DeletedFromGitHub,
			Attestations: r.Attestations, PredicateTypes: fmt.Sprint(r.PredicateTypes),
		}
	}
	return out
}

// checkCatalog checks that the catalogue file of every manifest exists
// and holds exactly catalog.Rows of that manifest, polling (one GET per
// file and round) until catalogWait has passed. With an S3 outage, a
// catalogue write may have failed for good (the worker counts it; archivectl
// catalog rebuild repairs it): a missing or stale file is then accepted
// when the workers counted a failure.
func (h *harness) checkCatalog(c *s3.Client, manifests []*archive.Manifest, exp expectation) {
	h.t.Helper()
	ctx := h.t.Context()
	pending := slices.Clone(manifests)
	deadline := time.Now().Add(catalogWait)
	var problems []string
	for {
		problems = problems[:0]
		next := pending[:0]
		for _, m := range pending {
			if p := catalogProblem(ctx, c, m); p != "" {
				problems = append(problems, p)
				next = append(next, m)
			}
		}
		pending = next
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		sleepCtx(ctx, 250*time.Millisecond)
	}
	if len(problems) == 0 {
		return
	}
	failures := sumMetric(h.workerMetrics(), "archiver_catalog_write_failures_total")
	if exp.S3Outage && failures > 0 {
		h.t.Logf("S3 outage: %d catalogue files missing or stale, the workers counted %v failed writes (catalog rebuild repairs them); first: %s", len(problems), failures, problems[0])
		return
	}
	for _, p := range head(problems, 10) {
		h.t.Errorf("catalogue: %s", p)
	}
	if len(problems) > 10 {
		h.t.Errorf("catalogue: %d more problems", len(problems)-10)
	}
}

// catalogProblem reads the catalogue file of m's attempt and says how it
// differs from catalog.Rows(m) ("" when it does not).
func catalogProblem(ctx context.Context, c *s3.Client, m *archive.Manifest) string {
	key := catalogKey(m)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if nsk := (*types.NoSuchKey)(nil); errors.As(err, &nsk) {
			return fmt.Sprintf("run %d attempt %d: no catalogue file %s", m.WorkflowRun.ID, m.WorkflowRun.RunAttempt, key)
		}
		return fmt.Sprintf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return fmt.Sprintf("read %s: %v", key, err)
	}
	rows, err := catalog.DecodeJSONL(bytes.NewReader(b))
	if err != nil {
		return fmt.Sprintf("decode %s: %v", key, err)
	}
	got, want := projectRows(rows), projectRows(catalog.Rows(m))
	if !slices.Equal(got, want) {
		return fmt.Sprintf("%s: rows %+v, the manifest gives %+v", key, got, want)
	}
	return ""
}
