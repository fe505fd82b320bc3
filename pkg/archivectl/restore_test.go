package archivectl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/s3stub"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// coldReport mirrors the storage fields of verify --json.
type coldReport struct {
	OK          bool `json:"ok"`
	Objects     int  `json:"objects"`
	Archived    int  `json:"archived_objects"`
	NeedRestore int  `json:"objects_needing_restore"`
	Problems    []struct {
		ArtifactID int64  `json:"artifact_id"`
		Key        string `json:"key"`
		Problem    string `json:"problem"`
	} `json:"problems"`
	Retention []struct {
		ArtifactID  int64      `json:"artifact_id"`
		Key         string     `json:"key"`
		Mode        string     `json:"mode"`
		RetainUntil *time.Time `json:"retain_until"`
		LegalHold   bool       `json:"legal_hold"`
	} `json:"retention"`
}

// TestRestoreColdArtifacts archives a run into MinIO, then makes two of
// its artifacts Deep Archive / Glacier objects through the stub (which
// archivectl reaches as its S3 endpoint): get and verify --deep name the
// restore command, verify still passes, restore --wait asks for the
// restores and returns once the test completes them, and get then reads
// the bytes.
func TestRestoreColdArtifacts(t *testing.T) {
	e := newS3Env(t)
	stub := s3stub.New(t, e.MinIO.Endpoint, e.MinIO.HTTPClient().Transport)
	t.Setenv("AWS_ENDPOINT_URL_S3", stub.URL)
	ev := e.env

	app := e.Sim.AddRepo(77, "octo-org", "app")
	ci := e.Sim.AddRun("octo-org", "app", ghsim.RunSpec{Name: "CI"})
	dist := e.Sim.AddArtifact("octo-org", "app", ci.ID, ghsim.ArtifactSpec{Name: "dist", Size: 200 << 10})
	logs := e.Sim.AddArtifact("octo-org", "app", ci.ID, ghsim.ArtifactSpec{Name: "logs", Size: 3000})
	notes := e.Sim.AddArtifact("octo-org", "app", ci.ID, ghsim.ArtifactSpec{Name: "notes", Size: 100})
	m := archiveRun(t, e.Env, app, ci)
	distKey, logsKey, notesKey := key(t, m, dist.ID), key(t, m, logs.ID), key(t, m, notes.ID)
	stub.Archive(e.Bucket, e.Store.ObjectKey(distKey), types.StorageClassDeepArchive)
	stub.Archive(e.Bucket, e.Store.ObjectKey(logsKey), types.StorageClassGlacier)
	runID := strconv.FormatInt(ci.ID, 10)
	distCmd := "archivectl restore octo-org/app " + runID + " " + strconv.FormatInt(dist.ID, 10)
	logsCmd := "archivectl restore octo-org/app " + runID + " " + strconv.FormatInt(logs.ID, 10)

	// get: a clear refusal naming the command, nothing written.
	dir := t.TempDir()
	out := filepath.Join(dir, "dist.zip")
	r := run(t, ev, "get", "octo-org/app", runID, "dist", "-o", out).want(t, archivectl.ExitFailure)
	mustContain(t, "get of a Deep Archive object", r.stderr, "DEEP_ARCHIVE", "needs a restore", distCmd)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a refused get left %v", left)
	}
	// An artifact that is not cold reads as before.
	run(t, ev, "get", "octo-org/app", runID, "notes", "-o", filepath.Join(dir, "notes")).want(t, 0)

	// verify: HeadObject works on archived objects.
	r = run(t, ev, "verify").want(t, 0)
	mustContain(t, "verify", r.stdout, "OK: 1 manifest, 3 objects", "2 in an archive storage class (2 to restore")
	rep := decode[coldReport](t, run(t, ev, "verify", "--json").want(t, 0).stdout)
	if !rep.OK || rep.Objects != 3 || rep.Archived != 2 || rep.NeedRestore != 2 || len(rep.Problems) != 0 || len(rep.Retention) != 0 {
		t.Fatalf("verify --json: %+v", rep)
	}
	// verify --deep: one problem per cold object, with its command.
	r = run(t, ev, "verify", "--deep").want(t, archivectl.ExitFailure)
	mustContain(t, "verify --deep", r.stdout, distKey, logsKey, "DEEP_ARCHIVE", "GLACIER", distCmd, logsCmd, "FAILED: 2 problems")
	mustNotContain(t, "verify --deep", r.stdout, notesKey)

	// restore --wait: requests both, waits while they run.
	done := make(chan result, 1)
	go func() {
		done <- run(t, ev, "restore", "octo-org/app", runID, "--days", "3", "--tier", "bulk", "--wait", "--interval", "20ms")
	}()
	testserver.Eventually(t, time.Minute, "both restores requested", func() bool { return len(stub.Restoring()) == 2 })
	select {
	case r := <-done:
		t.Fatalf("restore --wait returned before the restores completed:\n%s", r)
	default:
	}
	// Still unreadable while in progress: get says to wait.
	r = run(t, ev, "get", "octo-org/app", runID, "dist", "-o", out).want(t, archivectl.ExitFailure)
	mustContain(t, "get during the restore", r.stderr, "restore in progress", distCmd+" --wait")
	for _, k := range []string{distKey, logsKey} {
		if err := stub.CompleteRestore(e.Bucket, e.Store.ObjectKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("restore --wait did not return within a minute of the restores completing")
	}
	r.want(t, 0)
	mustContain(t, "restore --wait", r.stdout, "restore requested (3 days, Bulk)", "not cold (nothing to do)", distKey, logsKey, notesKey)
	mustContain(t, "restore --wait", r.stderr, "3 objects: 2 restore requested", "all 3 objects can be read")
	got := stub.Restores()
	slices.SortFunc(got, func(a, b s3stub.RestoreRequest) int { return strings.Compare(a.Key, b.Key) })
	want := []s3stub.RestoreRequest{
		{Bucket: e.Bucket, Key: e.Store.ObjectKey(distKey), Days: 3, Tier: types.TierBulk, Status: 202},
		{Bucket: e.Bucket, Key: e.Store.ObjectKey(logsKey), Days: 3, Tier: types.TierBulk, Status: 202},
	}
	slices.SortFunc(want, func(a, b s3stub.RestoreRequest) int { return strings.Compare(a.Key, b.Key) })
	if !slices.Equal(got, want) {
		t.Fatalf("the stub received %+v, want %+v", got, want)
	}

	// Restored: get reads the bytes, verify --deep re-hashes them.
	r = run(t, ev, "get", "octo-org/app", runID, "dist", "-o", out).want(t, 0)
	b, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(b, content(t, e.Sim, dist.ID)) {
		t.Fatalf("get after the restore wrote %d bytes (%v), want the artifact's %d", len(b), err, dist.Size)
	}
	mustContain(t, "get after the restore", r.stderr, "verified", sha(b))
	run(t, ev, "verify", "--deep").want(t, 0)

	// Asking again reports the copy's expiry (and renews it, as S3 does).
	r = run(t, ev, "restore", "octo-org/app", runID, "dist").want(t, 0)
	mustContain(t, "restore of a restored object", r.stdout, "already restored until", distKey)
	mustNotContain(t, "restore of one artifact", r.stdout, logsKey, notesKey)

	// Selection and usage errors.
	run(t, ev, "restore", "octo-org/app", runID, "nope").want(t, archivectl.ExitFailure)
	run(t, ev, "restore", "octo-org/app", runID, "--attempt", "2").want(t, archivectl.ExitFailure)
	run(t, ev, "restore", "octo-org/app", "--tier", "Fast").want(t, archivectl.ExitUsage)
	run(t, ev, "restore", "octo-org/app", "--days", "0").want(t, archivectl.ExitUsage)
	run(t, ev, "restore").want(t, archivectl.ExitUsage)
}

