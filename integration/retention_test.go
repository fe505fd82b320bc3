//go:build integration

package integration

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// TestRetentionGradeStorage archives runs end to end into MinIO with its
// built-in KMS and a bucket created with Object Lock, with the workers set
// to lock what they archive (ARCHIVER_OBJECT_LOCK_MODE=GOVERNANCE for a
// day) and to encrypt with SSE-KMS: a multipart artifact, single PUTs with
// and without a GitHub digest. Every artifact, manifest and SHA256SUMS is
// then under GOVERNANCE retention, encrypted with the key asked for and
// stored with a checksum; the transfer leases are not locked; deleting an
// archived version without the governance bypass fails. Process mode only
// (see eachMode).
func TestRetentionGradeStorage(t *testing.T) {
	const partSize = 5 * MiB
	legacy := artifact("legacy", 200*KiB)
	legacy.NoDigest = true
	cfg := StackConfig{
		Scenario:  scenario(runSpec(firstRunID, artifact("dist", 12*MiB), artifact("logs", 64*KiB), legacy)),
		S3Backend: S3MinIORetention,
		WorkerEnv: map[string]string{
			"ARCHIVER_PART_SIZE":         strconv.Itoa(partSize),
			"ARCHIVER_OBJECT_LOCK_MODE":  "GOVERNANCE",
			"ARCHIVER_OBJECT_LOCK_DAYS":  "1",
			"ARCHIVER_S3_SSE":            "aws:kms",
			"ARCHIVER_S3_SSE_KMS_KEY_ID": retentionKMSKey,
			"ARCHIVER_S3_STORAGE_CLASS":  "STANDARD",
		},
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		runs := h.runs()
		h.preparePayloads(runs)
		if err := h.deliverAll(runs, 2, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		h.waitManifests(runs, time.Minute)
		h.waitIdle(time.Minute)
		h.checkInvariants(expectation{Runs: runs})

		c, ctx := h.s.S3(), t.Context()
		start := time.Now()
		var locked []string
		for _, a := range h.artifacts(h.state, runs[0].ID) {
			locked = append(locked, objectKey(a))
		}
		l := archive.Layout{Owner: owner, Repo: repoName, RunID: runs[0].ID}
		locked = append(locked, prefix+"/"+l.ManifestKey(1), prefix+"/"+l.SumsKey(1))
		for _, key := range locked {
			out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatalf("head %s: %v", key, err)
			}
			if out.ObjectLockMode != types.ObjectLockModeGovernance || out.ObjectLockRetainUntilDate == nil ||
				!out.ObjectLockRetainUntilDate.After(start.Add(23*time.Hour)) {
				t.Errorf("%s: retention %q until %v; want GOVERNANCE for about a day", key, out.ObjectLockMode, out.ObjectLockRetainUntilDate)
			}
			if out.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !strings.Contains(aws.ToString(out.SSEKMSKeyId), retentionKMSKey) {
				t.Errorf("%s: encryption %q with key %q; want aws:kms with %s", key, out.ServerSideEncryption, aws.ToString(out.SSEKMSKeyId), retentionKMSKey)
			}
			if out.ChecksumCRC32C == nil && out.ChecksumSHA256 == nil {
				t.Errorf("%s: no stored checksum (CRC32C or SHA-256)", key)
			}
		}

		// Leases are rewritten every few seconds: never locked.
		leases, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(leasePrefix)})
		if err != nil {
			t.Fatal(err)
		}
		if len(leases.Contents) == 0 {
			t.Fatalf("no lease under %s: the transfers took none", leasePrefix)
		}
		for _, o := range leases.Contents {
			out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatalf("head %s: %v", aws.ToString(o.Key), err)
			}
			if out.ObjectLockMode != "" || out.ObjectLockRetainUntilDate != nil {
				t.Errorf("lease %s is locked (%q until %v)", aws.ToString(o.Key), out.ObjectLockMode, out.ObjectLockRetainUntilDate)
			}
		}

		// WORM: an archived version cannot be deleted without the bypass.
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(locked[0])})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(locked[0]), VersionId: head.VersionId}); err == nil {
			t.Fatalf("deleted locked version %s of %s without the governance bypass", aws.ToString(head.VersionId), locked[0])
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(locked[0]), VersionId: head.VersionId}); err != nil {
			t.Errorf("locked version after the refused delete: %v", err)
		}
	})
}
