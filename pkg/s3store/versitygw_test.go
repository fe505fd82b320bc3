package s3store_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/storetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// The store on versitygw v1.8.0 (posix backend), the second S3
// implementation: the same code path as on MinIO, no backend switch.

// newVersityStore creates a bucket on srv and a store on it under prefix.
func newVersityStore(t *testing.T, srv *testserver.VersityGWServer, prefix string) *s3store.Store {
	t.Helper()
	return newConfiguredStore(t, &srv.S3Access, s3store.Config{Prefix: prefix})
}

func TestConformanceVersityGW(t *testing.T) {
	srv := testserver.VersityGW(t)
	storetest.Run(t, func(t *testing.T) archive.Store { return newVersityStore(t, srv, "archive/v1") })
}

// TestVersityGWSSE pins what versitygw does with SSE settings: it accepts
// SSE-S3 (AES256) and SSE-KMS (aws:kms, with or without a key id) on
// PutObject and CreateMultipartUpload and ignores them, so a store
// configured with SSE works there (and writes plain files). Nothing is
// asserted on the SSE response header (see NOTES).
func TestVersityGWSSE(t *testing.T) {
	srv := testserver.VersityGW(t)
	for _, tc := range []struct {
		name string
		sse  types.ServerSideEncryption
		key  string
	}{
		{"AES256", types.ServerSideEncryptionAes256, ""},
		{"aws:kms", types.ServerSideEncryptionAwsKms, ""},
		{"aws:kms with key id", types.ServerSideEncryptionAwsKms, "archiver-test-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newConfiguredStore(t, &srv.S3Access, s3store.Config{Prefix: "sse", SSE: tc.sse, SSEKMSKeyID: tc.key})
			ctx := t.Context()

			small := storetest.PatternBytes(1, 64<<10)
			if _, err := st.Put(ctx, "small", bytes.NewReader(small), int64(len(small)), archive.PutOptions{IfAbsent: true, SHA256: storetest.PatternSHA256(1, 64<<10)}); err != nil {
				t.Fatalf("Put with SSE %s: %v", tc.sse, err)
			}
			assertObject(t, st, "small", small)

			size := int64(storetest.PartSize + MiB)
			big := storetest.PatternBytes(2, size)
			up, err := st.CreateUpload(ctx, "big", archive.PutOptions{IfAbsent: true, SHA256: storetest.PatternSHA256(2, size)})
			if err != nil {
				t.Fatalf("CreateUpload with SSE %s: %v", tc.sse, err)
			}
			for i, part := range [][]byte{big[:storetest.PartSize], big[storetest.PartSize:]} {
				if err := up.WritePart(ctx, i+1, bytes.NewReader(part), int64(len(part))); err != nil {
					t.Fatalf("WritePart %d: %v", i+1, err)
				}
			}
			if _, err := up.Complete(ctx); err != nil {
				t.Fatalf("Complete with SSE %s: %v", tc.sse, err)
			}
			assertObject(t, st, "big", big)

			// The raw request carries the SSE headers and is accepted too.
			in := &s3.PutObjectInput{Bucket: aws.String(st.Bucket()), Key: aws.String(st.ObjectKey("raw")), Body: bytes.NewReader(small), ServerSideEncryption: tc.sse}
			if tc.key != "" {
				in.SSEKMSKeyId = aws.String(tc.key)
			}
			out, err := st.Client().PutObject(ctx, in)
			if err != nil {
				t.Fatalf("raw PutObject with SSE %s: %v", tc.sse, err)
			}
			t.Logf("SSE %s: PutObject answers x-amz-server-side-encryption %q", tc.sse, out.ServerSideEncryption)
		})
	}
}

// assertObject reads key back, with Stat and Open, and compares it.
func assertObject(t *testing.T, st *s3store.Store, key string, want []byte) {
	t.Helper()
	info, err := st.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat %s: %v", key, err)
	}
	if info.Size != int64(len(want)) {
		t.Errorf("Stat %s: size %d, want %d", key, info.Size, len(want))
	}
	rc, err := st.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open %s: %v", key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: read %d bytes that differ from the %d written", key, len(got), len(want))
	}
}