// TestRestoreWaitTimeout: --timeout ends a wait for a restore that does
// not finish, with exit code 1 naming the object.
func TestRestoreWaitTimeout(t *testing.T) {
	e := newS3Env(t)
	stub := s3stub.New(t, e.MinIO.Endpoint, e.MinIO.HTTPClient().Transport)
	t.Setenv("AWS_ENDPOINT_URL_S3", stub.URL)
	app := e.Sim.AddRepo(77, "octo-org", "app")
	ci := e.Sim.AddRun("octo-org", "app", ghsim.RunSpec{})
	a := e.Sim.AddArtifact("octo-org", "app", ci.ID, ghsim.ArtifactSpec{Name: "dist", Size: 1000})
	k := key(t, archiveRun(t, e.Env, app, ci), a.ID)
	stub.Archive(e.Bucket, e.Store.ObjectKey(k), types.StorageClassDeepArchive)

	r := run(t, e.env, "restore", "octo-org/app", "--wait", "--interval", "10ms", "--timeout", "200ms", "--json").want(t, archivectl.ExitFailure)
	mustContain(t, "restore --timeout", r.stderr, "stopped waiting", "1 object of 1 still being restored", k)
	mustContain(t, "restore --json", r.stdout, `"outcome": "requested"`, `"readable": false`)
}

