package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/storetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// TestServerVerifiesSHA256 turns the local check off to show that the
// server verifies x-amz-checksum-sha256 on its own, and that its refusal
// comes back as a *ChecksumError.
func TestServerVerifiesSHA256(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testserver.MinIOOption
	}{
		{"HTTP", nil},
		{"TLS", []testserver.MinIOOption{testserver.WithTLS()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.MinIO(t, tc.opts...)
			st, err := New(t.Context(), Config{Bucket: srv.NewBucket(t, ""), AWS: srv.AWSConfig(), ForcePathStyle: true})
			if err != nil {
				t.Fatal(err)
			}
			st.noLocalChecksum = true
			data := storetest.PatternBytes(1, 3*storetest.MiB)
			wrong := sha256.Sum256([]byte("wrong"))
			_, err = st.Put(t.Context(), "k", bytes.NewReader(data), int64(len(data)), archive.PutOptions{SHA256: wrong[:]})
			var ce *ChecksumError
			if !errors.As(err, &ce) || ce.Got != nil {
				t.Fatalf("Put with a wrong SHA256 and no local check: %v, want a server-side *ChecksumError", err)
			}
			t.Logf("server verdict: %v", err)
			if _, err := st.Stat(context.WithoutCancel(t.Context()), "k"); !errors.Is(err, archive.ErrNotFound) {
				t.Errorf("Stat after the refused Put: %v, want ErrNotFound", err)
			}
		})
	}
}
