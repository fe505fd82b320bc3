// Package catalog keeps the archive's query catalogue: one row per artifact
// per run attempt, derived from the manifests, laid out in Hive-style
// partitions that query engines (DuckDB, Athena, Trino) prune on. Each
// file format has its own tree, with the same partition folders under
// each:
//
//	_catalog/v1/owner=<owner>/repo=<repo>/month=<YYYY-MM>/<run_id>-<attempt>.jsonl
//	_catalog/v1-parquet/owner=<owner>/repo=<repo>/month=<YYYY-MM>/compacted-<id>.parquet
//
// Engines such as Athena and Trino read every file under a table's
// location, so a JSON table at [Prefix] and a Parquet table at
// [ParquetPrefix] each see one format ("_catalog/v1/" as an S3 prefix
// does not hold "_catalog/v1-parquet/").
//
// Keys are relative to the destination's prefix. The month is the run's
// created_at month in UTC. One small JSONL file per run attempt is the
// record, written right after the manifest; [Compact] merges a month's
// small files into one Parquet file (write it, then remove what it
// replaces), and readers ([Find]) read both trees, preferring the newest
// view of each attempt. The catalogue is derived data: [Rebuild]
// regenerates the JSONL files from the manifests.
//
// # Writing
//
// The worker calls [Write] after every manifest it commits; a failure is
// counted (archiver_catalog_write_failures_total) and never fails the run.
// Write reads the manifest as stored and puts the file conditionally, so
// racing writers end at the newest manifest.
//
// # Reading
//
// [Find] lists only the owner/repo prefix it needs (in both trees, at
// the same time), skips months outside
// the filter before reading anything, and reads the remaining files 32 at
// a time, each whole into memory (fine for a CLI; Parquet files are
// decoded from memory, skipping the row groups and pages whose head_sha
// statistics rule out a SHA lookup). JSONL and Parquet files have the same column names
// and types: times are UTC timestamps with microseconds, lists are lists.
//
// # Compacting
//
// [Compact] needs a store that can delete (pkg/s3store and pkg/filestore
// can); [Partitions] and [ClosedMonths] find what to compact.
package catalog

import "time"

// Prefix is the root of the catalogue's JSONL files, relative to the
// destination. No archive key starts with "_" (owners are GitHub logins).
const Prefix = "_catalog/v1/"

// ParquetPrefix is the root of the compacted Parquet files, relative to
// the destination, with the same partition folders as [Prefix].
const ParquetPrefix = "_catalog/v1-parquet/"

// StatusNone is the status of the single row written for a run attempt that
// has no artifacts, so that the attempt is still listed.
const StatusNone = "none"

// Row is one artifact of one run attempt. The partition columns owner, repo
// and month are in the key, not in the row (engines add them from the
// path); Repository repeats "owner/repo" for readers of a single file.
type Row struct {
	Repository   string    `json:"repository" parquet:"repository"`
	RunID        int64     `json:"run_id" parquet:"run_id"`
	RunAttempt   int64     `json:"run_attempt" parquet:"run_attempt"`
	WorkflowName string    `json:"workflow_name" parquet:"workflow_name"`
	WorkflowPath string    `json:"workflow_path" parquet:"workflow_path"`
	Event        string    `json:"event" parquet:"event"`
	HeadBranch   string    `json:"head_branch" parquet:"head_branch"`
	HeadSHA      string    `json:"head_sha" parquet:"head_sha"`
	PullRequests []int64   `json:"pull_requests" parquet:"pull_requests,list"`
	Conclusion   string    `json:"conclusion" parquet:"conclusion"`
	RunCreatedAt time.Time `json:"run_created_at" parquet:"run_created_at,timestamp(microsecond)"`
	RunUpdatedAt time.Time `json:"run_updated_at" parquet:"run_updated_at,timestamp(microsecond)"`
	// ArtifactID is 0 (and Status StatusNone) on the row of an attempt
	// without artifacts.
	ArtifactID        int64     `json:"artifact_id" parquet:"artifact_id"`
	ArtifactName      string    `json:"artifact_name" parquet:"artifact_name"`
	Status            string    `json:"status" parquet:"status"`
	Key               string    `json:"key" parquet:"key"`
	Size              int64     `json:"size" parquet:"size"`
	SHA256            string    `json:"sha256" parquet:"sha256"`
	ArchivedAt        time.Time `json:"archived_at" parquet:"archived_at,timestamp(microsecond)"`
	DeletedFromGitHub bool      `json:"deleted_from_github" parquet:"deleted_from_github"`
	// Attestations is the number of archived attestation bundles, and
	// PredicateTypes their predicate types.
	Attestations   int64    `json:"attestations" parquet:"attestations"`
	PredicateTypes []string `json:"predicate_types" parquet:"predicate_types,list"`
	// ManifestKey is the attempt's manifest.json, relative to the
	// destination.
	ManifestKey string `json:"manifest_key" parquet:"manifest_key"`
}

// Month is the partition month of a run created at t: "YYYY-MM" in UTC.
func Month(t time.Time) string { return t.UTC().Format("2006-01") }

// Filter selects rows. Zero fields match everything. Branch, Workflow and
// Name are globs (path.Match); Workflow matches the workflow's name, file
// name or path. SHA matches a full head SHA or a prefix of at least 7 hex
// digits. Since/Until bound the run's created_at, both inclusive
// (partitions outside are never read). Check a filter with
// [Filter.Validate]; [Find] does.
type Filter struct {
	Owner, Repo string
	RunID       int64
	SHA         string
	Branch      string
	Workflow    string
	Name        string
	PR          int64
	Since       time.Time
	Until       time.Time
}

// CompactResult is what Compact did to one month partition.
type CompactResult struct {
	Partition string // JSONL folder: "_catalog/v1/owner=o/repo=r/month=YYYY-MM/"
	Key       string // Parquet file written, under ParquetPrefix ("" when nothing to do)
	Rows      int
	Merged    int // files replaced (small files and older Parquet files)
	Kept      int // small files changed while compacting, kept
}

// Partition is one owner/repo/month partition of the catalogue: its
// JSONL files (under [Prefix]) and Parquet files (under [ParquetPrefix]).
type Partition struct {
	Owner, Repo, Month string
	SmallFiles         int
	ParquetFiles       int
}

// RebuildResult counts what Rebuild did.
type RebuildResult struct {
	Manifests int
	Written   int
	Failed    int
}
