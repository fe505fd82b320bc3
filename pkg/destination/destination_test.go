package destination_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/destination"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

func parseWrites(env map[string]string) (destination.S3Writes, error) {
	var w destination.S3Writes
	var e service.Env
	destination.S3WritesEnv(&e, &w)
	if err := e.Parse(func(k string) string { return env[k] }); err != nil {
		return w, err
	}
	return w, w.Validate()
}

func TestS3WritesEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want destination.S3Writes
		ok   bool
	}{
		{"defaults", nil, destination.S3Writes{}, true},
		{"everything", map[string]string{
			"ARCHIVER_S3_STORAGE_CLASS":          "STANDARD_IA",
			"ARCHIVER_S3_ARTIFACT_STORAGE_CLASS": "DEEP_ARCHIVE",
			"ARCHIVER_S3_SSE":                    "aws:kms",
			"ARCHIVER_S3_SSE_KMS_KEY_ID":         "alias/archive",
			"ARCHIVER_OBJECT_LOCK_MODE":          "COMPLIANCE",
			"ARCHIVER_OBJECT_LOCK_DAYS":          "2555",
			"ARCHIVER_OBJECT_LOCK_LEGAL_HOLD":    "true",
		}, destination.S3Writes{
			StorageClass: "STANDARD_IA", ArtifactStorageClass: "DEEP_ARCHIVE", SSE: "aws:kms", SSEKMSKeyID: "alias/archive",
			ObjectLockMode: "compliance", ObjectLockDays: 2555, ObjectLockLegalHold: true,
		}, true},
		{"sse-s3", map[string]string{"ARCHIVER_S3_SSE": "AES256"}, destination.S3Writes{SSE: "aes256"}, true},
		{"mode without days", map[string]string{"ARCHIVER_OBJECT_LOCK_MODE": "governance"}, destination.S3Writes{ObjectLockMode: "governance"}, false},
		{"days without mode", map[string]string{"ARCHIVER_OBJECT_LOCK_DAYS": "7"}, destination.S3Writes{ObjectLockDays: 7}, false},
		{"unknown mode", map[string]string{"ARCHIVER_OBJECT_LOCK_MODE": "forever", "ARCHIVER_OBJECT_LOCK_DAYS": "7"}, destination.S3Writes{ObjectLockDays: 7}, false},
		{"bad days", map[string]string{"ARCHIVER_OBJECT_LOCK_MODE": "governance", "ARCHIVER_OBJECT_LOCK_DAYS": "a week"}, destination.S3Writes{ObjectLockMode: "governance"}, false},
		{"unknown sse", map[string]string{"ARCHIVER_S3_SSE": "rot13"}, destination.S3Writes{}, false},
		{"kms key without kms", map[string]string{"ARCHIVER_S3_SSE_KMS_KEY_ID": "k"}, destination.S3Writes{SSEKMSKeyID: "k"}, false},
		{"records in glacier", map[string]string{"ARCHIVER_S3_STORAGE_CLASS": "GLACIER"}, destination.S3Writes{StorageClass: "GLACIER"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrites(tc.env)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestFileDestinationRefusesS3Writes(t *testing.T) {
	dest := "file://" + t.TempDir()
	if _, err := destination.Open(t.Context(), dest, destination.Options{}); err != nil {
		t.Fatalf("Open(%s): %v", dest, err)
	}
	_, err := destination.Open(t.Context(), dest, destination.Options{S3: destination.S3Writes{ObjectLockMode: "governance", ObjectLockDays: 1}})
	if err == nil || !strings.Contains(err.Error(), "s3://") {
		t.Fatalf("Open(%s) with Object Lock settings: %v, want a refusal", dest, err)
	}
}

// TestOpenAppliesS3Writes: the settings reach the objects Open's store
// writes.
func TestOpenAppliesS3Writes(t *testing.T) {
	srv := testserver.MinIO(t)
	bucket := srv.NewBucket(t, "", testserver.WithObjectLock())
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	st, err := destination.Open(t.Context(), "s3://"+bucket+"/github", destination.Options{
		ForcePathStyle: true,
		S3: destination.S3Writes{
			ArtifactStorageClass: "REDUCED_REDUNDANCY",
			ObjectLockMode:       "governance",
			ObjectLockDays:       1,
			ObjectLockLegalHold:  true,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(t.Context(), "runs/1/a/a.zip", bytes.NewReader([]byte("zip")), 3, archive.PutOptions{Kind: archive.KindArtifact}); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("github/runs/1/a/a.zip")})
	if err != nil {
		t.Fatal(err)
	}
	if out.StorageClass != types.StorageClassReducedRedundancy || out.ObjectLockMode != types.ObjectLockModeGovernance ||
		out.ObjectLockLegalHoldStatus != types.ObjectLockLegalHoldStatusOn {
		t.Errorf("artifact: class %q, lock %q, legal hold %q; want REDUCED_REDUNDANCY, GOVERNANCE, ON",
			out.StorageClass, out.ObjectLockMode, out.ObjectLockLegalHoldStatus)
	}
}
