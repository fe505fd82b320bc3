//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// expectation is what a test must end with.
type expectation struct {
	// Runs must be archived completely: a manifest listing exactly their
	// artifacts, each archived (or expired) and verified.
	Runs []ghsim.Run
	// DLQ is the number of dead-letter records the workers wrote, and
	// DLQAdvisories the MAX_DELIVERIES advisories captured with them.
	DLQ, DLQAdvisories int
	// DeleteFromGitHub: the workers delete verified artifacts at GitHub, so
	// every archived artifact must be deleted there (and only those).
	DeleteFromGitHub bool
	// S3Outage: S3 was unreachable for a while, so a worker may have
	// refused a delete it could not confirm (the safe outcome).
	S3Outage bool
}

// leasePrefix holds the workers' per-artifact leases: small objects that
// are no part of the archive, whatever is left of them.
const leasePrefix = prefix + "/_leases/"

// checkInvariants checks, once the queue and the workers are idle,
// everything that must hold after any test:
//
//   - every non-expired artifact of the runs is in S3 exactly once, its
//     bytes hashing to the simulator's sha256, marked verified;
//   - every manifest lists exactly the run's artifacts with the right
//     statuses, sizes and sha256, and SHA256SUMS agrees;
//   - every manifest's catalogue file holds exactly its rows;
//   - an artifact's attestations JSONL, when the manifest records one, is
//     where the manifest says;
//   - nothing else is in the bucket (but leases, and trusted root
//     snapshots when attestations were looked up);
//   - no GitHub artifact was deleted unless its verified copy and manifest
//     exist (and, with deletion on, every archived one was deleted);
//   - no multipart upload is left incomplete;
//   - the run stream is empty and the dead-letter stream holds exactly
//     what the test expected;
//   - the webhook's and the workers' metrics agree with what happened.
func (h *harness) checkInvariants(exp expectation) {
	h.t.Helper()
	start := time.Now()
	q := h.waitIdle(3 * time.Minute)
	h.waitWorkersIdle(time.Minute)
	st := h.sim.State()
	stats := h.sim.Stats()
	ctx := h.t.Context()
	c := h.s.S3()
	keys, err := listKeys(ctx, c)
	if err != nil {
		h.t.Fatalf("list archive: %v", err)
	}
	t := h.t

	// Manifests and objects.
	allowed := map[string]bool{}       // every key that may be in the bucket
	archivedKeys := map[int64]string{} // artifact id → full key of its verified copy
	nonExpired, nonExpiredBytes := 0, int64(0)
	counted := map[int64]bool{} // attempts of one run list the same artifacts
	var manifests []*archive.Manifest
	looked := false // some artifact's attestations were looked up
	now := time.Now()
	for _, run := range exp.Runs {
		l := archive.Layout{Owner: run.Owner, Repo: run.Repo, RunID: run.ID}
		mk, sk := prefix+"/"+l.ManifestKey(run.Attempt), prefix+"/"+l.SumsKey(run.Attempt)
		allowed[mk], allowed[sk] = true, true
		m, err := archive.DecodeManifest(h.readObject(c, mk))
		if err != nil {
			t.Errorf("run %d: %v", run.ID, err)
			continue
		}
		manifests = append(manifests, m)
		allowed[catalogKey(m)] = true
		sums := string(h.readObject(c, sk))
		arts := h.artifacts(st, run.ID)
		if len(m.Artifacts) != len(arts) {
			t.Errorf("run %d: manifest lists %d artifacts, the run has %d", run.ID, len(m.Artifacts), len(arts))
		}
		if m.WorkflowRun.ID != run.ID || m.WorkflowRun.RunAttempt != run.Attempt {
			t.Errorf("run %d: manifest is of run %d attempt %d", run.ID, m.WorkflowRun.ID, m.WorkflowRun.RunAttempt)
		}
		recs := map[int64]archive.ArtifactRecord{}
		for _, r := range m.Artifacts {
			if _, dup := recs[r.ID]; dup {
				t.Errorf("run %d: manifest lists artifact %d twice", run.ID, r.ID)
			}
			recs[r.ID] = r
		}
		for _, a := range arts {
			rec, ok := recs[a.ID]
			if !ok {
				t.Errorf("run %d: manifest lacks artifact %d (%s)", run.ID, a.ID, a.Name)
				continue
			}
			folder := prefix + "/" + l.ArtifactPrefix(a.ID)
			inFolder := keysWithPrefix(keys, folder)
			if a.Expired || !now.Before(a.ExpiresAt) {
				if rec.Status != archive.StatusExpired {
					t.Errorf("artifact %d: status %q, want expired", a.ID, rec.Status)
				}
				if len(inFolder) != 0 {
					t.Errorf("expired artifact %d has objects %v", a.ID, inFolder)
				}
				continue
			}
			if !counted[a.ID] {
				counted[a.ID] = true
				nonExpired++
				nonExpiredBytes += a.Size
			}
			want := h.sim.SHA256(a)
			if rec.Status != archive.StatusArchived {
				t.Errorf("artifact %d: status %q (%s), want archived", a.ID, rec.Status, rec.Error)
				continue
			}
			if rec.SHA256 != want || rec.Size != a.Size {
				t.Errorf("artifact %d: manifest sha256 %s size %d, simulator %s %d", a.ID, rec.SHA256, rec.Size, want, a.Size)
			}
			full := prefix + "/" + rec.Key
			if !strings.HasPrefix(full, folder) {
				t.Errorf("artifact %d: key %s is outside its folder %s", a.ID, rec.Key, folder)
			}
			h.checkAttestationsObject(rec, l, keys)
			looked = looked || rec.Attestations != nil
			if len(inFolder) != 1 || inFolder[0] != full {
				t.Errorf("artifact %d: objects %v under its folder, want exactly %s", a.ID, inFolder, full)
			}
			allowed[full] = true
			archivedKeys[a.ID] = full
			meta := want
			if a.NoDigest {
				meta = "" // no GitHub digest: no sha256 metadata (the manifest has the hash)
			}
			h.checkObject(c, full, a.Size, want, meta)
			if !strings.Contains(sums, want+"  ") {
				t.Errorf("run %d: SHA256SUMS lacks artifact %d (%s)", run.ID, a.ID, want)
			}
			switch {
			case exp.DeleteFromGitHub && (!a.Deleted || !rec.DeletedFromGitHub):
				t.Errorf("artifact %d: deleted at github %v, manifest deleted_from_github %v; want both", a.ID, a.Deleted, rec.DeletedFromGitHub)
			case !exp.DeleteFromGitHub && (a.Deleted || rec.DeletedFromGitHub):
				t.Errorf("artifact %d: deleted at github %v, manifest deleted_from_github %v; deletion is off", a.ID, a.Deleted, rec.DeletedFromGitHub)
			}
		}
	}
	for _, rec := range archivedAttestations(manifests) {
		allowed[prefix+"/"+rec.Key] = true
	}
	trustPrefix := prefix + "/" + archive.TrustedRootPrefix
	for k := range keys {
		if !allowed[k] && !strings.HasPrefix(k, leasePrefix) && !(looked && strings.HasPrefix(k, trustPrefix)) {
			t.Errorf("unexpected object in the archive: %s", k)
		}
	}

	// Deletions at GitHub: only of verified, manifested copies, after the
	// manifest.
	for _, a := range st.Artifacts {
		if a.Deleted && archivedKeys[a.ID] == "" {
			t.Errorf("artifact %d was deleted at github without a verified copy in a manifest", a.ID)
		}
	}
	for _, d := range stats.Deletes {
		if d.Status != http.StatusNoContent {
			continue
		}
		key := archivedKeys[d.ArtifactID]
		if key == "" {
			t.Errorf("DELETE of artifact %d answered 204, but it has no verified copy", d.ArtifactID)
			continue
		}
		// The copy existed before the delete (S3 times are whole seconds).
		if modified := keys[key].Modified; d.Wall.Before(modified) {
			t.Errorf("artifact %d deleted at github at %s, before its copy %s was written (%s)", d.ArtifactID, d.Wall.UTC().Format(time.RFC3339Nano), key, modified.UTC().Format(time.RFC3339))
		}
	}

	// Incomplete multipart uploads: bucket-wide, and per key (MinIO forgets
	// the bucket-wide listing on restart; the per-key one reads disk).
	up, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Errorf("list multipart uploads: %v", err)
	} else {
		for _, u := range up.Uploads {
			t.Errorf("incomplete multipart upload left: %s (%s)", aws.ToString(u.Key), aws.ToString(u.UploadId))
		}
	}
	for _, k := range archivedKeys {
		up, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(k)})
		if err != nil {
			t.Errorf("list multipart uploads of %s: %v", k, err)
			continue
		}
		for _, u := range up.Uploads {
			t.Errorf("incomplete multipart upload left at %s (%s)", aws.ToString(u.Key), aws.ToString(u.UploadId))
		}
	}

	if stats.AuthRejected != 0 {
		t.Errorf("the blob host refused %d requests that carried an Authorization header: a leaked token", stats.AuthRejected)
	}

	// The queue and the dead letters.
	if q.DLQRecords != exp.DLQ || q.DLQAdvisory != exp.DLQAdvisories {
		t.Errorf("dead-letter stream: %d records %v and %d advisories, want %d and %d", q.DLQRecords, q.DLQKinds, q.DLQAdvisory, exp.DLQ, exp.DLQAdvisories)
	}

	h.checkCatalog(c, manifests, exp)
	h.checkWebhookMetrics()
	h.checkWorkerMetrics(exp, nonExpired, nonExpiredBytes)
	t.Logf("invariants checked in %s: %d runs, %d archived artifacts (%d MiB), %d objects, queue %+v",
		time.Since(start).Round(time.Millisecond), len(exp.Runs), nonExpired, nonExpiredBytes>>20, len(keys), q)
}

