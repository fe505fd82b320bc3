package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/storetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

const MiB = storetest.MiB

// newStore creates a bucket on srv and a store on it under prefix.
func newStore(t *testing.T, srv *testserver.MinIOServer, prefix string) *s3store.Store {
	t.Helper()
	return newConfiguredStore(t, &srv.S3Access, s3store.Config{Prefix: prefix})
}

// newConfiguredStore creates a bucket with opts on srv and a store on it
// with cfg's settings, path-style and logging to the test. cfg.AWS is
// srv's configuration unless cfg sets one (with a BaseEndpoint).
func newConfiguredStore(t *testing.T, srv *testserver.S3Access, cfg s3store.Config, opts ...testserver.BucketOption) *s3store.Store {
	t.Helper()
	cfg.Bucket = srv.NewBucket(t, "", opts...)
	if cfg.AWS.BaseEndpoint == nil {
		cfg.AWS = srv.AWSConfig()
	}
	cfg.ForcePathStyle = true
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	st, err := s3store.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("s3store.New: %v", err)
	}
	return st
}

func TestConformanceHTTP(t *testing.T) {
	srv := testserver.MinIO(t)
	storetest.Run(t, func(t *testing.T) archive.Store { return newStore(t, srv, "archive/v1") })
}

func TestConformanceTLS(t *testing.T) {
	srv := testserver.MinIO(t, testserver.WithTLS())
	if !strings.HasPrefix(srv.Endpoint, "https://") {
		t.Fatalf("endpoint %s is not HTTPS", srv.Endpoint)
	}
	storetest.Run(t, func(t *testing.T) archive.Store { return newStore(t, srv, "") })
}

// listUploads returns the incomplete multipart uploads whose keys start
// with prefix.
func listUploads(t *testing.T, st *s3store.Store, prefix string) []string {
	t.Helper()
	out, err := st.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket()), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("ListMultipartUploads(%s): %v", prefix, err)
	}
	var ids []string
	for _, u := range out.Uploads {
		ids = append(ids, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	return ids
}

func TestCreateUploadKeepsOtherUploadsUntilComplete(t *testing.T) {
	srv := testserver.MinIO(t)
	st := newStore(t, srv, "p")
	full := st.ObjectKey("runs/1/a.zip")
	// Two uploads at the same key (crashed workers, or live ones)...
	for range 2 {
		if _, err := st.Client().CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(st.Bucket()), Key: &full}); err != nil {
			t.Fatal(err)
		}
	}
	if got := listUploads(t, st, full); len(got) != 2 {
		t.Fatalf("stale uploads = %q, want 2", got)
	}
	// ...and one at another key, which must survive.
	otherKey := st.ObjectKey("runs/1/a.zip.sig")
	if _, err := st.Client().CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(st.Bucket()), Key: &otherKey}); err != nil {
		t.Fatal(err)
	}

	up, err := st.CreateUpload(t.Context(), "runs/1/a.zip", archive.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// ...are left alone by CreateUpload: they may belong to a live worker.
	if got := listUploads(t, st, full); len(got) != 3 {
		t.Fatalf("uploads after CreateUpload = %q, want the 2 others and ours", got)
	}
	if got := listUploads(t, st, otherKey); len(got) != 1 {
		t.Errorf("upload at another key = %q, want it kept", got)
	}
	if err := up.WritePart(t.Context(), 1, bytes.NewReader([]byte("data")), 4); err != nil {
		t.Fatal(err)
	}
	// An orphan created after ours (a CreateMultipartUpload whose answer
	// was lost and retried) is cleaned up when ours completes.
	if _, err := st.Client().CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(st.Bucket()), Key: &full}); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Complete(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := listUploads(t, st, full); len(got) != 0 {
		t.Errorf("uploads after Complete = %q, want none", got)
	}
}

