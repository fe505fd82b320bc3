package worker_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

// publishRun adds a run with two artifacts and pull requests, and
// publishes its event.
func (s *stack) publishRun(t *testing.T) (ghsim.Repo, ghsim.Run) {
	t.Helper()
	repo := s.Sim.AddRepo(archivetest.Installation, "octo-org", "hello.world")
	created := time.Date(2025, 6, 30, 23, 59, 0, 0, time.UTC)
	run := s.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{CreatedAt: created, PullRequests: []int64{8}})
	for i := range 2 {
		s.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(10 + i)})
	}
	ev := archivetest.Event(repo, run)
	ev.WorkflowRun.CreatedAt, ev.WorkflowRun.PullRequests = created, run.PullRequests
	s.publish(t, ev)
	return repo, run
}

// metricValue is the value of an unlabelled counter in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	n, err := testutil.GatherAndCount(reg, name)
	if err != nil || n != 1 {
		t.Fatalf("metric %s: %d series, %v", name, n, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

func TestWorkerWritesCatalog(t *testing.T) {
	s := setup(t, events.Topology{}, nil)
	reg := prometheus.NewRegistry()
	s.startWorkerConfig(t, nil, worker.Config{Catalog: s.Store, Registerer: reg})
	repo, run := s.publishRun(t)
	testserver.Eventually(t, 30*time.Second, "the run stream to drain", func() bool { return s.streamMsgs(t, s.topo.Stream) == 0 })

	key := catalog.AttemptKey(repo.Owner, repo.Name, "2025-06", run.ID, 1)
	if _, err := s.Store.Stat(t.Context(), key); err != nil {
		t.Fatalf("catalogue file %s: %v", key, err)
	}
	rows, err := catalog.Find(t.Context(), s.Store, catalog.Filter{Owner: repo.Owner, Repo: repo.Name, PR: 8})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].RunID != run.ID || rows[0].Status != archive.StatusArchived || rows[0].HeadSHA != run.HeadSHA {
		t.Errorf("catalogue rows %+v, want the run's 2 archived artifacts", rows)
	}
	if got := metricValue(t, reg, "archiver_catalog_writes_total"); got != 1 {
		t.Errorf("archiver_catalog_writes_total = %v, want 1", got)
	}
	if got := metricValue(t, reg, "archiver_catalog_write_failures_total"); got != 0 {
		t.Errorf("archiver_catalog_write_failures_total = %v, want 0", got)
	}
}

// refusingStore refuses every write under the catalogue's prefix.
type refusingStore struct{ archive.Store }

var errRefused = errors.New("catalogue writes refused")

func (s refusingStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts archive.PutOptions) (archive.ObjectInfo, error) {
	if strings.HasPrefix(key, catalog.Prefix) {
		return archive.ObjectInfo{}, errRefused
	}
	return s.Store.Put(ctx, key, r, size, opts)
}

func TestCatalogFailureDoesNotFailRun(t *testing.T) {
	s := setup(t, events.Topology{}, nil)
	reg := prometheus.NewRegistry()
	s.startWorkerConfig(t, nil, worker.Config{Catalog: refusingStore{s.Store}, Registerer: reg})
	repo, run := s.publishRun(t)
	testserver.Eventually(t, 30*time.Second, "the run stream to drain", func() bool { return s.streamMsgs(t, s.topo.Stream) == 0 })

	s.CheckArchived(t, s.Manifest(t, repo.Owner, repo.Name, run.ID, 1), s.RunArtifacts(repo.Owner, repo.Name, run.ID), nil)
	if got := testutil.ToFloat64(counter(t, reg, "archiver_jobs_total", "archived")); got != 1 {
		t.Errorf("archiver_jobs_total{outcome=archived} = %v, want 1", got)
	}
	if got := metricValue(t, reg, "archiver_catalog_write_failures_total"); got != 1 {
		t.Errorf("archiver_catalog_write_failures_total = %v, want 1", got)
	}
	if n := len(s.dlq(t)); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	infos, err := s.Store.List(t.Context(), catalog.Prefix)
	if err != nil || len(infos) != 0 {
		t.Errorf("catalogue after refused writes: %v, %v", infos, err)
	}
	// Rebuild repairs it.
	if res, err := catalog.Rebuild(t.Context(), s.Store, repo.Owner, repo.Name); err != nil || res.Written != 1 {
		t.Errorf("Rebuild = %+v, %v", res, err)
	}
	rows, err := catalog.Find(t.Context(), s.Store, catalog.Filter{RunID: run.ID})
	if err != nil || len(rows) != 2 || !slices.Equal(rows[0].PullRequests, []int64{8}) {
		t.Errorf("rows after Rebuild: %+v, %v", rows, err)
	}
}