// checkWebhookMetrics compares the webhook's delivery counters with the
// answers the harness received.
func (h *harness) checkWebhookMetrics() {
	h.t.Helper()
	m, err := scrape(h.s.WebhookMetricsURL())
	if err != nil {
		h.t.Errorf("webhook metrics: %v", err)
		return
	}
	var accepted, duplicate, unavailable, lost float64
	for _, d := range h.deliveries() {
		switch {
		case d.Status == http.StatusAccepted && d.Duplicate:
			duplicate++
		case d.Status == http.StatusAccepted:
			accepted++
		case d.Status == http.StatusServiceUnavailable:
			unavailable++
		case d.Status == 0:
			lost++ // no answer: the webhook may have counted it either way
		default:
			h.t.Errorf("delivery %s of run %d answered %d", d.DeliveryID, d.RunID, d.Status)
		}
	}
	got := func(outcome string) float64 {
		return m.Get("archiver_webhook_deliveries_total", "event", "workflow_run", "outcome", outcome)
	}
	ga, gd, gu := got("accepted"), got("duplicate"), got("unavailable")
	if lost == 0 && (ga != accepted || gd != duplicate || gu != unavailable) ||
		lost > 0 && (ga < accepted || gd < duplicate || gu < unavailable || ga+gd+gu > accepted+duplicate+unavailable+lost) {
		h.t.Errorf("webhook metrics accepted/duplicate/unavailable = %v/%v/%v; the harness saw %v/%v/%v (+%v unanswered)", ga, gd, gu, accepted, duplicate, unavailable, lost)
	}
	for _, outcome := range []string{"unauthorized", "bad_request", "too_large", "unsupported"} {
		if v := got(outcome); v != 0 {
			h.t.Errorf("webhook counted %v %s deliveries", v, outcome)
		}
	}
}

