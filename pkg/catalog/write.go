package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// ContentTypeJSONL is the content type of the small catalogue files.
const ContentTypeJSONL = "application/x-ndjson"

// writeTries bounds Write's conditional put attempts.
const writeTries = 5

// Write writes (or rewrites) the catalogue file of the run attempt whose
// manifest is at manifestKey. It reads the manifest as stored now (not a
// caller's copy) and writes conditionally (If-None-Match / If-Match on
// what it read), retrying on conflict, so that the file never goes back to
// an older manifest when two workers race.
//
// Each try reads the catalogue file's ETag first and the manifest second:
// a writer that read an older manifest then either finds the file
// unchanged (nobody wrote a newer view after its read) or loses its
// conditional put and tries again with the manifest as it is then.
func Write(ctx context.Context, st archive.Store, manifestKey string) error {
	m, err := readManifest(ctx, st, manifestKey)
	if err != nil {
		return err
	}
	key := manifestAttemptKey(m)
	for try := 1; ; try++ {
		opts := archive.PutOptions{Kind: archive.KindRecord, ContentType: ContentTypeJSONL}
		info, err := st.Stat(ctx, key)
		switch {
		case errors.Is(err, archive.ErrNotFound):
			opts.IfAbsent = true
		case err != nil:
			return fmt.Errorf("catalog: stat %s: %w", key, err)
		default:
			opts.IfMatch = info.ETag
		}
		if m, err = readManifest(ctx, st, manifestKey); err != nil {
			return err
		}
		if k := manifestAttemptKey(m); k != key {
			return fmt.Errorf("catalog: write %s: manifest %s now maps to %s", key, manifestKey, k)
		}
		body, err := EncodeJSONL(Rows(m))
		if err != nil {
			return err
		}
		_, err = st.Put(ctx, key, bytes.NewReader(body), int64(len(body)), opts)
		switch {
		case err == nil:
			return nil
		case (errors.Is(err, archive.ErrExists) || errors.Is(err, archive.ErrConflict)) && try < writeTries:
			continue // another writer won: read both again
		default:
			return fmt.Errorf("catalog: write %s: %w", key, err)
		}
	}
}

// readManifest reads and decodes the manifest at key.
func readManifest(ctx context.Context, st archive.Store, key string) (*archive.Manifest, error) {
	b, err := readAll(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("catalog: read manifest %s: %w", key, err)
	}
	m, err := archive.DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("catalog: read manifest %s: %w", key, err)
	}
	return m, nil
}

// readAll reads a whole object into memory.
func readAll(ctx context.Context, st archive.Store, key string) ([]byte, error) {
	rc, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
