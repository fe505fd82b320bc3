//go:build integration

package integration

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// TestVersityGW archives runs end to end with versitygw (posix backend)
// as the S3 server instead of MinIO, through the same worker code path:
// small artifacts (single PUTs), a 12 MiB one in 5 MiB parts (multipart),
// then a re-run attempt whose artifacts are archived already (found, not
// copied again). Process mode only (see eachMode).
func TestVersityGW(t *testing.T) {
	const partSize = 5 * MiB
	rerun := runSpec(firstRunID+1, artifact("big", 12*MiB), artifact("small", 300*KiB))
	rerun.Attempt = 2
	cfg := StackConfig{
		Scenario:  scenario(runSpec(firstRunID, artifact("dist", 2*MiB), artifact("logs", 64*KiB)), rerun),
		S3Backend: S3VersityGW,
		WorkerEnv: map[string]string{"ARCHIVER_PART_SIZE": strconv.Itoa(partSize)},
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		runs := h.runs()
		first := []ghsim.Run{runs[0], attemptOf(runs[1], 1)}
		h.preparePayloads(first)
		if err := h.deliverAll(first, 2, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		h.waitManifests(first, time.Minute)
		h.waitIdle(time.Minute)

		// The big artifact went in parts, the others in one PUT: the ETag
		// of a multipart object ends in -<parts>.
		c := h.s.S3()
		for _, a := range append(h.artifacts(h.state, runs[0].ID), h.artifacts(h.state, runs[1].ID)...) {
			out, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(objectKey(a))})
			if err != nil {
				t.Fatalf("head %s: %v", objectKey(a), err)
			}
			etag := strings.Trim(aws.ToString(out.ETag), `"`)
			multipart := a.Size > partSize
			parts := (a.Size + archive.PartSize(a.Size, partSize) - 1) / archive.PartSize(a.Size, partSize)
			if multipart != strings.HasSuffix(etag, "-"+strconv.FormatInt(parts, 10)) || !multipart && strings.Contains(etag, "-") {
				t.Errorf("%s (%d bytes): ETag %s; want a multipart ETag (-%d) exactly when it is bigger than a part", a.Name, a.Size, etag, parts)
			}
		}

		// Attempt 2 of the second run lists the same artifacts: they are
		// found archived, not copied again.
		before := h.sim.Stats().BlobBytesByArtifact
		h.deliverUntilAccepted(runs[1], "", 30*time.Second)
		h.waitManifests([]ghsim.Run{runs[1]}, time.Minute)
		h.waitIdle(time.Minute)
		for _, a := range h.artifacts(h.state, runs[1].ID) {
			if got := h.sim.Stats().BlobBytesByArtifact[a.ID]; got != before[a.ID] {
				t.Errorf("%s: downloaded again by attempt 2 (%d bytes, %d before)", a.Name, got, before[a.ID])
			}
		}
		if n := sumMetric(h.workerMetrics(), "archiver_artifacts_total", "outcome", "skipped"); n < 2 {
			t.Errorf("workers count %v skipped artifacts, want the 2 of attempt 2", n)
		}
		h.checkInvariants(expectation{Runs: append(first, runs[1])})
	})
}
