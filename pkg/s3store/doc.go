// Package s3store is the production [archive.Store]: objects in an S3 bucket
// (AWS, MinIO, or another S3 server) under a key prefix, written by
// aws-sdk-go-v2 without buffering.
//
// # Streaming
//
// [Store.Put] is one PutObject and [Upload.WritePart] one UploadPart, each
// streaming the caller's reader with its known length: no temporary file,
// no copy in memory (a 256 MiB upload allocates well under 1 MiB). Over
// plain HTTP the SigV4 payload hash would need a second read of the body,
// so these calls send UNSIGNED-PAYLOAD, compute no SDK request checksum
// (when_required; a precomputed x-amz-checksum-sha256 is still sent) and do
// not retry inside the SDK, since a stream cannot be rewound: callers retry
// a whole Put or one part. Other calls keep the SDK's retryer.
//
// # Delivery semantics
//
// A write is create-only with PutOptions.IfAbsent (If-None-Match: * on
// PutObject and CompleteMultipartUpload). A write whose outcome is unknown
// (no HTTP answer) is settled by HeadObject: if the key exists the write
// reports [archive.ErrExists]. CreateUpload first aborts incomplete uploads
// at the same key, found with ListMultipartUploads and the exact key as
// prefix (the one form MinIO supports); keys are deterministic, so that is
// how a crashed worker's upload is cleaned up.
//
// # Errors
//
// Errors read "s3store: <verb> <object> <key>: <cause>", with the bucket key
// (prefix included). Outcomes are decided on HTTP status codes, never on
// error code strings, which differ between servers; the one exception is
// telling a checksum refusal (AWS BadDigest, MinIO
// XAmzContentChecksumMismatch) from other 400s.
//   - 404 from HeadObject/GetObject: [archive.ErrNotFound].
//   - 412 on a conditional write: [archive.ErrExists]; a losing multipart
//     upload is aborted.
//   - A SHA-256 mismatch, found locally before the last byte is sent or by
//     the server: *[ChecksumError].
//   - A reader shorter than the size: wraps io.ErrUnexpectedEOF; a failing
//     reader: wraps its error.
//   - 404 NoSuchUpload from AbortMultipartUpload: success.
//
// # Permissions
//
// s3:GetObject, s3:PutObject, s3:ListBucket (List, and HeadBucket in
// [New]), s3:ListBucketMultipartUploads and s3:AbortMultipartUpload; with
// SSE-KMS also kms:GenerateDataKey and kms:Decrypt (HeadObject asks for
// checksums). On AWS add a lifecycle rule AbortIncompleteMultipartUpload;
// MinIO cleans stale uploads after 24 h by itself.
//
// # Metrics
//
// This package exports no metrics; the worker counts bytes and outcomes
// next to its own code.
package s3store
