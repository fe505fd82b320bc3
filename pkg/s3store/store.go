package s3store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
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
	client       *s3.Client
	bucket       string
	prefix       string // without slashes around it; "" for the bucket root
	storageClass types.StorageClass
	sse          types.ServerSideEncryption
	sseKMSKeyID  string
	log          *slog.Logger

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
		client:       client,
		bucket:       cfg.Bucket,
		prefix:       strings.Trim(cfg.Prefix, "/"),
		storageClass: cfg.StorageClass,
		sse:          cfg.SSE,
		sseKMSKeyID:  cfg.SSEKMSKeyID,
		log:          cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
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

// streaming adjusts the client for a request whose body is the caller's
// stream, which can be read only once:
//   - no SDK retries (a stream cannot be rewound; callers retry per part);
//   - no request checksum the SDK would have to compute by reading the body
//     ahead (a precomputed x-amz-checksum-* header is still sent);
//   - an unsigned payload, so SigV4 over plain HTTP does not hash (and
//     therefore read twice) the body. HTTPS protects the payload anyway.
func streaming(o *s3.Options) {
	o.RetryMaxAttempts = 1
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// Put streams exactly size bytes of r into one PutObject: nothing is
// buffered or spooled, so it needs only size <= 5 GiB (AWS's limit on a
// single PUT). With opts.SHA256 the digest is checked twice: locally before
// the last byte is sent, and by the server (x-amz-checksum-sha256); a
// mismatch returns a *[ChecksumError]. With opts.IfAbsent an existing key
// returns [archive.ErrExists]; with opts.IfMatch an object that changed or
// is missing returns [archive.ErrConflict]; if the outcome of such a write is unknown (the
// connection broke, which is how some servers answer a losing conditional
// write), Put asks HeadObject and returns ErrExists if the key exists.
// A reader that yields fewer or more than size bytes or fails, a cancelled
// ctx, or any other error leaves nothing at the key.
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
	check := archive.ExactOptions{Probe: true, Key: full}
	if len(opts.SHA256) > 0 && !s.noLocalChecksum {
		check.Hash, check.Want = sha256.New(), opts.SHA256
	}
	body := archive.NewExactReader(ctx, r, size, check)
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &full,
		Body:          body,
		ContentLength: &size,
		ContentType:   aws.String(cmp.Or(opts.ContentType, DefaultContentType)),
		Metadata:      opts.Metadata,
		StorageClass:  s.storageClass,
	}
	s.setSSE(&in.ServerSideEncryption, &in.SSEKMSKeyId)
	if len(opts.SHA256) > 0 {
		in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(opts.SHA256))
	}
	if opts.IfAbsent && opts.IfMatch != "" {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: put object %s: IfAbsent and IfMatch are exclusive", full)
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(`"` + opts.IfMatch + `"`)
	}
	if size == 0 {
		// The HTTP client never reads an empty body: check it here.
		if err := body.Finish(false); err != nil {
			return archive.ObjectInfo{}, fmt.Errorf("s3store: put object %s: %w", full, err)
		}
		in.Body = http.NoBody
	}

	out, err := s.client.PutObject(ctx, in, streaming)
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

// putError classifies a failed PutObject.
func (s *Store) putError(ctx context.Context, full string, opts archive.PutOptions, body *archive.ExactReader, err error) error {
	if body.Err() != nil { // our reader stopped the request
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
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       &s.bucket,
		Key:          &full,
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		if httpStatus(err) == http.StatusNotFound {
			return archive.ObjectInfo{}, archive.ErrNotFound
		}
		return archive.ObjectInfo{}, err
	}
	return archive.ObjectInfo{
		Size:        aws.ToInt64(out.ContentLength),
		ETag:        trimETag(out.ETag),
		VersionID:   aws.ToString(out.VersionId),
		ContentType: aws.ToString(out.ContentType),
		Metadata:    lowerKeys(out.Metadata),
	}, nil
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

func (s *Store) setSSE(sse *types.ServerSideEncryption, kmsKey **string) {
	*sse = s.sse
	if s.sseKMSKeyID != "" {
		*kmsKey = &s.sseKMSKeyID
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
