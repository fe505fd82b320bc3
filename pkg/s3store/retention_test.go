package s3store_test

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/storetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// writeKinds writes one object of each kind, the artifacts both as a
// single PUT and as a multipart upload, and returns their keys by kind.
func writeKinds(t *testing.T, st *s3store.Store) map[string]archive.ObjectKind {
	t.Helper()
	ctx := t.Context()
	keys := map[string]archive.ObjectKind{
		"runs/1/manifest.json": archive.KindRecord,
		"runs/1/a/a.zip":       archive.KindArtifact,
		"runs/1/b/b.zip":       archive.KindArtifact,
		"_leases/1":            archive.KindTransient,
	}
	for key, kind := range keys {
		if key == "runs/1/b/b.zip" {
			data := storetest.PatternBytes(2, storetest.PartSize+MiB)
			sum := sha256.Sum256(data)
			up, err := st.CreateUpload(ctx, key, archive.PutOptions{Kind: kind, SHA256: sum[:]})
			if err != nil {
				t.Fatal(err)
			}
			defer up.Abort(ctx)
			for n, part := range [][]byte{data[:storetest.PartSize], data[storetest.PartSize:]} {
				if err := up.WritePart(ctx, n+1, bytes.NewReader(part), int64(len(part))); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := up.Complete(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data := storetest.PatternBytes(1, 1000)
		if _, err := st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), archive.PutOptions{Kind: kind}); err != nil {
			t.Fatalf("Put(%s): %v", key, err)
		}
	}
	return keys
}

func headObject(t *testing.T, st *s3store.Store, key string) *s3.HeadObjectOutput {
	t.Helper()
	out, err := st.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(st.Bucket()), Key: aws.String(st.ObjectKey(key))})
	if err != nil {
		t.Fatalf("HeadObject(%s): %v", key, err)
	}
	return out
}

// TestObjectLockPerObject: with ObjectLockMode, records and artifacts are
// written under retention (and legal hold) and transient objects are not;
// the conformance suite passes on such a store.
func TestObjectLockPerObject(t *testing.T) {
	srv := testserver.MinIO(t)
	locked := s3store.Config{ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockDays: 1, ObjectLockLegalHold: true}
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) archive.Store {
			return newConfiguredStore(t, &srv.S3Access, locked, testserver.WithObjectLock())
		})
	})

	st := newConfiguredStore(t, &srv.S3Access, locked, testserver.WithObjectLock())
	before := time.Now()
	keys := writeKinds(t, st)
	after := time.Now()
	for key, kind := range keys {
		out := headObject(t, st, key)
		ret, rerr := st.Client().GetObjectRetention(t.Context(), &s3.GetObjectRetentionInput{Bucket: aws.String(st.Bucket()), Key: aws.String(st.ObjectKey(key))})
		if kind == archive.KindTransient {
			if out.ObjectLockMode != "" || out.ObjectLockRetainUntilDate != nil || out.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn {
				t.Errorf("%s (%s): lock %q until %v, legal hold %q; want none", key, kind, out.ObjectLockMode, out.ObjectLockRetainUntilDate, out.ObjectLockLegalHoldStatus)
			}
			if rerr == nil && ret.Retention != nil && ret.Retention.Mode != "" {
				t.Errorf("%s (%s): GetObjectRetention = %+v, want none", key, kind, ret.Retention)
			}
			continue
		}
		until := aws.ToTime(out.ObjectLockRetainUntilDate)
		if out.ObjectLockMode != types.ObjectLockModeGovernance || until.Before(before.Add(24*time.Hour-time.Second)) || until.After(after.Add(24*time.Hour+time.Second)) {
			t.Errorf("%s (%s): lock %q until %v; want GOVERNANCE for a day from %v", key, kind, out.ObjectLockMode, until, before)
		}
		if out.ObjectLockLegalHoldStatus != types.ObjectLockLegalHoldStatusOn {
			t.Errorf("%s (%s): legal hold %q, want ON", key, kind, out.ObjectLockLegalHoldStatus)
		}
		if rerr != nil || ret.Retention == nil || ret.Retention.Mode != types.ObjectLockRetentionModeGovernance {
			t.Errorf("%s (%s): GetObjectRetention = %+v, %v; want GOVERNANCE", key, kind, ret, rerr)
		}
	}
}

