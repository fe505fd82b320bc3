package archive_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// flakyStore fails the first write of some part numbers after the store
// has read half of the part, as a connection reset mid-UploadPart would.
type flakyStore struct {
	archive.Store
	mu   sync.Mutex
	fail map[int]bool
}

func (s *flakyStore) CreateUpload(ctx context.Context, key string, opts archive.PutOptions) (archive.Upload, error) {
	up, err := s.Store.CreateUpload(ctx, key, opts)
	return &flakyUpload{Upload: up, s: s}, err
}

type flakyUpload struct {
	archive.Upload
	s *flakyStore
}

func (u *flakyUpload) WritePart(ctx context.Context, n int, r io.Reader, size int64) error {
	u.s.mu.Lock()
	fail := u.s.fail[n]
	delete(u.s.fail, n)
	u.s.mu.Unlock()
	if fail {
		return u.Upload.WritePart(ctx, n, io.MultiReader(io.LimitReader(r, size/2), errReader{}), size)
	}
	return u.Upload.WritePart(ctx, n, r, size)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// TestFailedPartUploadIsWrittenAgainFromItsBuffer: parts whose upload to
// S3 fails half-way are written again from their buffers. The blob host
// serves the artifact once, with no Range request, and the object is
// verified.
func TestFailedPartUploadIsWrittenAgainFromItsBuffer(t *testing.T) {
	flaky := &flakyStore{fail: map[int]bool{2: true, 4: true}}
	e := archivetest.New(t, func(c *archive.Config) {
		flaky.Store = c.Store
		c.Store = flaky
	})
	repo := e.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := e.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	a := e.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "big", Size: 4*archivetest.PartSize + archivetest.MiB})
	if _, err := e.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), false); err != nil {
		t.Fatal(err)
	}
	if len(flaky.fail) != 0 {
		t.Fatalf("parts %v were never written", flaky.fail)
	}
	st := e.Sim.Stats()
	if served, n := st.BlobBytesByArtifact[a.ID], st.BlobRequestsByArtifact[a.ID]; served != a.Size || n != 1 {
		t.Errorf("blob host served %d bytes in %d requests, want %d in 1", served, n, a.Size)
	}
	if len(st.Ranges) != 0 {
		t.Errorf("Range requests %+v, want none", st.Ranges)
	}
	e.CheckArchived(t, e.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{a.ID}, nil)
	if ups := e.OpenUploads(t); len(ups) != 0 {
		t.Errorf("open multipart uploads: %v", ups)
	}
}
