package archivectl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/filestore"
)

// corruptInPlace flips one byte of a file without changing its size or
// inode: bit rot that the file store's sidecar (and so the ETag) misses.
func corruptInPlace(t *testing.T, file string, off int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestFileDestination drives ls, get and verify against a file://
// archive written by the real archiver; --deep catches in-place
// corruption that keeps size and ETag.
func TestFileDestination(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "archive")
	fs, err := filestore.New(filestore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	a := archivetest.New(t, func(c *archive.Config) { c.Store = fs })
	arch := fill(t, a.Sim, func(r ghsim.Repo, run ghsim.Run) *archive.Manifest { return archiveRun(t, a, r, run) })
	ev := env{"ARCHIVER_DESTINATION": "file://" + dir}

	r := run(t, ev, "ls").want(t, 0)
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); n != 7 {
		t.Fatalf("ls: %d rows, want 7", n)
	}
	out := filepath.Join(t.TempDir(), "dist.zip")
	run(t, ev, "get", "octo-org/app", strconv.FormatInt(arch.ci.ID, 10), "dist", "-o", out).want(t, 0)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, content(t, a.Sim, arch.dist.ID)) {
		t.Fatalf("get from file:// wrote %d bytes, want the artifact's %d", len(got), arch.dist.Size)
	}
	run(t, ev, "verify", "--deep").want(t, 0)
	// No storage classes: nothing to restore, and restore says so.
	r = run(t, ev, "restore", "octo-org/app", "--wait").want(t, 0)
	mustContain(t, "restore on file://", r.stdout, "no storage classes", "5 objects can be read, nothing to restore")

	// Bit rot in an object and in a SHA256SUMS, sizes and inodes kept.
	pkgKey := key(t, arch.libM, arch.pkg.ID)
	corruptInPlace(t, filepath.Join(dir, pkgKey), 10)
	l := archive.Layout{Owner: "octo-org", Repo: "app", RunID: arch.release.ID}
	corruptInPlace(t, filepath.Join(dir, l.SumsKey(2)), 0)

	r = run(t, ev, "verify").want(t, 0) // size and ETag (the sidecar's sha256) still agree
	mustContain(t, "shallow verify", r.stdout, "OK: 3 manifests, 6 objects")
	r = run(t, ev, "verify", "--deep").want(t, archivectl.ExitFailure)
	mustContain(t, "deep verify", r.stdout, pkgKey, "sha256", l.SumsKey(2), "says", "FAILED: 2 problems")
	rep := decode[verifyReport](t, run(t, ev, "verify", "--deep", "--json", "octo-org/lib").want(t, 1).stdout)
	if len(rep.Problems) != 1 || rep.Problems[0].ArtifactID != arch.pkg.ID || !strings.HasPrefix(rep.Problems[0].Problem, "sha256 ") {
		t.Fatalf("verify --deep --json octo-org/lib: %+v", rep)
	}
	getDir := t.TempDir()
	run(t, ev, "get", "octo-org/lib", strconv.FormatInt(arch.libRun.ID, 10), "pkg", "-o", getDir).want(t, archivectl.ExitFailure)
	if left, _ := os.ReadDir(getDir); len(left) != 0 {
		t.Fatalf("get of a corrupt object left %v", left)
	}

	// The demo's relative form, file://./dir.
	t.Chdir(root)
	r = run(t, env{"ARCHIVER_DESTINATION": "file://./archive"}, "ls", "octo-org/lib", "--json").want(t, 0)
	mustContain(t, "ls file://./archive", r.stdout, pkgKey)
}