// TestVersityGWCompleteAbortsOnlyItsKey: versitygw matches
// ListMultipartUploads' Prefix as a prefix (MinIO as an exact key), so the
// cleanup after Complete lists the uploads of "a.zip.sig" too; it must
// abort the orphan at its own key and leave the other key's upload alone.
func TestVersityGWCompleteAbortsOnlyItsKey(t *testing.T) {
	srv := testserver.VersityGW(t)
	st := newVersityStore(t, srv, "p")
	ctx, c, bucket := t.Context(), st.Client(), aws.String(st.Bucket())
	full, other := st.ObjectKey("runs/1/a.zip"), st.ObjectKey("runs/1/a.zip.sig")
	up, err := st.CreateUpload(ctx, "runs/1/a.zip", archive.PutOptions{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.WritePart(ctx, 1, bytes.NewReader([]byte("data")), 4); err != nil {
		t.Fatal(err)
	}
	// An orphan at the key (a CreateMultipartUpload whose answer was lost),
	// and a live upload at the longer key.
	for _, k := range []string{full, other} {
		if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := up.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: bucket, Prefix: aws.String(full)})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, u := range out.Uploads {
		left = append(left, aws.ToString(u.Key))
	}
	if len(left) != 1 || left[0] != other {
		t.Errorf("uploads listed by prefix %s after Complete: %q, want only the one at %s", full, left, other)
	}
}

// TestVersityGWDifferences pins the documented differences from MinIO that
// the store's code path relies on (NOTES, "Portable across S3
// implementations"). If a versitygw upgrade changes one, this test says
// which, so that the workaround can go.
func TestVersityGWDifferences(t *testing.T) {
	srv := testserver.VersityGW(t)

	t.Run("AbortUnknownUploadIsNoSuchUpload", func(t *testing.T) {
		t.Parallel()
		st := newVersityStore(t, srv, "")
		up, err := st.CreateUpload(t.Context(), "k", archive.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := up.Abort(t.Context()); err != nil {
			t.Fatalf("Abort: %v", err)
		}
		_, err = st.Client().AbortMultipartUpload(t.Context(), &s3.AbortMultipartUploadInput{
			Bucket: aws.String(st.Bucket()), Key: aws.String("k"), UploadId: aws.String(up.(*s3store.Upload).UploadID()),
		})
		var re *awshttp.ResponseError
		var ae smithy.APIError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotFound || !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchUpload" {
			t.Fatalf("raw abort of an aborted upload: %v, want 404 NoSuchUpload", err)
		}
	})

	t.Run("ListMultipartUploadsSecondPageFails", func(t *testing.T) {
		t.Parallel()
		st := newVersityStore(t, srv, "")
		for _, k := range []string{"a", "b", "c"} {
			if _, err := st.CreateUpload(t.Context(), k, archive.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		first, err := st.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket()), MaxUploads: aws.Int32(2)})
		if err != nil {
			t.Fatalf("first page: %v", err)
		}
		if len(first.Uploads) != 2 || !aws.ToBool(first.IsTruncated) {
			t.Fatalf("first page: %d uploads, truncated %v; want 2, true", len(first.Uploads), aws.ToBool(first.IsTruncated))
		}
		second, err := st.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{
			Bucket: aws.String(st.Bucket()), MaxUploads: aws.Int32(2),
			KeyMarker: first.NextKeyMarker, UploadIdMarker: first.NextUploadIdMarker,
		})
		if err == nil {
			t.Fatalf("second page answered %d uploads: versitygw#2149 is fixed, abortStale may page again", len(second.Uploads))
		}
		t.Logf("second page: %v (versitygw#2149)", err)
	})

	// A PutObject whose body breaks off (the client closes the connection
	// after 300 KiB of 1 MiB) is stored as a complete 300 KiB object when
	// no checksum header comes with it; with x-amz-checksum-crc32c it is
	// refused. So every write must carry a checksum (or be a multipart
	// upload, which only Complete makes visible).
	t.Run("TruncatedPutIsStoredWithoutChecksum", func(t *testing.T) {
		t.Parallel()
		st := newVersityStore(t, srv, "")
		data := storetest.PatternBytes(7, MiB)
		for _, withCRC := range []bool{false, true} {
			key := "truncated-without-checksum"
			in := &s3.PutObjectInput{
				Bucket: aws.String(st.Bucket()), ContentLength: aws.Int64(MiB),
				Body: io.MultiReader(bytes.NewReader(data[:300<<10]), iotest.ErrReader(errors.New("source failed"))),
			}
			if withCRC {
				key = "truncated-with-checksum"
				in.ChecksumCRC32C = aws.String(partCRC32C(data))
			}
			in.Key = aws.String(key)
			if _, err := st.Client().PutObject(t.Context(), in, rawStreaming); err == nil {
				t.Fatalf("%s: PutObject of a body that failed succeeded", key)
			}
			head := func() (int64, error) {
				out, err := st.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(st.Bucket()), Key: aws.String(key)})
				if err != nil {
					return 0, err
				}
				return aws.ToInt64(out.ContentLength), nil
			}
			if withCRC {
				if size, err := head(); err == nil {
					t.Errorf("%s: a %d-byte object was stored", key, size)
				}
				continue
			}
			testserver.Eventually(t, 10*time.Second, "the truncated object to appear (versitygw v1.8.0 stores it)", func() bool {
				size, err := head()
				return err == nil && size == 300<<10
			})
		}
	})

	// An UploadPart of a part of some MiB to an upload that is gone
	// (aborted by another writer, or completed) is answered 404
	// NoSuchUpload, or, about a third of the time, the server closes the
	// connection while the body is still being sent: the client sees a
	// reset and no status, as with a losing conditional write (NOTES). Of
	// 30 tries, at least one is reset (all 30 answered 404 would have
	// probability about 1e-5).
	t.Run("UploadPartToGoneUploadCanBeReset", func(t *testing.T) {
		t.Parallel()
		st := newVersityStore(t, srv, "")
		c, ctx, bucket, key := st.Client(), t.Context(), aws.String(st.Bucket()), aws.String("gone")
		data := storetest.PatternBytes(9, storetest.PartSize)
		sum := partCRC32C(data)
		statuses := map[int]int{}
		var reset error
		for range 30 {
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: key, UploadId: up.UploadId}); err != nil {
				t.Fatal(err)
			}
			_, err = c.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: bucket, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1),
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))), ChecksumCRC32C: &sum,
			}, rawStreaming)
			status := httpStatusOf(err)
			statuses[status]++
			switch {
			case err == nil || status != 0 && status != http.StatusNotFound:
				t.Fatalf("UploadPart to an aborted upload: %v, want 404 NoSuchUpload or no answer", err)
			case status == 0:
				reset = err
			}
		}
		t.Logf("UploadPart of %d MiB to an aborted upload, 30 times: %v by status (0: no answer); a reset: %v", storetest.PartSize>>20, statuses, reset)
		if statuses[0] == 0 {
			t.Errorf("every UploadPart to an aborted upload was answered 404: versitygw no longer resets the connection")
		}
	})

	// The store's side of the reset above: WritePart to an upload someone
	// aborted is ErrUploadGone whether versitygw answers 404 or resets the
	// connection (the store then asks ListParts).
	t.Run("WritePartToGoneUploadIsUploadGone", func(t *testing.T) {
		t.Parallel()
		st := newVersityStore(t, srv, "")
		data := storetest.PatternBytes(10, storetest.PartSize)
		for i := range 30 {
			up, err := st.CreateUpload(t.Context(), "gone-store", archive.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			id := up.(*s3store.Upload).UploadID()
			if _, err := st.Client().AbortMultipartUpload(t.Context(), &s3.AbortMultipartUploadInput{
				Bucket: aws.String(st.Bucket()), Key: aws.String("gone-store"), UploadId: &id,
			}); err != nil {
				t.Fatal(err)
			}
			err = up.WritePart(t.Context(), 1, bytes.NewReader(data), int64(len(data)))
			if !errors.Is(err, archive.ErrUploadGone) {
				t.Fatalf("try %d: WritePart to an aborted upload: %v, want ErrUploadGone", i, err)
			}
		}
	})

	// What the store's checksums rest on: a multipart upload completed
	// with a full-object CRC32C (every part with its own CRC32C) keeps it,
	// HeadObject returns it with ChecksumMode ENABLED, and a wrong one is
	// refused at Complete.
	t.Run("FullObjectCRC32C", func(t *testing.T) {
		t.Parallel()
		st := newVersityStore(t, srv, "")
		c, ctx := st.Client(), t.Context()
		size := int64(storetest.PartSize + MiB)
		data := storetest.PatternBytes(8, size)
		for _, wrong := range []bool{true, false} {
			key := aws.String("full-object-crc32c")
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
				Bucket: aws.String(st.Bucket()), Key: key,
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ChecksumType: types.ChecksumTypeFullObject,
			})
			if err != nil {
				t.Fatal(err)
			}
			var parts []types.CompletedPart
			for i, p := range [][]byte{data[:storetest.PartSize], data[storetest.PartSize:]} {
				sum := partCRC32C(p)
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{
					Bucket: aws.String(st.Bucket()), Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)),
					Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p))), ChecksumCRC32C: &sum,
				}, rawStreaming)
				if err != nil {
					t.Fatalf("UploadPart %d: %v", i+1, err)
				}
				parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1)), ChecksumCRC32C: &sum})
			}
			full := partCRC32C(data)
			if wrong {
				full = partCRC32C(data[1:])
			}
			_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
				Bucket: aws.String(st.Bucket()), Key: key, UploadId: up.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
				ChecksumCRC32C:  &full, ChecksumType: types.ChecksumTypeFullObject,
			})
			if wrong {
				if err == nil {
					t.Fatal("Complete with a wrong full-object CRC32C succeeded")
				}
				if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(st.Bucket()), Key: key, UploadId: up.UploadId}); err != nil && httpStatusOf(err) != http.StatusNotFound {
					t.Fatalf("abort after the refused Complete: %v", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Complete with the full-object CRC32C: %v", err)
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.Bucket()), Key: key, ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(head.ChecksumCRC32C) != full || head.ChecksumType != types.ChecksumTypeFullObject {
				t.Errorf("HeadObject: CRC32C %q type %q, want %s FULL_OBJECT", aws.ToString(head.ChecksumCRC32C), head.ChecksumType, full)
			}
		}
	})
}

// partCRC32C is the base64 CRC32C of b, as in x-amz-checksum-crc32c.
func partCRC32C(b []byte) string {
	sum := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
}

// httpStatusOf is the HTTP status of a failed request, 0 without an answer.
func httpStatusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// rawStreaming sends a request body as the store does (s3store's
// streaming options): no SDK retry, no request checksum the SDK computes,
// an unsigned payload.
func rawStreaming(o *s3.Options) {
	o.RetryMaxAttempts = 1
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}
