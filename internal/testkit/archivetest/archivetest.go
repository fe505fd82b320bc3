// Package archivetest wires an archive.Archiver to a GitHub simulator (App
// authentication) and a real MinIO bucket for tests, and checks the
// archive's invariants afterwards.
package archivetest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// Test constants.
const (
	MiB          = 1 << 20
	PartSize     = 5 * MiB
	AppID        = 4242
	Installation = 77
)

// Env is one archiver wired to a GitHub simulator and a MinIO bucket.
type Env struct {
	Sim     *ghsim.Server
	MinIO   *testserver.MinIOServer
	Store   *s3store.Store
	Arch    *archive.Archiver
	Config  archive.Config
	AppKey  []byte // PEM
	Bucket  string
	Prefix  string
	Clients *ghclient.Clients
}

// New starts the simulator and MinIO and builds an archiver; mod may adjust
// the archiver's config before it is built.
func New(t *testing.T, mod func(*archive.Config)) *Env {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ghsim.New(ghsim.Options{AppID: AppID, AppPrivateKey: key, Logger: Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	minio := testserver.MinIO(t)
	e := &Env{Sim: sim, MinIO: minio, Bucket: minio.NewBucket(t, "archive"), Prefix: "gha"}
	e.Store, err = s3store.New(t.Context(), s3store.Config{Bucket: e.Bucket, Prefix: e.Prefix, AWS: minio.AWSConfig(), ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	e.AppKey = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	e.Clients, err = ghclient.New(ghclient.Config{APIURL: sim.URL(), AppID: AppID, PrivateKey: e.AppKey, MutationInterval: time.Second,
		Bundles: ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true})})
	if err != nil {
		t.Fatal(err)
	}
	e.Config = archive.Config{
		Store:         e.Store,
		GitHub:        e.Clients,
		Downloader:    ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true}),
		Concurrency:   4,
		PartSize:      PartSize,
		EmptyListWait: time.Minute,
		Logger:        Logger(),
	}
	if mod != nil {
		mod(&e.Config)
	}
	if e.Arch, err = archive.New(e.Config); err != nil {
		t.Fatal(err)
	}
	return e
}

// Logger logs to stderr when ARCHIVER_TEST_LOG is set, else discards.
func Logger() *slog.Logger {
	if os.Getenv("ARCHIVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Event builds the event the webhook would publish for run.
func Event(repo ghsim.Repo, run ghsim.Run) *runevent.RunCompleted {
	return &runevent.RunCompleted{
		SchemaVersion:  runevent.SchemaVersion,
		Source:         runevent.SourceWebhook,
		DeliveryID:     "delivery-" + run.HeadSHA[:8],
		ReceivedAt:     time.Now(),
		InstallationID: repo.InstallationID,
		Repository:     runevent.Repository{ID: repo.ID, Owner: repo.Owner, Name: repo.Name, FullName: repo.FullName()},
		WorkflowRun: runevent.WorkflowRun{
			ID: run.ID, RunAttempt: run.Attempt, Name: run.Name, Path: run.Path, Event: run.Event,
			HeadBranch: run.HeadBranch, HeadSHA: run.HeadSHA, Conclusion: run.Conclusion, Status: "completed",
		},
		WorkflowName: run.Name,
	}
}

// RunArtifacts returns the ids of a run's (undeleted) artifacts.
func (e *Env) RunArtifacts(owner, repo string, runID int64) []int64 {
	var ids []int64
	for _, a := range e.Sim.Artifacts(owner, repo) {
		if a.RunID == runID {
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// Read returns a whole object.
func (e *Env) Read(t testing.TB, key string) []byte {
	t.Helper()
	rc, err := e.Store.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Manifest reads and decodes a run attempt's manifest.
func (e *Env) Manifest(t testing.TB, owner, repo string, runID int64, attempt int) *archive.Manifest {
	t.Helper()
	l := archive.Layout{Owner: owner, Repo: repo, RunID: runID}
	m, err := archive.DecodeManifest(e.Read(t, l.ManifestKey(attempt)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Delete removes an object (to simulate a crash before it was written).
func (e *Env) Delete(t testing.TB, key string) {
	t.Helper()
	if _, err := e.Store.Client().DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(e.Bucket), Key: aws.String(e.Store.ObjectKey(key))}); err != nil {
		t.Fatal(err)
	}
}

// OpenUploads lists incomplete multipart uploads in the bucket.
func (e *Env) OpenUploads(t testing.TB) []string {
	t.Helper()
	out, err := e.Store.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(e.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// CheckArchived asserts the archive's invariants for one manifest: it lists
// exactly ids; expired ones are "expired"; every other one is "archived",
// with the simulator's size and sha256, and is the only object under its
// artifact folder, whose bytes hash to that sha256.
func (e *Env) CheckArchived(t testing.TB, m *archive.Manifest, ids []int64, expired map[int64]bool) {
	t.Helper()
	want := map[int64]ghsim.Artifact{}
	for _, id := range ids {
		a, ok := e.Sim.Artifact(id)
		if !ok {
			t.Fatalf("simulator has no artifact %d", id)
		}
		want[id] = a
	}
	if len(m.Artifacts) != len(want) {
		t.Fatalf("manifest lists %d artifacts, want %d", len(m.Artifacts), len(want))
	}
	for _, rec := range m.Artifacts {
		a, ok := want[rec.ID]
		if !ok {
			t.Fatalf("manifest lists unexpected artifact %d", rec.ID)
		}
		delete(want, rec.ID)
		if expired[rec.ID] {
			if rec.Status != archive.StatusExpired {
				t.Errorf("artifact %d: status %s, want expired", rec.ID, rec.Status)
			}
			continue
		}
		if rec.Status != archive.StatusArchived {
			t.Errorf("artifact %d: status %s (%s), want archived", rec.ID, rec.Status, rec.Error)
			continue
		}
		sum, err := e.Sim.SHA256(rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.SHA256 != sum || rec.Size != a.Size {
			t.Errorf("artifact %d: manifest sha256 %s size %d, simulator %s %d", rec.ID, rec.SHA256, rec.Size, sum, a.Size)
		}
		objs, err := e.Store.List(t.Context(), path.Dir(rec.Key)+"/")
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 1 || objs[0].Key != rec.Key {
			t.Errorf("artifact %d: %d objects under its folder, want exactly %s", rec.ID, len(objs), rec.Key)
		}
		h := sha256.Sum256(e.Read(t, rec.Key))
		if got := hex.EncodeToString(h[:]); got != sum {
			t.Errorf("artifact %d: object %s hashes to %s, want %s", rec.ID, rec.Key, got, sum)
		}
	}
}