func TestAbortLeavesNoUpload(t *testing.T) {
	srv := testserver.MinIO(t)
	st := newStore(t, srv, "")
	up, err := st.CreateUpload(t.Context(), "k", archive.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.WritePart(t.Context(), 1, storetest.NewPattern(1, MiB), MiB); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := up.Abort(ctx); err != nil {
		t.Fatalf("Abort with a cancelled ctx: %v", err)
	}
	if got := listUploads(t, st, "k"); len(got) != 0 {
		t.Errorf("uploads after Abort = %q, want none", got)
	}
	// An upload the server no longer knows is aborted already: the server
	// answers a raw abort of it with success or 404 NoSuchUpload...
	if _, err := st.Client().AbortMultipartUpload(t.Context(), &s3.AbortMultipartUploadInput{
		Bucket: aws.String(st.Bucket()), Key: aws.String("k"), UploadId: aws.String(up.(*s3store.Upload).UploadID()),
	}); err != nil {
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotFound {
			t.Fatalf("raw abort of an aborted upload: %v, want success or 404 NoSuchUpload", err)
		}
	}
	// ...and the store treats that 404 as done: aborting an upload that was
	// aborted behind its back (a lifecycle rule, another process) succeeds.
	up2, err := st.CreateUpload(t.Context(), "k2", archive.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().AbortMultipartUpload(t.Context(), &s3.AbortMultipartUploadInput{
		Bucket: aws.String(st.Bucket()), Key: aws.String("k2"), UploadId: aws.String(up2.(*s3store.Upload).UploadID()),
	}); err != nil {
		t.Fatalf("raw abort: %v", err)
	}
	if err := up2.Abort(t.Context()); err != nil {
		t.Errorf("Abort of an upload the server no longer knows: %v, want nil (404 is done)", err)
	}
	if got := listUploads(t, st, "k2"); len(got) != 0 {
		t.Errorf("uploads after Abort = %q, want none", got)
	}
}

func TestPrefixAndLocation(t *testing.T) {
	srv := testserver.MinIO(t)
	st := newStore(t, srv, "/archive/v1/")
	if got, want := st.Location("runs/1/a.zip"), "s3://"+st.Bucket()+"/archive/v1/runs/1/a.zip"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if _, err := st.Put(t.Context(), "runs/1/a.zip", bytes.NewReader([]byte("a")), 1, archive.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// Beside the prefix, not under it.
	if _, err := st.Client().PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(st.Bucket()), Key: aws.String("archive/v1x/b"), Body: strings.NewReader("b"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(st.Bucket()), Key: aws.String("archive/v1/runs/1/a.zip")}); err != nil {
		t.Errorf("object not at the prefixed key: %v", err)
	}
	infos, err := st.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Key != "runs/1/a.zip" {
		t.Errorf("List = %+v, want only runs/1/a.zip", infos)
	}
}

// TestStreamingMemory uploads 256 MiB from a generator through Put and
// through 5 parts, and checks what the process allocated: a small fraction
// of that for a Put with a SHA-256 and for parts from a seekable buffer
// (streamed, checksummed in place), one part more for parts from a stream
// (copied into one reused buffer to checksum them), and one
// MaxBufferedPut part more for a Put without a SHA-256 (parts inside).
// Allocation is counted, not timed, so the check is deterministic.
func TestStreamingMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testserver.MinIOOption
	}{
		{"HTTP", nil},
		{"TLS", []testserver.MinIOOption{testserver.WithTLS()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.MinIO(t, tc.opts...)
			st := newStore(t, srv, "mem")
			const size = 256 * MiB
			const limit = 64 * MiB
			sum := storetest.PatternSHA256(1, size)

			measure(t, "Put", size, limit, func() error {
				_, err := st.Put(t.Context(), "put", storetest.NewPattern(1, size), size,
					archive.PutOptions{SHA256: sum, IfAbsent: true})
				return err
			})
			const crcSize = 4 * s3store.MaxBufferedPut
			measure(t, "Put without SHA-256", crcSize, limit+s3store.MaxBufferedPut, func() error {
				_, err := st.Put(t.Context(), "put-crc", storetest.NewPattern(2, crcSize), crcSize, archive.PutOptions{IfAbsent: true})
				return err
			})
			// Five parts from one stream, each over MinIO's 16 MiB TLS chunk limit.
			parts := []int64{52 * MiB, 52 * MiB, 52 * MiB, 52 * MiB, 48 * MiB}
			writeParts := func(key string, part func(r io.Reader, n int64) (io.Reader, error)) func() error {
				return func() error {
					up, err := st.CreateUpload(t.Context(), key, archive.PutOptions{SHA256: sum, IfAbsent: true})
					if err != nil {
						return err
					}
					defer up.Abort(t.Context())
					r := storetest.NewPattern(1, size)
					for i, n := range parts {
						body, err := part(r, n)
						if err != nil {
							return err
						}
						if err := up.WritePart(t.Context(), i+1, body, n); err != nil {
							return err
						}
					}
					_, err = up.Complete(t.Context())
					return err
				}
			}
			measure(t, "5 parts from a stream", size, limit+52*MiB, writeParts("parts", func(r io.Reader, _ int64) (io.Reader, error) {
				return r, nil
			}))
			// As the archive pipeline passes them: a *bytes.Reader over a
			// buffer it owns and refills.
			buf := make([]byte, 52*MiB)
			measure(t, "5 parts from a buffer", size, limit, writeParts("parts-buf", func(r io.Reader, n int64) (io.Reader, error) {
				_, err := io.ReadFull(r, buf[:n])
				return bytes.NewReader(buf[:n]), err
			}))
			for _, key := range []string{"put", "parts", "parts-buf"} {
				if got := readSHA256(t, st, key); !bytes.Equal(got, sum) {
					t.Errorf("%s: stored sha256 %x, want %x", key, got, sum)
				}
			}
			if got, want := readSHA256(t, st, "put-crc"), storetest.PatternSHA256(2, crcSize); !bytes.Equal(got, want) {
				t.Errorf("put-crc: stored sha256 %x, want %x", got, want)
			}
		})
	}
}

