package s3store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// maxParts is S3's limit on the parts of one upload.
const maxParts = 10000

var _ archive.Upload = (*Upload)(nil)

// CreateUpload starts a multipart upload at key, with a full-object
// CRC32C (ChecksumAlgorithm CRC32C, ChecksumType FULL_OBJECT): every part
// carries its own precomputed CRC32C header, and Complete gives the CRC32C
// of the whole object, which the server checks and keeps (HeadObject with
// ChecksumMode ENABLED returns it). opts.Kind picks the storage class and
// Object Lock retention (see [Config]). It never aborts other uploads at
// the key, which may belong to a live worker; orphans are removed after a
// Complete at the key succeeds.
func (s *Store) CreateUpload(ctx context.Context, key string, opts archive.PutOptions) (archive.Upload, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("s3store: create multipart upload %s: %w", key, err)
	}
	full := s.ObjectKey(key)
	if n := len(opts.SHA256); n != 0 && n != sha256.Size {
		return nil, fmt.Errorf("s3store: create multipart upload %s: SHA256 has %d bytes, want %d", full, n, sha256.Size)
	}
	if opts.IfAbsent && opts.IfMatch != "" {
		return nil, fmt.Errorf("s3store: create multipart upload %s: IfAbsent and IfMatch are exclusive", full)
	}
	return s.createUpload(ctx, key, full, opts)
}

func (s *Store) createUpload(ctx context.Context, key, full string, opts archive.PutOptions) (*Upload, error) {
	in := &s3.CreateMultipartUploadInput{
		Bucket:            &s.bucket,
		Key:               &full,
		ContentType:       aws.String(cmp.Or(opts.ContentType, DefaultContentType)),
		Metadata:          opts.Metadata,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		ChecksumType:      types.ChecksumTypeFullObject,
	}
	s.setHeaders(opts.Kind, newObjectHeaders{
		class: &in.StorageClass, sse: &in.ServerSideEncryption, kmsKey: &in.SSEKMSKeyId,
		lockMode: &in.ObjectLockMode, retainUntil: &in.ObjectLockRetainUntilDate, legalHold: &in.ObjectLockLegalHoldStatus,
	})
	out, err := s.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("s3store: create multipart upload %s: %w", full, err)
	}
	u := &Upload{
		s:           s,
		key:         key,
		full:        full,
		id:          aws.ToString(out.UploadId),
		contentType: aws.ToString(in.ContentType),
		opts:        opts,
		crcs:        []uint32{0},
	}
	if len(opts.SHA256) > 0 {
		u.hash = sha256.New()
		st, err := u.hash.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("s3store: create multipart upload %s: %w", full, err)
		}
		u.states = [][]byte{st}
	}
	return u, nil
}

// abortStale aborts every incomplete multipart upload of exactly full. It
// runs only once an object is complete at full: uploads still open there
// can only end in a 412 or as orphans. They are found by
// ListMultipartUploads with the exact key as prefix, the one query MinIO, AWS
// and versitygw agree on.
//
// Only the first page is used, never the markers: versitygw v1.8.0 fails
// on the second page (versitygw#2149), and one key never has 1,000 open
// uploads in practice. Whatever a page missed is retried by the next
// Complete at the key, and by the bucket's AbortIncompleteMultipartUpload
// rule.
func (s *Store) abortStale(ctx context.Context, full string) error {
	page, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &full})
	if err != nil {
		return fmt.Errorf("s3store: list multipart uploads %s: %w", full, err)
	}
	for _, mu := range page.Uploads {
		if aws.ToString(mu.Key) != full { // AWS matches by prefix
			continue
		}
		id := aws.ToString(mu.UploadId)
		if err := s.abort(ctx, full, id); err != nil {
			return err
		}
		s.log.Info("aborted stale multipart upload", "key", full, "upload_id", id, "initiated", aws.ToTime(mu.Initiated))
	}
	return nil
}

// abort aborts one upload, even if ctx is cancelled; an unknown upload
// (404 NoSuchUpload on versitygw and AWS) is already aborted.
func (s *Store) abort(ctx context.Context, full, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &full, UploadId: &id})
	if err != nil && httpStatus(err) != http.StatusNotFound {
		return fmt.Errorf("s3store: abort multipart upload %s %s: %w", full, id, err)
	}
	return nil
}

// Upload is one S3 multipart upload, made by [Store.CreateUpload]. Its
// methods may be called from several goroutines, but run one at a time.
type Upload struct {
	s           *Store
	key, full   string
	id          string
	contentType string
	opts        archive.PutOptions

	mu    sync.Mutex
	parts []types.CompletedPart // parts[i] is part i+1
	sizes []int64
	// crcs[i] is the CRC32C of parts 1..i (crcs[0] = 0): the full-object
	// checksum so far, kept per part to rewind when part i+1 is rewritten.
	crcs []uint32
	// With opts.SHA256: the running SHA-256 of parts 1..len(parts), and
	// states[i] its state after part i, to rewind when part i+1 is
	// rewritten.
	hash   hash.Hash
	states [][]byte
	buf    []byte // a copy of the part being written, from a reader that cannot seek
	done   bool   // completed or aborted
}

