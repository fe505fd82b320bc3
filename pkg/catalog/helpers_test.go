package catalog_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
	"github.com/artifact-archiver/artifact-archiver/pkg/filestore"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// store is what the tests need of a store: the archive's interface plus
// Delete, which both implementations have.
type store interface {
	archive.Store
	Delete(ctx context.Context, key string) error
}

var (
	_ store = (*filestore.Store)(nil)
	_ store = (*s3store.Store)(nil)
)

// eachStore runs fn as a subtest against a fresh file store and a fresh
// bucket on a MinIO server started for the test.
func eachStore(t *testing.T, fn func(t *testing.T, st store)) {
	t.Helper()
	t.Run("file", func(t *testing.T) {
		st, err := filestore.New(filestore.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("minio", func(t *testing.T) {
		srv := testserver.MinIO(t)
		cfg := s3store.Config{
			Bucket:         srv.NewBucket(t, ""),
			Prefix:         "archive",
			AWS:            srv.AWSConfig(),
			ForcePathStyle: true,
			Logger:         slog.New(slog.NewTextHandler(t.Output(), nil)),
		}
		st, err := s3store.New(t.Context(), cfg)
		if err != nil {
			t.Fatalf("s3store.New: %v", err)
		}
		fn(t, st)
	})
}

// run describes a run attempt to put in the archive.
type run struct {
	owner, repo string
	id          int64
	attempt     int
	created     time.Time
	sha         string
	branch      string
	workflow    string // name; path is .github/workflows/<name>.yml
	prs         []int64
	artifacts   []string // names; ids are id*100+i
	archivedAt  time.Time
}

func (r run) manifest() *archive.Manifest {
	m := &archive.Manifest{
		SchemaVersion: archive.ManifestVersion,
		Repository:    runevent.Repository{ID: 1, Owner: r.owner, Name: r.repo, FullName: r.owner + "/" + r.repo},
		WorkflowRun: runevent.WorkflowRun{
			ID: r.id, RunAttempt: r.attempt, Name: r.workflow, Path: ".github/workflows/" + r.workflow + ".yml",
			Event: "push", HeadBranch: r.branch, HeadSHA: r.sha, Conclusion: "success",
			CreatedAt: r.created, UpdatedAt: r.created.Add(time.Minute), PullRequests: r.prs,
		},
		ArchivedAt: r.archivedAt,
		Complete:   true,
	}
	if m.ArchivedAt.IsZero() {
		m.ArchivedAt = r.created.Add(5 * time.Minute)
	}
	l := archive.Layout{Owner: r.owner, Repo: r.repo, RunID: r.id}
	for i, name := range r.artifacts {
		id := r.id*100 + int64(i)
		m.Artifacts = append(m.Artifacts, archive.ArtifactRecord{
			ID: id, Name: name, Status: archive.StatusArchived, Key: l.ArtifactPrefix(id) + name + ".zip",
			Size: 100 + int64(i), SHA256: fmt.Sprintf("%064x", id),
		})
	}
	return m
}

func (r run) manifestKey() string {
	return archive.Layout{Owner: r.owner, Repo: r.repo, RunID: r.id}.ManifestKey(r.attempt)
}

// putManifest stores r's manifest (unconditionally) and returns its key.
func putManifest(t *testing.T, st archive.Store, r run) string {
	t.Helper()
	b, err := r.manifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	key := r.manifestKey()
	if _, err := st.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)), archive.PutOptions{ContentType: "application/json"}); err != nil {
		t.Fatalf("put manifest %s: %v", key, err)
	}
	return key
}

// archiveRun stores r's manifest and writes its catalogue file.
func archiveRun(t *testing.T, st archive.Store, r run) {
	t.Helper()
	key := putManifest(t, st, r)
	if err := catalog.Write(t.Context(), st, key); err != nil {
		t.Fatalf("Write(%s): %v", key, err)
	}
}

// find runs Find and fails the test on an error.
func find(t *testing.T, st archive.Store, f catalog.Filter) []catalog.Row {
	t.Helper()
	rows, err := catalog.Find(t.Context(), st, f)
	if err != nil {
		t.Fatalf("Find(%+v): %v", f, err)
	}
	return rows
}

// attempts renders rows as "repo#run.attempt/artifact" for comparisons.
func attempts(rows []catalog.Row) string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s#%d.%d/%s", r.Repository, r.RunID, r.RunAttempt, r.ArtifactName))
	}
	return strings.Join(out, " ")
}

// catalogKeys lists the catalogue's files, JSONL then Parquet.
func catalogKeys(t *testing.T, st archive.Store) []string {
	t.Helper()
	var keys []string
	for _, root := range []string{catalog.Prefix, catalog.ParquetPrefix} {
		infos, err := st.List(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range infos {
			keys = append(keys, i.Key)
		}
	}
	return keys
}

// spyStore wraps a store, records the keys opened and listed, and can run
// hooks before a Put or a Stat.
type spyStore struct {
	store
	mu        sync.Mutex
	opened    []string
	listed    []string
	beforePut func(key string)
	beforeSta func(key string)
}

func (s *spyStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	s.opened = append(s.opened, key)
	s.mu.Unlock()
	return s.store.Open(ctx, key)
}

func (s *spyStore) List(ctx context.Context, prefix string) ([]archive.ObjectInfo, error) {
	s.mu.Lock()
	s.listed = append(s.listed, prefix)
	s.mu.Unlock()
	return s.store.List(ctx, prefix)
}

func (s *spyStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts archive.PutOptions) (archive.ObjectInfo, error) {
	if s.beforePut != nil {
		s.beforePut(key)
	}
	return s.store.Put(ctx, key, r, size, opts)
}

func (s *spyStore) Stat(ctx context.Context, key string) (archive.ObjectInfo, error) {
	if s.beforeSta != nil {
		s.beforeSta(key)
	}
	return s.store.Stat(ctx, key)
}

func (s *spyStore) reset() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, l := s.opened, s.listed
	s.opened, s.listed = nil, nil
	return o, l
}
