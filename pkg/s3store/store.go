package s3store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// DefaultContentType is stored when PutOptions.ContentType is empty.
const DefaultContentType = "application/octet-stream"

// cleanupTimeout bounds an abort that runs after the caller's ctx ended.
const cleanupTimeout = 30 * time.Second

var _ archive.Store = (*Store)(nil)

// Store is an [archive.Store] on an S3 bucket under a key prefix. Keys given
// to and returned by its methods are relative to the prefix. It is safe for
// concurrent use.
type Store struct {
	client               *s3.Client
	bucket               string
	prefix               string // without slashes around it; "" for the bucket root
	storageClass         types.StorageClass
	artifactStorageClass types.StorageClass
	sse                  types.ServerSideEncryption
	sseKMSKeyID          string
	lockMode             types.ObjectLockMode
	lockDays             int
	legalHold            bool
	log                  *slog.Logger

	// noLocalChecksum skips the local SHA-256 check of Put, so that tests
	// can see the server's verdict.
	noLocalChecksum bool
}

// New checks cfg, builds the client if cfg.Client is nil, and checks that
// the bucket is reachable (HeadBucket).
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = s3.NewFromConfig(cfg.AWS, func(o *s3.Options) {
			o.UsePathStyle = cfg.ForcePathStyle
		})
	}
	s := &Store{
		client:               client,
		bucket:               cfg.Bucket,
		prefix:               strings.Trim(cfg.Prefix, "/"),
		storageClass:         cfg.StorageClass,
		artifactStorageClass: cmp.Or(cfg.ArtifactStorageClass, cfg.StorageClass),
		sse:                  cfg.SSE,
		sseKMSKeyID:          cfg.SSEKMSKeyID,
		lockMode:             cfg.ObjectLockMode,
		lockDays:             cfg.ObjectLockDays,
		legalHold:            cfg.ObjectLockLegalHold,
		log:                  cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return nil, fmt.Errorf("s3store: head bucket %s: %w", s.bucket, err)
	}
	return s, nil
}

// Client returns the S3 client the store uses.
func (s *Store) Client() *s3.Client { return s.client }

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// ObjectKey returns the S3 key of a store key: the prefix joined with key.
func (s *Store) ObjectKey(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + "/" + key
}

// Location renders s3://bucket/prefix/key.
func (s *Store) Location(key string) string {
	return "s3://" + s.bucket + "/" + s.ObjectKey(key)
}

