package filestore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/filestore"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "archive")
	defer os.RemoveAll(dir)
	st, err := filestore.New(filestore.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer st.Close()

	data := "artifact bytes"
	sum := sha256.Sum256([]byte(data))
	opts := archive.PutOptions{
		ContentType: "application/zip",
		Metadata:    map[string]string{archive.MetaArtifactID: "42"},
		IfAbsent:    true,
		SHA256:      sum[:],
	}
	info, err := st.Put(ctx, "octo/repo/runs/7/42.zip", strings.NewReader(data), int64(len(data)), opts)
	fmt.Println(info.Key, info.Size, info.Metadata[archive.MetaArtifactID], err)

	// A second create-only write loses and leaves the object untouched.
	_, err = st.Put(ctx, "octo/repo/runs/7/42.zip", strings.NewReader("other"), 5, archive.PutOptions{IfAbsent: true})
	fmt.Println(errors.Is(err, archive.ErrExists))

	_, err = st.Stat(ctx, "octo/repo/runs/7/43.zip")
	fmt.Println(errors.Is(err, archive.ErrNotFound))
	// Output:
	// octo/repo/runs/7/42.zip 14 42 <nil>
	// true
	// true
}

func ExampleParseDestination() {
	dir, err := filestore.ParseDestination("file:///var/lib/artifact-archiver")
	fmt.Println(dir, err)
	// Output: /var/lib/artifact-archiver <nil>
}
