package s3store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

func TestDelete(t *testing.T) {
	srv := testserver.MinIO(t)
	st := newStore(t, srv, "archive/v1")
	ctx := t.Context()
	for _, k := range []string{"a/b.txt", "a/b.txt2"} {
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
	if _, err := st.Stat(ctx, "a/b.txt2"); err != nil {
		t.Errorf("Delete removed a neighbour: %v", err)
	}
	if err := st.Delete(ctx, "a/b.txt"); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
	if err := st.Delete(ctx, "../x"); err == nil {
		t.Error("Delete of an invalid key: no error")
	}
}