// bodyOptions adjusts the client for a request with a body (PutObject,
// UploadPart):
//   - no request checksum computed by the SDK: every such request carries
//     our own precomputed x-amz-checksum-* header, which the SDK sends as
//     is, and never an aws-chunked trailer (AWS refuses trailers on
//     UploadPart into a bucket with default retention);
//   - an unsigned payload, so SigV4 over plain HTTP does not hash (and
//     therefore read twice) the body. HTTPS protects the payload anyway,
//     and the checksum header makes the server verify it;
//   - SDK retries only when retry is set: the body can be rewound (it is
//     seekable) and sending it twice is harmless. A stream cannot be
//     rewound, and a conditional write retried after a lost answer would
//     lose against itself; callers retry those.
func bodyOptions(retry bool) func(*s3.Options) {
	return func(o *s3.Options) {
		if !retry {
			o.RetryMaxAttempts = 1
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
}

// Put writes exactly size bytes of r at key, always with a checksum header
// the server verifies (S3 requires one on every write into a bucket with
// Object Lock retention):
//   - With opts.SHA256 it streams r into one PutObject with
//     x-amz-checksum-sha256: nothing is buffered or spooled, so it needs
//     only size <= 5 GiB (AWS's limit on a single PUT). The digest is
//     checked twice: locally before the last byte is sent, and by the
//     server; a mismatch returns a *[ChecksumError].
//   - Without it, a body of up to [MaxBufferedPut] bytes is read once to
//     compute its CRC32C, then sent with it (x-amz-checksum-crc32c): from r
//     again if r is an io.ReadSeeker (a *bytes.Reader: no copy; r is left
//     after the body), else from a copy in memory. A bigger body becomes a
//     multipart upload of MaxBufferedPut parts with a full-object CRC32C
//     (see [Store.CreateUpload]), so memory stays bounded.
//
// With opts.IfAbsent an existing key returns [archive.ErrExists]; with
// opts.IfMatch an object that changed or is missing returns
// [archive.ErrConflict]; if the outcome of such a write is unknown (the
// connection broke, which is how some servers answer a losing conditional
// write), Put asks HeadObject and returns ErrExists if the key exists.
// A reader that yields fewer or more than size bytes or fails, a cancelled
// ctx, or any other error leaves nothing at the key. opts.Kind picks the
// storage class and Object Lock retention (see [Config]).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts archive.PutOptions) (archive.ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: put object %s: %w", key, err)
	}
	full := s.ObjectKey(key)
	if size < 0 {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: put object %s: negative size %d", full, size)
	}
	if n := len(opts.SHA256); n != 0 && n != sha256.Size {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: put object %s: SHA256 has %d bytes, want %d", full, n, sha256.Size)
	}
	if opts.IfAbsent && opts.IfMatch != "" {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: put object %s: IfAbsent and IfMatch are exclusive", full)
	}
	if len(opts.SHA256) == 0 && size > MaxBufferedPut {
		return s.putParts(ctx, key, r, size, opts)
	}
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &full,
		ContentLength: &size,
		ContentType:   aws.String(cmp.Or(opts.ContentType, DefaultContentType)),
		Metadata:      opts.Metadata,
	}
	s.setHeaders(opts.Kind, newObjectHeaders{
		class: &in.StorageClass, sse: &in.ServerSideEncryption, kmsKey: &in.SSEKMSKeyId,
		lockMode: &in.ObjectLockMode, retainUntil: &in.ObjectLockRetainUntilDate, legalHold: &in.ObjectLockLegalHoldStatus,
	})
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(`"` + opts.IfMatch + `"`)
	}

	var body *archive.ExactReader // the caller's stream, with opts.SHA256
	optFn := bodyOptions(false)
	if len(opts.SHA256) > 0 {
		check := archive.ExactOptions{Probe: true, Key: full}
		if !s.noLocalChecksum {
			check.Hash, check.Want = sha256.New(), opts.SHA256
		}
		body = archive.NewExactReader(ctx, r, size, check)
		in.Body = body
		in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(opts.SHA256))
		if size == 0 {
			// The HTTP client never reads an empty body: check it here.
			if err := body.Finish(false); err != nil {
				return archive.ObjectInfo{}, fmt.Errorf("s3store: put object %s: %w", full, err)
			}
		}
	} else {
		crc := crc32.New(castagnoli)
		win, err := rereadable(ctx, r, size, nil, crc, archive.ExactOptions{Probe: true, Key: full})
		if err != nil {
			return archive.ObjectInfo{}, fmt.Errorf("s3store: put object %s: %w", full, err)
		}
		defer func() { _ = win.fence() }()
		in.Body = win
		in.ChecksumCRC32C = aws.String(crc32cBase64(crc.Sum32()))
		// A body that can be sent again may be retried by the SDK; a
		// conditional write may not.
		optFn = bodyOptions(!opts.IfAbsent && opts.IfMatch == "")
	}
	if size == 0 {
		in.Body = http.NoBody
	}

	out, err := s.client.PutObject(ctx, in, optFn)
	if err != nil {
		return archive.ObjectInfo{}, s.putError(ctx, full, opts, body, err)
	}
	return archive.ObjectInfo{
		Key:         key,
		Size:        size,
		ETag:        trimETag(out.ETag),
		VersionID:   aws.ToString(out.VersionId),
		ContentType: aws.ToString(in.ContentType),
		Metadata:    lowerKeys(opts.Metadata),
	}, nil
}

// putParts is Put of a body too big for memory and without a SHA-256: a
// multipart upload of MaxBufferedPut parts (bigger when 10,000 of those
// would not hold it), each copied into one reused buffer and checksummed,
// completed with the full-object CRC32C. The upload is aborted on any
// error; the last part also checks that r ends.
func (s *Store) putParts(ctx context.Context, key string, r io.Reader, size int64, opts archive.PutOptions) (archive.ObjectInfo, error) {
	full := s.ObjectKey(key)
	partSize := max(MaxBufferedPut, (size+maxParts-1)/maxParts)
	up, err := s.createUpload(ctx, key, full, opts)
	if err != nil {
		return archive.ObjectInfo{}, err
	}
	defer func() { _ = up.Abort(ctx) }() // does nothing after a successful Complete
	src := archive.NewExactReader(ctx, r, size, archive.ExactOptions{Probe: true, Key: full})
	for n, off := 1, int64(0); off < size; n++ {
		part := min(partSize, size-off)
		if err := up.WritePart(ctx, n, src, part); err != nil {
			return archive.ObjectInfo{}, err
		}
		off += part
	}
	return up.Complete(ctx)
}

// putError classifies a failed PutObject.
func (s *Store) putError(ctx context.Context, full string, opts archive.PutOptions, body *archive.ExactReader, err error) error {
	if body != nil && body.Err() != nil { // our reader stopped the request
		return fmt.Errorf("s3store: put object %s: %w", full, body.Err())
	}
	status := httpStatus(err)
	switch {
	case opts.IfMatch != "" && (status == http.StatusPreconditionFailed || status == http.StatusNotFound):
		// Changed since it was read (412), or deleted (AWS answers 404).
		return fmt.Errorf("s3store: put object %s: %w (%v)", full, archive.ErrConflict, err)
	case status == http.StatusPreconditionFailed:
		return fmt.Errorf("s3store: put object %s: %w", full, archive.ErrExists)
	case status == http.StatusBadRequest && len(opts.SHA256) > 0 && isChecksumCode(err):
		return fmt.Errorf("s3store: put object %s: %w (%v)", full, &ChecksumError{Key: full, Want: opts.SHA256}, err)
	case status == 0 && opts.IfAbsent && ctx.Err() == nil:
		// No answer: a losing conditional write can look like a reset
		// connection. The object's existence decides.
		_, herr := s.head(ctx, full)
		if herr == nil {
			return fmt.Errorf("s3store: put object %s: %w (after %v)", full, archive.ErrExists, err)
		}
	}
	return fmt.Errorf("s3store: put object %s: %w", full, err)
}