// checkWorkerMetrics compares the workers' counters with the archive.
// Killed workers count with their last scrape, so with a kill only the
// bounds that cannot be exceeded are checked.
func (h *harness) checkWorkerMetrics(exp expectation, nonExpired int, nonExpiredBytes int64) {
	h.t.Helper()
	all := h.workerMetrics()
	killed := false
	for _, w := range h.s.Workers() {
		killed = killed || !w.Alive()
	}
	t := h.t
	archived := sumMetric(all, "archiver_artifacts_total", "outcome", "archived")
	skipped := sumMetric(all, "archiver_artifacts_total", "outcome", "skipped")
	bytes := sumMetric(all, "archiver_archived_bytes_total")
	jobs := sumMetric(all, "archiver_jobs_total", "outcome", "archived")
	dead := sumMetric(all, "archiver_jobs_total", "outcome", "dead_lettered")
	refused := sumMetric(all, "archiver_github_deletes_total", "outcome", "refused")
	deleted := sumMetric(all, "archiver_github_deletes_total", "outcome", "deleted")
	// Each artifact is created once: "archived" counts creations, a later
	// look that finds it counts "skipped".
	if archived > float64(nonExpired) || bytes > float64(nonExpiredBytes) {
		t.Errorf("workers count %v artifacts (%v bytes) archived, but the manifests list only %d (%d bytes)", archived, bytes, nonExpired, nonExpiredBytes)
	}
	if refused != 0 && !exp.S3Outage {
		t.Errorf("workers refused %v deletes (a copy did not match its manifest)", refused)
	}
	if dead != float64(exp.DLQ) && !(killed && dead < float64(exp.DLQ)) {
		t.Errorf("workers dead-lettered %v runs, the dead-letter stream holds %d", dead, exp.DLQ)
	}
	if killed {
		return
	}
	if archived+skipped < float64(nonExpired) {
		t.Errorf("workers count %v archived + %v skipped artifacts, want at least %d", archived, skipped, nonExpired)
	}
	if jobs < float64(len(exp.Runs)) {
		t.Errorf("workers count %v archived runs, want at least %d", jobs, len(exp.Runs))
	}
	if exp.DeleteFromGitHub && deleted < float64(nonExpired) {
		t.Errorf("workers count %v deletes, want at least %d", deleted, nonExpired)
	}
	if !exp.DeleteFromGitHub && deleted != 0 {
		t.Errorf("workers count %v deletes with deletion off", deleted)
	}
}