// UploadID returns the S3 upload id.
func (u *Upload) UploadID() string { return u.id }

// WritePart writes exactly size bytes of r as part n with UploadPart, with
// the part's CRC32C as a header (x-amz-checksum-crc32c), so it needs the
// bytes before sending them:
//   - If r is an io.ReadSeeker (a *bytes.Reader over the caller's buffer),
//     WritePart reads the part once to checksum it, seeks back, and sends it
//     from r: no copy. The SDK may then retry the request by seeking again.
//     r must not change until WritePart returns; on success it is left just
//     after the part.
//   - Otherwise it first copies the part into a buffer of the upload (size
//     bytes, reused by the next part).
//
// It reads no byte beyond size, so r may be one stream cut into parts. n
// must be at most one more than the number of parts written; writing part
// n again (after a failure, or to replace it) drops the parts after it.
// Every part but the last must be at least 5 MiB (S3's rule, checked at
// Complete). A failure leaves the upload open: write the part again, or
// Abort.
func (u *Upload) WritePart(ctx context.Context, n int, r io.Reader, size int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return fmt.Errorf("s3store: upload part %d of %s: upload already completed or aborted", n, u.full)
	}
	if n < 1 || n > maxParts || n > len(u.parts)+1 {
		return fmt.Errorf("s3store: upload part %d of %s: want a part number from 1 to %d", n, u.full, min(len(u.parts)+1, maxParts))
	}
	if size < 0 {
		return fmt.Errorf("s3store: upload part %d of %s: negative size %d", n, u.full, size)
	}
	// Forget part n and later ones: they are replaced, or lost on failure.
	u.parts, u.sizes, u.crcs = u.parts[:n-1], u.sizes[:n-1], u.crcs[:n]
	if u.hash != nil {
		u.states = u.states[:n]
		if err := u.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.states[n-1]); err != nil {
			return fmt.Errorf("s3store: upload part %d of %s: rewind sha256: %w", n, u.full, err)
		}
	}
	crc := crcWriter{full: u.crcs[n-1]}
	var w io.Writer = &crc
	if u.hash != nil {
		w = io.MultiWriter(&crc, u.hash)
	}
	body, err := rereadable(ctx, r, size, &u.buf, w, archive.ExactOptions{Key: u.full})
	if err == nil {
		var out *s3.UploadPartOutput
		out, err = u.s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:         &u.s.bucket,
			Key:            &u.full,
			UploadId:       &u.id,
			PartNumber:     aws.Int32(int32(n)),
			Body:           body,
			ContentLength:  &size,
			ChecksumCRC32C: aws.String(crc32cBase64(crc.part)),
		}, bodyOptions(true))
		if ferr := body.fence(); err == nil && ferr != nil {
			err = fmt.Errorf("seek past the part: %w", ferr)
		}
		if err == nil {
			u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(n)), ChecksumCRC32C: aws.String(crc32cBase64(crc.part))})
		}
	}
	if err != nil {
		if u.hash != nil {
			_ = u.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.states[n-1])
		}
		if httpStatus(err) == http.StatusNotFound || httpStatus(err) == 0 && ctx.Err() == nil && u.gone(ctx) {
			// NoSuchUpload: another writer aborted or completed it. A
			// part that got no answer asks ListParts: versitygw resets the
			// connection of a part it refuses before reading its body.
			u.done = true
			err = fmt.Errorf("%w (%v)", archive.ErrUploadGone, err)
		}
		return fmt.Errorf("s3store: upload part %d of %s: %w", n, u.full, err)
	}
	u.sizes = append(u.sizes, size)
	u.crcs = append(u.crcs, crc.full)
	if u.hash != nil {
		st, err := u.hash.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return fmt.Errorf("s3store: upload part %d of %s: %w", n, u.full, err)
		}
		u.states = append(u.states, st)
	}
	return nil
}

// gone reports whether the upload no longer exists (ListParts answers 404
// NoSuchUpload). Any other answer, or none, means it may still exist.
func (u *Upload) gone(ctx context.Context) bool {
	_, err := u.s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: &u.s.bucket, Key: &u.full, UploadId: &u.id, MaxParts: aws.Int32(1)})
	return httpStatus(err) == http.StatusNotFound
}