func measure(t *testing.T, name string, size, limit uint64, fn func() error) {
	t.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	err := fn()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%s of %d MiB: total allocation %.1f MiB, heap in use %.1f MiB after, %.0f MiB/s",
		name, size/MiB, float64(alloc)/MiB, float64(after.HeapInuse)/MiB, float64(size)/MiB/elapsed.Seconds())
	if alloc > limit {
		t.Errorf("%s of %d MiB allocated %.1f MiB, want < %d MiB: the body is being buffered", name, size/MiB, float64(alloc)/MiB, limit/MiB)
	}
}

func readSHA256(t *testing.T, st archive.Store, key string) []byte {
	t.Helper()
	rc, err := st.Open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// flakyClient turns answers into network errors, as a reset connection
// would.
type flakyClient struct {
	aws.HTTPClient
	// lose412: a 412 answer becomes an error, as when a losing conditional
	// write shows up as "connection reset by peer".
	lose412 bool
	// failPut: a PUT fails without reaching the server.
	failPut bool
}

func (c *flakyClient) Do(req *http.Request) (*http.Response, error) {
	if c.failPut && req.Method == http.MethodPut {
		return nil, errors.New("simulated: connection refused")
	}
	resp, err := c.HTTPClient.Do(req)
	if err == nil && c.lose412 && resp.StatusCode == http.StatusPreconditionFailed {
		resp.Body.Close()
		return nil, errors.New("simulated: connection reset by peer")
	}
	return resp, err
}

func TestConditionalWriteWithUnknownOutcome(t *testing.T) {
	srv := testserver.MinIO(t)
	cfg := srv.AWSConfig()
	flaky := &flakyClient{HTTPClient: cfg.HTTPClient}
	cfg.HTTPClient = flaky
	cfg.RetryMaxAttempts = 1
	st := newConfiguredStore(t, &srv.S3Access, s3store.Config{AWS: cfg})
	if _, err := st.Put(t.Context(), "k", bytes.NewReader([]byte("first")), 5, archive.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	flaky.lose412 = true
	_, err := st.Put(t.Context(), "k", storetest.NewPattern(1, 2*MiB), 2*MiB, archive.PutOptions{IfAbsent: true})
	if !errors.Is(err, archive.ErrExists) {
		t.Fatalf("conditional Put whose 412 was lost: %v, want ErrExists (decided by HeadObject)", err)
	}
	t.Logf("lost 412: %v", err)

	up, err := st.CreateUpload(t.Context(), "k", archive.PutOptions{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.WritePart(t.Context(), 1, bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Complete(t.Context()); !errors.Is(err, archive.ErrExists) {
		t.Fatalf("conditional Complete whose 412 was lost: %v, want ErrExists", err)
	}
	if got := listUploads(t, st, "k"); len(got) != 0 {
		t.Errorf("uploads after the lost Complete = %q, want it aborted", got)
	}

	flaky.lose412, flaky.failPut = false, true
	_, err = st.Put(t.Context(), "new", bytes.NewReader([]byte("x")), 1, archive.PutOptions{IfAbsent: true})
	if err == nil || errors.Is(err, archive.ErrExists) {
		t.Fatalf("conditional Put that never arrived: %v, want a plain error (the key does not exist)", err)
	}
}

func TestServerRestart(t *testing.T) {
	srv := testserver.MinIO(t)
	st := newStore(t, srv, "")
	if _, err := st.Put(t.Context(), "k", bytes.NewReader([]byte("kept")), 4, archive.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// A worker crashes mid-upload, then the server restarts.
	stale, err := st.CreateUpload(t.Context(), "stale", archive.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := stale.WritePart(t.Context(), 1, bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := st.Put(ctx, "down", bytes.NewReader([]byte("x")), 1, archive.PutOptions{}); err == nil {
		t.Fatal("Put while the server is down succeeded")
	}
	srv.Start()
	info, err := st.Stat(t.Context(), "k")
	if err != nil || info.Size != 4 {
		t.Fatalf("Stat after restart = %+v, %v", info, err)
	}
	// The exact-key listing still finds the stale upload after the restart,
	// so a completed upload at its key removes it.
	if got := listUploads(t, st, "stale"); len(got) != 1 {
		t.Fatalf("uploads at the stale key after restart = %q, want 1", got)
	}
	up, err := st.CreateUpload(t.Context(), "stale", archive.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort(t.Context())
	if err := up.WritePart(t.Context(), 1, bytes.NewReader([]byte("y")), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Complete(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := listUploads(t, st, "stale"); len(got) != 0 {
		t.Errorf("uploads after Complete = %q, want none", got)
	}
}

func TestLoadAWSConfigFromEnv(t *testing.T) {
	// The production path: the SDK's default chain, configured by the
	// environment, against MinIO over TLS trusted through AWS_CA_BUNDLE.
	srv := testserver.MinIO(t, testserver.WithTLS())
	bucket := srv.NewBucket(t, "")
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := s3store.LoadAWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pathStyle, err := s3store.ForcePathStyleFromEnv(os.Getenv)
	if err != nil || !pathStyle {
		t.Fatalf("ForcePathStyleFromEnv = %v, %v", pathStyle, err)
	}
	st, err := s3store.New(t.Context(), s3store.Config{Bucket: bucket, AWS: cfg, ForcePathStyle: pathStyle})
	if err != nil {
		t.Fatal(err)
	}
	data := storetest.PatternBytes(1, 20*MiB)
	sum := sha256.Sum256(data)
	if _, err := st.Put(t.Context(), "env", bytes.NewReader(data), int64(len(data)), archive.PutOptions{SHA256: sum[:]}); err != nil {
		t.Fatalf("Put over HTTPS with the default chain: %v", err)
	}
	if got := readSHA256(t, st, "env"); !bytes.Equal(got, sum[:]) {
		t.Errorf("stored sha256 %x, want %x", got, sum)
	}
}

func TestNewMissingBucket(t *testing.T) {
	srv := testserver.MinIO(t)
	_, err := s3store.New(t.Context(), s3store.Config{Bucket: "no-such-bucket", AWS: srv.AWSConfig(), ForcePathStyle: true})
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("New with a missing bucket: %v, want an error naming it", err)
	}
}
