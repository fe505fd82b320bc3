// Package s3store is the production [archive.Store]: objects in an S3 bucket
// (AWS, MinIO, or another S3 server) under a key prefix, written by
// aws-sdk-go-v2 without buffering.
//
// # Streaming and checksums
//
// Every PutObject and UploadPart carries one precomputed checksum header
// the server verifies, never an aws-chunked trailer: AWS wants Content-MD5
// or x-amz-checksum-* on every write into a bucket with Object Lock
// retention, and refuses a trailer on UploadPart there.
//   - [Store.Put] with PutOptions.SHA256 (GitHub's digest) streams the
//     caller's reader into one PutObject with x-amz-checksum-sha256: no
//     temporary file, no copy in memory (a 256 MiB upload allocates well
//     under 1 MiB).
//   - Put without it reads the body (up to [MaxBufferedPut]) into memory
//     and sends its CRC32C; a bigger body becomes a multipart upload of
//     MaxBufferedPut parts, so memory stays bounded.
//   - Multipart uploads are full-object CRC32C: each part is sent with its
//     CRC32C, and Complete gives the CRC32C of the whole object, which the
//     server checks and keeps (HeadObject with ChecksumMode ENABLED).
//     [Upload.WritePart] checksums a seekable part in place (one read, a
//     seek back, no copy) and copies any other reader into a part buffer.
//
// Over plain HTTP the SigV4 payload hash would need another read of the
// body, so these calls send UNSIGNED-PAYLOAD, and the SDK computes no
// request checksum of its own (when_required). A streamed body cannot be
// rewound, so those calls do not retry inside the SDK: callers retry a
// whole Put or one part. Bodies in memory or seekable are retried by the
// SDK, except conditional writes (a retry after a lost answer would lose
// against itself). Other calls keep the SDK's retryer.
//
// # Storage classes, encryption and Object Lock
//
// archive.PutOptions.Kind picks the attributes of a new object (see
// [Config]): artifacts go to ArtifactStorageClass, records (manifests,
// SHA256SUMS, catalogue) and transient objects (transfer leases) to
// StorageClass. With ObjectLockMode, records and artifacts are written
// with that retention for ObjectLockDays, and with ObjectLockLegalHold a
// legal hold; transient objects never are, since they are rewritten every
// third of the lease TTL (about 40 s) and expired by a lifecycle rule. SSE and SSEKMSKeyID apply
// to every object.
//
// # Delivery semantics
//
// A write is create-only with PutOptions.IfAbsent (If-None-Match: * on
// PutObject and CompleteMultipartUpload), and a conditional replace with
// PutOptions.IfMatch (If-Match on the same two). A create-only write whose
// outcome is unknown (no HTTP answer) is settled by HeadObject: if the key
// exists the write reports [archive.ErrExists]. CreateUpload never aborts
// other uploads at its key (they may belong to a live worker); once a
// Complete succeeds, the incomplete uploads left at that key are aborted,
// found with ListMultipartUploads and the exact key as prefix (the one
// form MinIO supports); keys are deterministic, so that is how a crashed
// worker's upload is cleaned up.
//
// # Errors
//
// Errors read "s3store: <verb> <object> <key>: <cause>", with the bucket key
// (prefix included). Outcomes are decided on HTTP status codes, never on
// error code strings, which differ between servers; the one exception is
// telling a checksum refusal (AWS BadDigest, MinIO
// XAmzContentChecksumMismatch) from other 400s.
//   - 404 from HeadObject/GetObject: [archive.ErrNotFound].
//   - 412 on a create-only write: [archive.ErrExists]; on a conditional
//     replace (or 404, the object is gone): [archive.ErrConflict]. A losing
//     multipart upload is aborted.
//   - A SHA-256 mismatch, found locally before the last byte is sent or by
//     the server: *[ChecksumError].
//   - A reader shorter than the size: wraps io.ErrUnexpectedEOF; a failing
//     reader: wraps its error.
//   - 404 NoSuchUpload from AbortMultipartUpload: success.
//   - 404 NoSuchUpload from UploadPart or CompleteMultipartUpload:
//     [archive.ErrUploadGone]; so is an UploadPart with no answer after
//     which ListParts answers 404 (versitygw resets the connection of a
//     part it refuses unread).
//   - RestoreObject ([Store.Restore]): 409 RestoreAlreadyInProgress is not
//     an error; 403 InvalidObjectState / ObjectAlreadyInActiveTierError is
//     [ErrNotArchived], decided on the code (AccessDenied is a 403 too).
//
// Compared with MinIO, versitygw v1.8.0 differs only in ways the code above
// absorbs: the NoSuchUpload answers and resets, and ListMultipartUploads
// cannot page (abortStale reads the first page only). It accepts SSE
// headers and ignores them.
//
// # Permissions
//
// s3:GetObject, s3:PutObject, s3:ListBucket (List, and HeadBucket in
// [New]), s3:ListBucketMultipartUploads and s3:AbortMultipartUpload; with
// SSE-KMS also kms:GenerateDataKey and kms:Decrypt (HeadObject asks for
// checksums); s3:ListMultipartUploadParts (ListParts, see Errors). With
// ObjectLockMode also s3:PutObjectRetention, and with ObjectLockLegalHold
// s3:PutObjectLegalHold: S3 checks them on a PutObject or
// CreateMultipartUpload that carries those headers. [Store.Restore] needs
// s3:RestoreObject (readers only). On AWS add a lifecycle rule
// AbortIncompleteMultipartUpload; MinIO cleans stale uploads after 24 h by
// itself.
//
// # Metrics
//
// This package exports no metrics; the worker counts bytes and outcomes
// next to its own code.
package s3store