// readObject returns a whole (small) object.
func (h *harness) readObject(c *s3.Client, key string) []byte {
	h.t.Helper()
	out, err := c.GetObject(h.t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		h.t.Errorf("get %s: %v", key, err)
		return nil
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		h.t.Errorf("read %s: %v", key, err)
	}
	return b
}

// checkObject checks an artifact object: its size, the sha256 metadata
// that marks a verified copy (meta; "" for an artifact GitHub gave no
// digest), and the SHA-256 of its bytes (sha).
func (h *harness) checkObject(c *s3.Client, key string, size int64, sha, meta string) {
	h.t.Helper()
	out, err := c.GetObject(h.t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		h.t.Errorf("get %s: %v", key, err)
		return
	}
	defer out.Body.Close()
	if got := out.Metadata[archive.MetaSHA256]; got != meta {
		h.t.Errorf("%s: sha256 metadata %q, want %q", key, got, meta)
	}
	hash := sha256.New()
	n, err := io.Copy(hash, out.Body)
	if err != nil {
		h.t.Errorf("read %s: %v", key, err)
		return
	}
	if got := hex.EncodeToString(hash.Sum(nil)); n != size || got != sha {
		h.t.Errorf("%s: %d bytes hashing to %s, want %d bytes %s", key, n, got, size, sha)
	}
}

// keysWithPrefix returns the keys that start with p.
func keysWithPrefix(keys map[string]object, p string) []string {
	var out []string
	for k := range keys {
		if strings.HasPrefix(k, p) {
			out = append(out, k)
		}
	}
	return out
}

// checkAttestationsObject checks the attestations object of an archived
// record, when the manifest records one: at Layout.AttestationsKey (beside
// the artifact's folder, not in it), with a count, and listed in keys.
func (h *harness) checkAttestationsObject(rec archive.ArtifactRecord, l archive.Layout, keys map[string]object) {
	h.t.Helper()
	att := rec.Attestations
	if att == nil || att.Key == "" {
		return
	}
	if want := l.AttestationsKey(rec.ID); att.Key != want || att.Count == 0 {
		h.t.Errorf("artifact %d: attestations %d at %s, want a count and key %s", rec.ID, att.Count, att.Key, want)
	}
	if _, ok := keys[prefix+"/"+att.Key]; !ok {
		h.t.Errorf("artifact %d: the manifest records %d attestations at %s, which is not there", rec.ID, att.Count, att.Key)
	}
}

// archivedAttestations returns the attestation records with a stored
// object of every manifest.
func archivedAttestations(manifests []*archive.Manifest) []*archive.AttestationRecord {
	var out []*archive.AttestationRecord
	for _, m := range manifests {
		for _, r := range m.Artifacts {
			if r.Attestations != nil && r.Attestations.Key != "" {
				out = append(out, r.Attestations)
			}
		}
	}
	return out
}