// TestObjectLockBlocksDelete: an archived object's version cannot be
// deleted while under retention or legal hold, and can once those are
// bypassed (governance) or lifted: the test fails for the right reason.
func TestObjectLockBlocksDelete(t *testing.T) {
	srv := testserver.MinIO(t)
	st := newConfiguredStore(t, &srv.S3Access, s3store.Config{ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockDays: 1, ObjectLockLegalHold: true}, testserver.WithObjectLock())
	ctx := t.Context()
	keys := writeKinds(t, st)
	del := func(key, version string, bypass bool) error {
		in := &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket()), Key: aws.String(st.ObjectKey(key)), VersionId: aws.String(version)}
		if bypass {
			in.BypassGovernanceRetention = aws.Bool(true)
		}
		_, err := st.Client().DeleteObject(ctx, in)
		return err
	}
	for key, kind := range keys {
		version := aws.ToString(headObject(t, st, key).VersionId)
		if version == "" {
			t.Fatalf("%s: no version id (is the bucket versioned?)", key)
		}
		if kind == archive.KindTransient {
			if err := del(key, version, false); err != nil {
				t.Errorf("delete the version of transient %s: %v, want it allowed", key, err)
			}
			continue
		}
		if err := del(key, version, false); err == nil {
			t.Errorf("deleted the version of %s (%s) under retention and legal hold", key, kind)
			continue
		}
		if err := del(key, version, true); err == nil {
			t.Errorf("deleted the version of %s (%s) under legal hold, bypassing governance", key, kind)
			continue
		}
		if _, err := st.Client().PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{
			Bucket: aws.String(st.Bucket()), Key: aws.String(st.ObjectKey(key)), VersionId: aws.String(version),
			LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOff},
		}); err != nil {
			t.Fatalf("lift the legal hold of %s: %v", key, err)
		}
		if err := del(key, version, false); err == nil {
			t.Errorf("deleted the version of %s (%s) under GOVERNANCE retention without bypass", key, kind)
			continue
		}
		if err := del(key, version, true); err != nil {
			t.Errorf("delete the version of %s (%s) bypassing GOVERNANCE: %v, want it allowed", key, kind, err)
		}
	}
}

// TestObjectLockBucketDefault: a bucket whose default retention locks
// every write (and so wants a checksum header on every one) passes the
// conformance suite with a plain store.
func TestObjectLockBucketDefault(t *testing.T) {
	srv := testserver.MinIO(t)
	storetest.Run(t, func(t *testing.T) archive.Store {
		return newConfiguredStore(t, &srv.S3Access, s3store.Config{}, testserver.WithDefaultRetention(types.ObjectLockRetentionModeGovernance, 1))
	})
	st := newConfiguredStore(t, &srv.S3Access, s3store.Config{}, testserver.WithDefaultRetention(types.ObjectLockRetentionModeGovernance, 1))
	for key := range writeKinds(t, st) {
		if mode := headObject(t, st, key).ObjectLockMode; mode != types.ObjectLockModeGovernance {
			t.Errorf("%s: lock mode %q, want the bucket default GOVERNANCE", key, mode)
		}
	}
}

// TestStorageClassPerKind: artifacts go to ArtifactStorageClass, records
// and transient objects to StorageClass (here the default).
func TestStorageClassPerKind(t *testing.T) {
	srv := testserver.MinIO(t)
	st := newConfiguredStore(t, &srv.S3Access, s3store.Config{ArtifactStorageClass: types.StorageClassReducedRedundancy})
	for key, kind := range writeKinds(t, st) {
		class := headObject(t, st, key).StorageClass
		want := types.StorageClass("")
		if kind == archive.KindArtifact {
			want = types.StorageClassReducedRedundancy
		}
		if class != want && !(want == "" && class == types.StorageClassStandard) {
			t.Errorf("%s (%s): storage class %q, want %q", key, kind, class, want)
		}
	}
	// StorageClass applies to everything when ArtifactStorageClass is unset.
	st = newConfiguredStore(t, &srv.S3Access, s3store.Config{StorageClass: types.StorageClassReducedRedundancy})
	for key, kind := range writeKinds(t, st) {
		if class := headObject(t, st, key).StorageClass; class != types.StorageClassReducedRedundancy {
			t.Errorf("%s (%s): storage class %q, want REDUCED_REDUNDANCY", key, kind, class)
		}
	}
}

// TestServerSideEncryption: with SSE AES256 and aws:kms (MinIO's built-in
// KMS key), the conformance suite passes and the server reports the
// requested encryption on single PUTs and multipart objects.
func TestServerSideEncryption(t *testing.T) {
	const keyName = "archiver-test-key"
	srv := testserver.MinIO(t, testserver.WithKMSKey(keyName))
	for _, cfg := range []s3store.Config{
		{SSE: types.ServerSideEncryptionAes256},
		{SSE: types.ServerSideEncryptionAwsKms, SSEKMSKeyID: keyName},
	} {
		t.Run(string(cfg.SSE), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) archive.Store { return newConfiguredStore(t, &srv.S3Access, cfg) })
			st := newConfiguredStore(t, &srv.S3Access, cfg)
			for key := range writeKinds(t, st) {
				out := headObject(t, st, key)
				if out.ServerSideEncryption != cfg.SSE {
					t.Errorf("%s: encryption %q, want %q", key, out.ServerSideEncryption, cfg.SSE)
				}
				if kms := aws.ToString(out.SSEKMSKeyId); cfg.SSEKMSKeyID != "" && !strings.HasSuffix(kms, cfg.SSEKMSKeyID) {
					t.Errorf("%s: KMS key %q, want %q", key, kms, cfg.SSEKMSKeyID)
				}
			}
		})
	}
}
