// Package archivectl is the operator's command line for the archive: it
// lists and fetches archived artifacts, audits the archive against its
// manifests, finds artifacts that were never archived and enqueues their
// runs, recovers webhook deliveries that the App missed, and inspects and
// replays dead-lettered events. cmd/archivectl is a thin main around
// [Main], which tests drive directly.
//
// # Commands
//
//	ls        table of archived runs and artifacts, read from the catalogue (or the manifests)
//	find      archived artifacts by commit, branch, workflow, name or pull request, from the catalogue
//	get       download one artifact, verifying its SHA-256 while writing
//	restore   ask S3 to restore archived (Glacier, Deep Archive) artifacts; --wait until readable
//	verify    audit: every archived object exists with its size and ETag (--deep: re-hash)
//	backfill  enqueue the runs of artifacts GitHub still has but the archive lacks
//	redeliver ask GitHub to redeliver failed workflow_run webhook deliveries
//	dlq       ls, show, replay and purge dead-lettered run events
//	catalog   rebuild the query catalogue from the manifests; compact closed months into Parquet
//
// A command is one entry of the commands table (archivectl.go): a name, a
// synopsis, the environment it reads and a run function.
//
// # Output and exit codes
//
// Tables (text/tabwriter) and progress bars are for terminals: progress
// goes to stderr only when stderr is a terminal, colours only when stdout
// is one and NO_COLOR is unset. Every listing command takes --json for
// scripts. Exit codes: 0 success, 1 failure or a problem found (a
// mismatch, a failed redelivery, ...), 2 usage error (bad flags or
// arguments, missing configuration).
//
// # Configuration
//
// Everything comes from the environment, read through the injected getenv:
// ARCHIVER_DESTINATION and the AWS SDK chain for the archive, NATS_* and
// the stream settings (ARCHIVER_STREAM, ARCHIVER_DLQ_STREAM, ...) for
// JetStream, GITHUB_* for GitHub. The variables are the rows of [Env], in
// groups that a command parses when it needs them; "archivectl COMMAND -h"
// lists what a command reads.
package archivectl
