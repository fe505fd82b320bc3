package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Errors returned by every [Store] implementation.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExists: a create-only write found the key already taken (S3 412
	// Precondition Failed on If-None-Match: *). The existing object is
	// untouched and the losing upload has been aborted.
	ErrExists = errors.New("object already exists")
	// ErrChecksumMismatch: the bytes written do not hash to
	// PutOptions.SHA256; nothing was stored.
	ErrChecksumMismatch = errors.New("object checksum mismatch")
	// ErrConflict: a conditional replace (PutOptions.IfMatch) found the
	// object changed or gone since it was read (S3 412 on If-Match). Nothing
	// was written: read it again, merge and retry.
	ErrConflict = errors.New("object changed since it was read")
	// ErrUploadGone: the multipart upload no longer exists (S3 404
	// NoSuchUpload): another writer aborted or completed it. Check whether
	// the object now exists before starting again.
	ErrUploadGone = errors.New("multipart upload no longer exists")
)

// Object metadata keys (S3 user metadata, lowercase, without x-amz-meta-).
const (
	MetaSHA256     = "sha256"      // hex SHA-256 of the object (GitHub's digest, verified before completion)
	MetaArtifactID = "artifact-id" // GitHub artifact id
	MetaRunID      = "run-id"      // GitHub workflow run id
	MetaRepository = "repository"  // owner/name
	MetaName       = "artifact-name"
)

// ObjectInfo describes a complete object in a [Store].
type ObjectInfo struct {
	Key         string
	Size        int64
	ETag        string
	VersionID   string
	ContentType string
	// Metadata holds user metadata with lowercase keys.
	Metadata map[string]string
}

// ObjectKind tells a store what an object is for, so that it can pick the
// storage class and retention that suit it.
type ObjectKind int

const (
	// KindRecord (the zero value) is a small object the archive keeps:
	// manifests, SHA256SUMS, catalogue files. Kept under retention.
	KindRecord ObjectKind = iota
	// KindArtifact is an archived artifact's bytes. Kept under retention,
	// and may go to a cold storage class.
	KindArtifact
	// KindTransient is working state rewritten often and expired by a
	// lifecycle rule (transfer leases): never under retention, never cold.
	KindTransient
)

// String names the kind for logs and errors.
func (k ObjectKind) String() string {
	switch k {
	case KindRecord:
		return "record"
	case KindArtifact:
		return "artifact"
	case KindTransient:
		return "transient"
	}
	return fmt.Sprintf("ObjectKind(%d)", int(k))
}

// PutOptions are the attributes of a new object.
type PutOptions struct {
	// Kind of object (default KindRecord).
	Kind        ObjectKind
	ContentType string
	Metadata    map[string]string
	// IfAbsent makes the write create-only: if the key exists the write
	// fails with ErrExists and nothing is overwritten.
	IfAbsent bool
	// IfMatch makes the write a conditional replace: it succeeds only if
	// the object exists with this ETag, and fails with ErrConflict
	// otherwise. At most one of IfAbsent and IfMatch is set.
	IfMatch string
	// SHA256 is the expected SHA-256 of the whole object, when known in
	// advance. A store that can have the server verify it (a single S3 PUT
	// with x-amz-checksum-sha256) does so; others may ignore it.
	SHA256 []byte
}

// Store is where the archive lives: S3 in production, a local directory for
// the demo. Keys are slash-separated, already sanitised by the caller.
//
// Streams have one contract: cancelling ctx or failing a write leaves no
// partial object visible under the key; an [Upload] must end with Complete
// or Abort, and Abort always runs cleanup even on a cancelled ctx.
type Store interface {
	// Stat returns the object's info, or ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns the complete objects whose keys start with prefix, in
	// key order.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Open reads a whole object, or returns ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Put streams exactly size bytes from r into a new object at key. It
	// fails if r yields fewer or more bytes.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// CreateUpload starts a multipart upload at key. It never aborts other
	// uploads at the key: another worker may own them. Orphans of crashed
	// workers are removed after a Complete at the key succeeds (and, on S3,
	// by the bucket's AbortIncompleteMultipartUpload lifecycle rule).
	CreateUpload(ctx context.Context, key string, opts PutOptions) (Upload, error)
	// Location renders a key as a URL for humans (s3://bucket/key, file:///...).
	Location(key string) string
}

// Upload is one multipart upload. Parts are numbered from 1 and written in
// order; a part may be rewritten (same number) after a failure.
type Upload interface {
	// WritePart writes exactly size bytes from r as part n, reading no
	// byte beyond them (r may be one stream cut into parts). A store may
	// need the part's checksum before sending it (S3 does): if r is an
	// io.ReadSeeker (a *bytes.Reader over the caller's buffer) it reads
	// the part once, seeks back and sends it from r, with no copy, so r
	// must not change until WritePart returns, and is left just after the
	// part on success; any other reader is first copied into a buffer of
	// size bytes. It returns ErrUploadGone when the upload was aborted by
	// someone else.
	WritePart(ctx context.Context, n int, r io.Reader, size int64) error
	// Complete makes the object visible. With IfAbsent and an existing key
	// it returns ErrExists after aborting the upload.
	Complete(ctx context.Context) (ObjectInfo, error)
	// Abort discards the upload; it is idempotent.
	Abort(ctx context.Context) error
}