// TestVerifyRetention archives into a MinIO bucket with Object Lock, puts
// GOVERNANCE retention on one artifact and a legal hold on another, and
// checks that verify lists exactly those, in text and JSON.
func TestVerifyRetention(t *testing.T) {
	e := newS3Env(t)
	client := e.MinIO.Client()
	bucket := "locked-archive"
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	st, err := s3store.New(t.Context(), s3store.Config{Bucket: bucket, Prefix: "gha", AWS: e.MinIO.AWSConfig(), ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.Config
	cfg.Store = st
	arch, err := archive.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := e.Sim.AddRepo(77, "octo-org", "app")
	ci := e.Sim.AddRun("octo-org", "app", ghsim.RunSpec{})
	kept := e.Sim.AddArtifact("octo-org", "app", ci.ID, ghsim.ArtifactSpec{Name: "kept", Size: 2000})
	held := e.Sim.AddArtifact("octo-org", "app", ci.ID, ghsim.ArtifactSpec{Name: "held", Size: 2000})
	free := e.Sim.AddArtifact("octo-org", "app", ci.ID, ghsim.ArtifactSpec{Name: "free", Size: 2000})
	res, err := arch.ArchiveRun(t.Context(), archivetest.Event(app, ci), true)
	if err != nil {
		t.Fatalf("archive into the Object Lock bucket: %v", err)
	}
	keptKey, heldKey, freeKey := key(t, res.Manifest, kept.ID), key(t, res.Manifest, held.ID), key(t, res.Manifest, free.ID)
	until := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	if _, err := client.PutObjectRetention(t.Context(), &s3.PutObjectRetentionInput{Bucket: &bucket, Key: aws.String(st.ObjectKey(keptKey)),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: &until}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObjectLegalHold(t.Context(), &s3.PutObjectLegalHoldInput{Bucket: &bucket, Key: aws.String(st.ObjectKey(heldKey)),
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}}); err != nil {
		t.Fatal(err)
	}
	ev := e.env.with("ARCHIVER_DESTINATION", "s3://"+bucket+"/gha")

	r := run(t, ev, "verify").want(t, 0)
	mustContain(t, "verify", r.stdout, "Object Lock (2 objects)", "RETENTION", "RETAIN_UNTIL", "LEGAL_HOLD",
		keptKey, "GOVERNANCE", until.Format(time.RFC3339), heldKey, "OK: 1 manifest, 3 objects")
	mustNotContain(t, "verify", r.stdout, freeKey)
	for _, l := range strings.Split(r.stdout, "\n") {
		switch {
		case strings.Contains(l, keptKey) && (!strings.Contains(l, "GOVERNANCE") || !strings.HasSuffix(strings.Fields(l)[7], "off")):
			t.Errorf("retention row of %s: %q", keptKey, l)
		case strings.Contains(l, heldKey) && (strings.Contains(l, "GOVERNANCE") || strings.Fields(l)[7] != "on"):
			t.Errorf("legal hold row of %s: %q", heldKey, l)
		}
	}

	rep := decode[coldReport](t, run(t, ev, "verify", "--json").want(t, 0).stdout)
	if !rep.OK || len(rep.Retention) != 2 {
		t.Fatalf("verify --json: %+v, want 2 retention entries", rep)
	}
	for _, ret := range rep.Retention {
		switch ret.Key {
		case keptKey:
			if ret.Mode != "GOVERNANCE" || ret.RetainUntil == nil || !ret.RetainUntil.Equal(until) || ret.LegalHold || ret.ArtifactID != kept.ID {
				t.Errorf("retention of %s: %+v", keptKey, ret)
			}
		case heldKey:
			if ret.Mode != "" || ret.RetainUntil != nil || !ret.LegalHold || ret.ArtifactID != held.ID {
				t.Errorf("retention of %s: %+v", heldKey, ret)
			}
		default:
			t.Errorf("unexpected retention entry %+v", ret)
		}
	}
}
