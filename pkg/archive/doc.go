// Package archive copies one GitHub Actions workflow run attempt's
// artifacts into durable storage and records them: that is its one job.
// [Archiver.ArchiveRun] takes a run event (package runevent) and, reading
// top to bottom:
//
//  1. reads the attempt's manifest, if any (archiver.go: start);
//  2. lists the run's artifacts, every page (listing.go);
//  3. settles each artifact: transfers it under a per-artifact lease, or
//     waits for the worker that holds the lease, or records the verified
//     object already stored, or records it expired or failed
//     (transfer.go, lease.go);
//  4. lists the run again and archives artifacts that appeared meanwhile
//     (listing.go);
//  5. with attestations on ([Config.Attestations]), looks up the Sigstore
//     bundles of each archived artifact with a digest, stores them as JSONL
//     at [Layout.AttestationsKey] and records the lookup, or its error, in
//     the artifact's record; a failed lookup never fails the artifact, and
//     a later delivery retries it. A daily trusted root snapshot goes to
//     [TrustedRootKey] (attestations.go);
//  6. commits the manifest with conditional writes that merge with what
//     other workers recorded (commit.go, manifest.go);
//  7. with deletion on, deletes the verified artifacts at GitHub and
//     records that (delete.go);
//  8. turns what failed into one error that [Classify] maps to an outcome
//     (outcome.go, errors.go).
//
// # Seams
//
// The package defines the interfaces it consumes and nothing else:
//
//   - [Store]: where the archive lives (package s3store for S3, package
//     filestore for a local directory). Every shared write is conditional:
//     create-only artifacts, If-Match manifests and leases.
//   - [GitHub] (through [Installations]): list a run's artifacts, get an
//     artifact's short-lived download URL, delete an artifact (package
//     ghclient).
//   - [Downloader]: read the download URL from the blob host, without
//     GitHub's credentials (package ghclient).
//   - [AttestationLister] (optional, asserted on the [GitHub] client) and
//     [TrustedRootSource]: attestation bundles (package ghclient) and the
//     trusted roots that verify them (package attest).
//
// Keys come from [Layout]; the manifest's schema is [Manifest]. Waits are
// in wait.go: every retry waits at least a second and every loop is
// bounded.
package archive
