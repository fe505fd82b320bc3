package s3store_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/s3stub"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// coldStore is a store reaching MinIO through the archive stub, on a new
// bucket under prefix "p".
func coldStore(t *testing.T) (*s3store.Store, *s3stub.Server) {
	t.Helper()
	srv := testserver.MinIO(t)
	stub := s3stub.New(t, srv.Endpoint, srv.HTTPClient().Transport)
	cfg := srv.AWSConfig()
	cfg.BaseEndpoint = aws.String(stub.URL)
	st, err := s3store.New(t.Context(), s3store.Config{Bucket: srv.NewBucket(t, ""), Prefix: "p", AWS: cfg, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return st, stub
}

func putBytes(t *testing.T, st *s3store.Store, key string, b []byte) {
	t.Helper()
	if _, err := st.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)), archive.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreLifecycle walks an archived object through S3's states:
// unreadable, restore requested, in progress, restored (readable, with an
// expiry), restore renewed.
func TestRestoreLifecycle(t *testing.T) {
	st, stub := coldStore(t)
	ctx := t.Context()
	body := bytes.Repeat([]byte("cold "), 1000)
	putBytes(t, st, "a/deep.zip", body)
	putBytes(t, st, "a/hot.zip", []byte("hot"))
	stub.Archive(st.Bucket(), st.ObjectKey("a/deep.zip"), types.StorageClassDeepArchive)

	hot, err := st.ObjectState(ctx, "a/hot.zip")
	if err != nil || hot.Archived || !hot.Readable() || hot.StorageClass != types.StorageClassStandard || hot.Info.Size != 3 {
		t.Fatalf("hot object: %+v, %v", hot, err)
	}
	if _, err := st.Restore(ctx, "a/hot.zip", 1, types.TierBulk); err == nil {
		t.Fatalf("restore of a STANDARD object on MinIO succeeded")
	}
	if _, err := st.ObjectState(ctx, "a/none"); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("ObjectState of a missing key: %v, want ErrNotFound", err)
	}

	cold, err := st.ObjectState(ctx, "a/deep.zip")
	if err != nil || !cold.Archived || cold.Readable() || cold.RestoreRequested || cold.StorageClass != types.StorageClassDeepArchive ||
		cold.Info.Size != int64(len(body)) || cold.Info.ETag == "" || cold.Info.Key != "a/deep.zip" {
		t.Fatalf("archived object: %+v, %v", cold, err)
	}
	_, err = st.Open(ctx, "a/deep.zip")
	if !s3store.NeedsRestore(err) || !strings.Contains(err.Error(), "InvalidObjectState") {
		t.Fatalf("Open of an archived object: %v, want InvalidObjectState", err)
	}
	var ios *types.InvalidObjectState
	if !errors.As(err, &ios) || ios.StorageClass != types.StorageClassDeepArchive {
		t.Fatalf("the SDK did not decode the error body's StorageClass: %#v", ios)
	}

	already, err := st.Restore(ctx, "a/deep.zip", 3, types.TierStandard)
	if err != nil || already {
		t.Fatalf("first restore: already %v, %v; want a new request", already, err)
	}
	already, err = st.Restore(ctx, "a/deep.zip", 3, types.TierStandard)
	if err != nil || !already {
		t.Fatalf("restore while in progress: already %v, %v; want already (409 is not an error)", already, err)
	}
	if s, err := st.ObjectState(ctx, "a/deep.zip"); err != nil || !s.RestoreOngoing || s.Readable() {
		t.Fatalf("during the restore: %+v, %v", s, err)
	}

	if err := stub.CompleteRestore(st.Bucket(), st.ObjectKey("a/deep.zip")); err != nil {
		t.Fatal(err)
	}
	s, err := st.ObjectState(ctx, "a/deep.zip")
	if err != nil || !s.Readable() || !s.Restored() || s.RestoreExpiry.Before(time.Now().Add(3*24*time.Hour)) || s.RestoreExpiry.After(time.Now().Add(5*24*time.Hour)) {
		t.Fatalf("after the restore: %+v, %v; want readable, expiring in 3-4 days", s, err)
	}
	rc, err := st.Open(ctx, "a/deep.zip")
	if err != nil {
		t.Fatalf("Open after the restore: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes (%v), want the object's %d", len(got), err, len(body))
	}
	already, err = st.Restore(ctx, "a/deep.zip", 10, types.TierBulk)
	if err != nil || !already {
		t.Fatalf("restore of a restored object: already %v, %v; want already (200)", already, err)
	}
	if s2, err := st.ObjectState(ctx, "a/deep.zip"); err != nil || !s2.RestoreExpiry.After(s.RestoreExpiry) {
		t.Fatalf("a second restore did not move the expiry: %v -> %+v, %v", s.RestoreExpiry, s2, err)
	}

	want := []s3stub.RestoreRequest{
		{Bucket: st.Bucket(), Key: "p/a/deep.zip", Days: 3, Tier: types.TierStandard, Status: http.StatusAccepted},
		{Bucket: st.Bucket(), Key: "p/a/deep.zip", Days: 3, Tier: types.TierStandard, Status: http.StatusConflict},
		{Bucket: st.Bucket(), Key: "p/a/deep.zip", Days: 10, Tier: types.TierBulk, Status: http.StatusOK},
	}
	if got := stub.Restores(); !slices.Equal(got, want) {
		t.Fatalf("restore requests %+v, want %+v", got, want)
	}
}

// restoreSum is the SHA-256 of s: a bucket with Object Lock wants a
// checksum on every PUT.
func restoreSum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// TestObjectStateRetention reads Object Lock retention and legal hold
// from a real MinIO bucket created with Object Lock.
func TestObjectStateRetention(t *testing.T) {
	srv := testserver.MinIO(t)
	client := srv.Client()
	bucket := "locked"
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	st, err := s3store.New(t.Context(), s3store.Config{Bucket: bucket, AWS: srv.AWSConfig(), ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kept", "held", "free"} {
		if _, err := st.Put(t.Context(), k, strings.NewReader(k), int64(len(k)), archive.PutOptions{SHA256: restoreSum(k)}); err != nil {
			t.Fatal(err)
		}
	}
	until := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	if _, err := client.PutObjectRetention(t.Context(), &s3.PutObjectRetentionInput{Bucket: &bucket, Key: aws.String("kept"),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: &until}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObjectLegalHold(t.Context(), &s3.PutObjectLegalHoldInput{Bucket: &bucket, Key: aws.String("held"),
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}}); err != nil {
		t.Fatal(err)
	}
	kept, err := st.ObjectState(t.Context(), "kept")
	if err != nil || kept.Retention != types.ObjectLockModeGovernance || !kept.RetainUntil.Equal(until) || kept.LegalHold {
		t.Fatalf("kept: %+v, %v; want GOVERNANCE until %v", kept, err, until)
	}
	held, err := st.ObjectState(t.Context(), "held")
	if err != nil || held.Retention != "" || !held.RetainUntil.IsZero() || !held.LegalHold {
		t.Fatalf("held: %+v, %v; want a legal hold only", held, err)
	}
	free, err := st.ObjectState(t.Context(), "free")
	if err != nil || free.Retention != "" || !free.RetainUntil.IsZero() || free.LegalHold || free.Archived {
		t.Fatalf("free: %+v, %v; want nothing", free, err)
	}
}
