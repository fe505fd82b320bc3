package filestore_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/storetest"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/filestore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func setup(t *testing.T) (*filestore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := filestore.New(filestore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) archive.Store {
		st, _ := setup(t)
		return st
	})
}

func TestLayout(t *testing.T) {
	st, dir := setup(t)
	if _, err := st.Put(t.Context(), "runs/7/a.zip", bytes.NewReader([]byte("zip")), 3, archive.PutOptions{ContentType: "application/zip"}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "runs", "7", "a.zip")); err != nil || string(b) != "zip" {
		t.Fatalf("object file: %q, %v", b, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "runs", "7"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// Only the object and its sidecar: no temporary file is left.
	if want := []string{".a.zip.meta.json", "a.zip"}; !slices.Equal(names, want) {
		t.Errorf("directory holds %q, want %q", names, want)
	}
	if got, want := st.Location("runs/7/a b.zip"), "file://"+filepath.ToSlash(dir)+"/runs/7/a%20b.zip"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
}

func TestHiddenFilesAreNotObjects(t *testing.T) {
	st, dir := setup(t)
	// Leftovers of a crashed writer and foreign dotfiles.
	for _, name := range []string{".put-XYZ", "d/.upload-abc-XYZ", "d/.x.meta.json", ".git/config"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := st.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 0 {
		t.Errorf("List = %+v, want nothing", infos)
	}
	if _, err := st.Put(t.Context(), "d/.x", bytes.NewReader(nil), 0, archive.PutOptions{}); err == nil {
		t.Error("Put of a key with a dot segment succeeded")
	}
}

func TestFileWithoutSidecar(t *testing.T) {
	st, dir := setup(t)
	if err := os.WriteFile(filepath.Join(dir, "by-hand.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := st.Stat(t.Context(), "by-hand.txt")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 5 || info.ContentType != filestore.DefaultContentType || len(info.Metadata) != 0 || info.ETag == "" {
		t.Errorf("Stat = %+v", info)
	}
}

func TestReplacedFileIgnoresSidecar(t *testing.T) {
	st, dir := setup(t)
	meta := map[string]string{archive.MetaSHA256: "abc"}
	if _, err := st.Put(t.Context(), "k", bytes.NewReader([]byte("old")), 3, archive.PutOptions{Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	// Replace the data behind the store's back (as a crash between the
	// sidecar and data renames of an overwrite would leave it).
	tmp := filepath.Join(dir, "replacement")
	if err := os.WriteFile(tmp, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "k")); err != nil {
		t.Fatal(err)
	}
	info, err := st.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Metadata) != 0 {
		t.Errorf("Stat.Metadata = %v: the sidecar of the old file was applied to the new one", info.Metadata)
	}
}

func TestSymlinkEscape(t *testing.T) {
	st, dir := setup(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(t.Context(), "link/x", bytes.NewReader([]byte("x")), 1, archive.PutOptions{}); err == nil {
		t.Error("Put through a symlink leaving the root succeeded")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the root: %v", entries)
	}
	if _, err := st.Stat(t.Context(), "link/x"); err == nil {
		t.Error("Stat through the symlink succeeded")
	}
}

func TestParseDestination(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"file:///var/lib/archive", "/var/lib/archive", true},
		{"file://localhost/var/lib/archive/", "/var/lib/archive", true},
		{"file:///srv/my%20archive", "/srv/my archive", true},
		{"file://host/x", "", false},
		{"file://relative", "", false},
		{"file:relative/x", "", false},
		{"s3://bucket/x", "", false},
		{"/var/lib/archive", "", false},
		{"file:///x?y=1", "", false},
		{"file:///", "/", true},
	} {
		got, err := filestore.ParseDestination(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDestination(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSharedDirectoryBetweenStores(t *testing.T) {
	// Two stores on one directory (two processes in production) honour each
	// other's create-only writes and live uploads.
	a, dir := setup(t)
	b, err := filestore.New(filestore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Put(t.Context(), "k", bytes.NewReader([]byte("a")), 1, archive.PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(t.Context(), "k", bytes.NewReader([]byte("b")), 1, archive.PutOptions{IfAbsent: true}); !errors.Is(err, archive.ErrExists) {
		t.Fatalf("second store's Put(IfAbsent): %v, want ErrExists", err)
	}
	up, err := a.CreateUpload(t.Context(), "u", archive.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.WritePart(t.Context(), 1, bytes.NewReader([]byte("a")), 1); err != nil {
		t.Fatal(err)
	}
	up2, err := b.CreateUpload(t.Context(), "u", archive.PutOptions{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer up2.Abort(t.Context())
	if err := up2.WritePart(t.Context(), 1, bytes.NewReader([]byte("b")), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Complete(t.Context()); err != nil {
		t.Fatalf("a live upload failed after another store's CreateUpload at its key: %v", err)
	}
	if _, err := up2.Complete(t.Context()); !errors.Is(err, archive.ErrExists) {
		t.Fatalf("second store's create-only Complete: %v, want ErrExists", err)
	}
}