// Complete checks the SHA-256 of the parts against opts.SHA256 (aborting
// and returning a *[ChecksumError] on a mismatch), then completes the
// upload with the parts' CRC32Cs and the full-object CRC32C, which the
// server verifies. With opts.IfAbsent it sends If-None-Match: *: a 412
// aborts the upload and returns [archive.ErrExists]; so does an unanswered
// conditional complete after which HeadObject finds the key. With
// opts.IfMatch it sends If-Match: an object that changed or is gone aborts
// the upload and returns [archive.ErrConflict]. On other errors the upload
// stays open: Complete again or Abort.
func (u *Upload) Complete(ctx context.Context) (archive.ObjectInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: complete multipart upload %s: upload already completed or aborted", u.full)
	}
	if len(u.parts) == 0 {
		return archive.ObjectInfo{}, fmt.Errorf("s3store: complete multipart upload %s: no parts", u.full)
	}
	if u.hash != nil {
		if got := u.hash.Sum(nil); !bytes.Equal(got, u.opts.SHA256) {
			err := error(&ChecksumError{Key: u.full, Want: u.opts.SHA256, Got: got})
			if aerr := u.abortLocked(ctx); aerr != nil {
				err = errors.Join(err, aerr)
			}
			return archive.ObjectInfo{}, fmt.Errorf("s3store: complete multipart upload %s: %w", u.full, err)
		}
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          &u.s.bucket,
		Key:             &u.full,
		UploadId:        &u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: slices.Clone(u.parts)},
		ChecksumCRC32C:  aws.String(crc32cBase64(u.crcs[len(u.parts)])),
		ChecksumType:    types.ChecksumTypeFullObject,
	}
	if u.opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if u.opts.IfMatch != "" {
		in.IfMatch = aws.String(`"` + u.opts.IfMatch + `"`)
	}
	out, err := u.s.client.CompleteMultipartUpload(ctx, in)
	if err != nil && u.opts.IfMatch != "" {
		return archive.ObjectInfo{}, u.conditionalReplaceError(ctx, err)
	}
	if err != nil {
		exists := httpStatus(err) == http.StatusPreconditionFailed
		if !exists && httpStatus(err) == 0 && u.opts.IfAbsent && ctx.Err() == nil {
			_, herr := u.s.head(ctx, u.full)
			exists = herr == nil
		}
		if !exists && httpStatus(err) == http.StatusNotFound {
			// NoSuchUpload: someone aborted it (or it completed and the
			// answer was lost). The object's existence decides.
			u.done = true
			if _, herr := u.s.head(ctx, u.full); herr == nil && u.opts.IfAbsent {
				return archive.ObjectInfo{}, fmt.Errorf("s3store: complete multipart upload %s: %w (%v)", u.full, archive.ErrExists, err)
			}
			return archive.ObjectInfo{}, fmt.Errorf("s3store: complete multipart upload %s: %w (%v)", u.full, archive.ErrUploadGone, err)
		}
		if exists {
			err = fmt.Errorf("%w (%v)", archive.ErrExists, err)
			if aerr := u.abortLocked(ctx); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
		return archive.ObjectInfo{}, fmt.Errorf("s3store: complete multipart upload %s: %w", u.full, err)
	}
	u.done, u.buf = true, nil
	// A CreateMultipartUpload whose answer was lost (and retried by the SDK)
	// or an abort that failed while S3 was down can leave an orphan upload
	// at this key; now that the object is complete, remove it.
	if err := u.s.abortStale(ctx, u.full); err != nil {
		u.s.log.Warn("cleaning up stale uploads after complete", "key", u.full, "err", err)
	}
	var size int64
	for _, n := range u.sizes {
		size += n
	}
	return archive.ObjectInfo{
		Key:         u.key,
		Size:        size,
		ETag:        trimETag(out.ETag),
		VersionID:   aws.ToString(out.VersionId),
		ContentType: u.contentType,
		Metadata:    lowerKeys(u.opts.Metadata),
	}, nil
}

// conditionalReplaceError classifies a failed Complete with If-Match: a
// 412 (changed), or a 404 (the object is gone, or the upload is) with no
// object at the key, is [archive.ErrConflict] and aborts the upload; a 404
// with an object there means the upload is gone.
func (u *Upload) conditionalReplaceError(ctx context.Context, err error) error {
	status := httpStatus(err)
	if status == http.StatusNotFound {
		if _, herr := u.s.head(ctx, u.full); herr == nil {
			u.done = true
			return fmt.Errorf("s3store: complete multipart upload %s: %w (%v)", u.full, archive.ErrUploadGone, err)
		}
	}
	if status != http.StatusPreconditionFailed && status != http.StatusNotFound {
		return fmt.Errorf("s3store: complete multipart upload %s: %w", u.full, err)
	}
	err = fmt.Errorf("%w (%v)", archive.ErrConflict, err)
	if aerr := u.abortLocked(ctx); aerr != nil {
		err = errors.Join(err, aerr)
	}
	return fmt.Errorf("s3store: complete multipart upload %s: %w", u.full, err)
}

// Abort discards the upload and its parts. It runs even when ctx is
// cancelled (bounded by 30 s), is idempotent, and does nothing after a
// successful Complete.
func (u *Upload) Abort(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return nil
	}
	return u.abortLocked(ctx)
}

func (u *Upload) abortLocked(ctx context.Context) error {
	if err := u.s.abort(ctx, u.full, u.id); err != nil {
		return err
	}
	u.done, u.buf = true, nil
	return nil
}
