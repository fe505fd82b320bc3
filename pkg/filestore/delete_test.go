package filestore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/filestore"
)

func TestDelete(t *testing.T) {
	st, err := filestore.New(filestore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	for _, k := range []string{"a/b.txt", "a/b.txt2", "a/c/d"} {
		if _, err := st.Put(ctx, k, strings.NewReader("x"), 1, archive.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(ctx, "a/b.txt"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := st.Stat(ctx, "a/b.txt"); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("Stat after Delete = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(st.Dir(), "a", ".b.txt.meta.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sidecar left behind: %v", err)
	}
	if _, err := st.Stat(ctx, "a/b.txt2"); err != nil {
		t.Errorf("Delete removed a neighbour: %v", err)
	}
	if err := st.Delete(ctx, "a/b.txt"); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
	if err := st.Delete(ctx, "a/c"); err != nil {
		t.Errorf("Delete of a folder of keys = %v, want nil (no object there)", err)
	}
	if _, err := st.Stat(ctx, "a/c/d"); err != nil {
		t.Errorf("Delete of the folder removed its key: %v", err)
	}
	if err := st.Delete(ctx, "../x"); err == nil {
		t.Error("Delete of an invalid key: no error")
	}
	// A new object at a deleted key is an ordinary create.
	if _, err := st.Put(ctx, "a/b.txt", strings.NewReader("y"), 1, archive.PutOptions{IfAbsent: true}); err != nil {
		t.Errorf("create after Delete: %v", err)
	}
}