// isChecksumCode reports the error codes S3 servers use for a body whose
// checksum differs from the header (AWS BadDigest, MinIO
// XAmzContentChecksumMismatch); only consulted for a 400 answer to a PUT
// that carried a checksum.
func isChecksumCode(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest":
		return true
	}
	return false
}

// Stat returns the object's size, ETag, version, content type and user
// metadata (lowercase keys), or [archive.ErrNotFound].
func (s *Store) Stat(ctx context.Context, key string) (archive.ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: stat object %s: %w", key, err)
	}
	info, err := s.head(ctx, s.ObjectKey(key))
	if err != nil {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: stat object %s: %w", s.ObjectKey(key), err)
	}
	info.Key = key
	return info, nil
}

// head returns the object's info (Key unset) or an error that is
// archive.ErrNotFound for a 404.
func (s *Store) head(ctx context.Context, full string) (archive.ObjectInfo, error) {
	out, err := s.headObject(ctx, full)
	if err != nil {
		return archive.ObjectInfo{}, err
	}
	return objectInfo(out), nil
}

// headObject asks HeadObject for full, with checksums; a 404 is
// archive.ErrNotFound.
func (s *Store) headObject(ctx context.Context, full string) (*s3.HeadObjectOutput, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       &s.bucket,
		Key:          &full,
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		if httpStatus(err) == http.StatusNotFound {
			return nil, archive.ErrNotFound
		}
		return nil, err
	}
	return out, nil
}

// objectInfo is the ObjectInfo of a HeadObject answer (Key unset).
func objectInfo(out *s3.HeadObjectOutput) archive.ObjectInfo {
	return archive.ObjectInfo{
		Size:        aws.ToInt64(out.ContentLength),
		ETag:        trimETag(out.ETag),
		VersionID:   aws.ToString(out.VersionId),
		ContentType: aws.ToString(out.ContentType),
		Metadata:    lowerKeys(out.Metadata),
	}
}

// List returns the objects whose keys (relative to the store prefix) start
// with prefix, in key order. Only Key, Size and ETag are set: S3 lists no
// metadata; use Stat for it.
func (s *Store) List(ctx context.Context, prefix string) ([]archive.ObjectInfo, error) {
	full := prefix
	if s.prefix != "" {
		full = s.prefix + "/" + prefix
	}
	var infos []archive.ObjectInfo
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &full})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3store: list objects %s: %w", full, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if s.prefix != "" {
				k = strings.TrimPrefix(k, s.prefix+"/")
			}
			infos = append(infos, archive.ObjectInfo{Key: k, Size: aws.ToInt64(o.Size), ETag: trimETag(o.ETag)})
		}
	}
	return infos, nil
}

// Open streams the object; the body is read under ctx. It returns
// [archive.ErrNotFound] for a missing object.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("s3store: get object %s: %w", key, err)
	}
	full := s.ObjectKey(key)
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &full})
	if err != nil {
		if httpStatus(err) == http.StatusNotFound {
			err = archive.ErrNotFound
		}
		return nil, fmt.Errorf("s3store: get object %s: %w", full, err)
	}
	return out.Body, nil
}

// newObjectHeaders points at the fields of a PutObjectInput or
// CreateMultipartUploadInput that [Store.setHeaders] fills.
type newObjectHeaders struct {
	class       *types.StorageClass
	sse         *types.ServerSideEncryption
	kmsKey      **string
	lockMode    *types.ObjectLockMode
	retainUntil **time.Time
	legalHold   *types.ObjectLockLegalHoldStatus
}

// setHeaders sets the storage class, encryption and Object Lock of a new
// object of kind: artifacts get ArtifactStorageClass, the rest
// StorageClass; records and artifacts get the retention and legal hold,
// transient objects never.
func (s *Store) setHeaders(kind archive.ObjectKind, h newObjectHeaders) {
	*h.class = s.storageClass
	if kind == archive.KindArtifact {
		*h.class = s.artifactStorageClass
	}
	*h.sse = s.sse
	if s.sseKMSKeyID != "" {
		*h.kmsKey = &s.sseKMSKeyID
	}
	if kind == archive.KindTransient {
		return
	}
	if s.lockMode != "" {
		*h.lockMode = s.lockMode
		*h.retainUntil = aws.Time(time.Now().AddDate(0, 0, s.lockDays).UTC().Truncate(time.Second))
	}
	if s.legalHold {
		*h.legalHold = types.ObjectLockLegalHoldStatusOn
	}
}

// httpStatus returns the HTTP status of a failed request, 0 if there was no
// response (a network error, a cancelled context, a failing body).
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// trimETag drops the quotes S3 puts around ETags.
func trimETag(etag *string) string { return strings.Trim(aws.ToString(etag), `"`) }

func lowerKeys(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}
