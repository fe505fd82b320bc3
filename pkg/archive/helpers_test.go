package archive_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/pkg/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

func hashReader(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readObject(t *testing.T, st *s3store.Store, key string) string {
	t.Helper()
	rc, err := st.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func deleteObject(t *testing.T, st *s3store.Store, key string) {
	t.Helper()
	if _, err := st.Client().DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket()), Key: aws.String(st.ObjectKey(key))}); err != nil {
		t.Fatal(err)
	}
}

// openUploads lists incomplete multipart uploads in the whole bucket.
func openUploads(t *testing.T, st *s3store.Store) []string {
	t.Helper()
	out, err := st.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket())})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// injectForArtifact makes the next blob request for artifact id fail as f.
func injectForArtifact(t *testing.T, sim *ghsim.Server, id int64, f ghsim.Fault) {
	t.Helper()
	sim.Inject(ghsim.RouteBlob, 1, f.ForArtifact(id))
}
