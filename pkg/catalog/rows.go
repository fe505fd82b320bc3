package catalog

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// Rows derives the catalogue rows of one manifest: one per artifact, in
// the manifest's order, whatever its status, or a single row with
// ArtifactID 0 and Status [StatusNone] for an attempt without artifacts.
// Times are in UTC, truncated to microseconds (what Parquet keeps), and
// the list columns are empty rather than nil, so that JSON encodes them as
// [] and engines infer list types.
func Rows(m *archive.Manifest) []Row {
	run := m.WorkflowRun
	base := Row{
		Repository:   repository(m),
		RunID:        run.ID,
		RunAttempt:   int64(run.RunAttempt),
		WorkflowName: cmp.Or(m.WorkflowName, run.Name),
		WorkflowPath: run.Path,
		Event:        run.Event,
		HeadBranch:   run.HeadBranch,
		HeadSHA:      run.HeadSHA,
		PullRequests: append([]int64{}, run.PullRequests...),
		Conclusion:   run.Conclusion,
		RunCreatedAt: micro(run.CreatedAt),
		RunUpdatedAt: micro(run.UpdatedAt),
		ArchivedAt:   micro(m.ArchivedAt),
		ManifestKey:  archive.Layout{Owner: m.Repository.Owner, Repo: m.Repository.Name, RunID: run.ID}.ManifestKey(run.RunAttempt),
	}
	if len(m.Artifacts) == 0 {
		r := base
		r.Status = StatusNone
		r.PredicateTypes = []string{}
		return []Row{r}
	}
	rows := make([]Row, 0, len(m.Artifacts))
	for _, a := range m.Artifacts {
		r := base
		r.PullRequests = slices.Clone(base.PullRequests)
		r.ArtifactID = a.ID
		r.ArtifactName = a.Name
		r.Status = a.Status
		r.Key = a.Key
		r.Size = a.Size
		r.SHA256 = a.SHA256
		r.DeletedFromGitHub = a.DeletedFromGitHub
		r.PredicateTypes = []string{}
		if at := a.Attestations; at != nil {
			r.Attestations = int64(at.Count)
			r.PredicateTypes = append(r.PredicateTypes, at.PredicateTypes...)
		}
		rows = append(rows, r)
	}
	return rows
}

// repository is the manifest's "owner/repo".
func repository(m *archive.Manifest) string {
	return cmp.Or(m.Repository.FullName, m.Repository.Owner+"/"+m.Repository.Name)
}

// micro is t in UTC truncated to microseconds.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// normalize gives a decoded row the shape Rows produces: UTC times and
// empty (not nil) lists.
func (r *Row) normalize() {
	r.RunCreatedAt = r.RunCreatedAt.UTC()
	r.RunUpdatedAt = r.RunUpdatedAt.UTC()
	r.ArchivedAt = r.ArchivedAt.UTC()
	if r.PullRequests == nil {
		r.PullRequests = []int64{}
	}
	if r.PredicateTypes == nil {
		r.PredicateTypes = []string{}
	}
}

// PartitionPrefix is the JSONL folder of one owner/repo/month partition:
// "_catalog/v1/owner=<o>/repo=<r>/month=<YYYY-MM>/". Owner and repo pass
// through [archive.SafeName], as in the archive's layout.
func PartitionPrefix(owner, repo, month string) string {
	return Prefix + partitionPath(owner, repo, month)
}

// ParquetPartitionPrefix is the Parquet folder of one owner/repo/month
// partition: "_catalog/v1-parquet/owner=<o>/repo=<r>/month=<YYYY-MM>/".
func ParquetPartitionPrefix(owner, repo, month string) string {
	return ParquetPrefix + partitionPath(owner, repo, month)
}

// partitionPath is "owner=<o>/repo=<r>/month=<YYYY-MM>/".
func partitionPath(owner, repo, month string) string {
	return "owner=" + archive.SafeName(owner) + "/repo=" + archive.SafeName(repo) + "/month=" + month + "/"
}

// AttemptKey is the small JSONL file of one run attempt:
// "_catalog/v1/owner=<o>/repo=<r>/month=<YYYY-MM>/<run_id>-<attempt>.jsonl".
func AttemptKey(owner, repo, month string, runID int64, attempt int) string {
	return PartitionPrefix(owner, repo, month) + strconv.FormatInt(runID, 10) + "-" + strconv.Itoa(attempt) + jsonlExt
}

// manifestAttemptKey is the catalogue file of the attempt m records.
func manifestAttemptKey(m *archive.Manifest) string {
	run := m.WorkflowRun
	return AttemptKey(m.Repository.Owner, m.Repository.Name, Month(run.CreatedAt), run.ID, run.RunAttempt)
}

// File name extensions of the catalogue's files.
const (
	jsonlExt   = ".jsonl"
	parquetExt = ".parquet"
)

// EncodeJSONL renders rows as JSON Lines: one object per row, keys exactly
// the json tags of [Row].
func EncodeJSONL(rows []Row) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i := range rows {
		r := rows[i]
		r.normalize()
		if err := enc.Encode(&r); err != nil {
			return nil, fmt.Errorf("catalog: encode row of run %d: %w", r.RunID, err)
		}
	}
	return b.Bytes(), nil
}

// DecodeJSONL parses JSON Lines written by [EncodeJSONL]; blank lines are
// skipped.
func DecodeJSONL(r io.Reader) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var row Row
		if err := json.Unmarshal(line, &row); err != nil {
			return nil, fmt.Errorf("catalog: decode row %d: %w", len(rows)+1, err)
		}
		row.normalize()
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("catalog: read rows: %w", err)
	}
	return rows, nil
}
