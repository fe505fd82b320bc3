package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// TestPermanentArtifactFailureWritesManifestFirst: one artifact with a
// malformed GitHub digest (a permanent error) does not keep the others out
// of the catalogue. The first delivery writes the manifest (the good
// artifact archived, the bad one failed with its error, "complete": false),
// then dead-letters the event with the error.
func TestPermanentArtifactFailureWritesManifestFirst(t *testing.T) {
	s := setup(t, events.Topology{MaxDeliver: 5}, nil)
	s.startWorker(t, nil, nil)
	repo := s.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := s.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	good := s.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "good", Size: 1000})
	bad := s.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "bad", Size: 1000, MalformedDigest: true})
	s.publish(t, archivetest.Event(repo, run))
	testserver.Eventually(t, 30*time.Second, "a dead letter", func() bool { return len(s.dlq(t)) == 1 })
	dl := s.dlq(t)[0]
	if k, n := dl.Header.Get(events.HeaderErrorKind), dl.Header.Get(events.HeaderDeliveries); k != "permanent" || n != "1" {
		t.Errorf("dead letter kind %q after %s deliveries, want permanent after 1", k, n)
	}
	if e := dl.Header.Get(events.HeaderError); !strings.Contains(e, "digest") {
		t.Errorf("dead letter error %q does not say what failed", e)
	}
	m := s.Manifest(t, repo.Owner, repo.Name, run.ID, 1)
	if m.Complete {
		t.Error("manifest with a failed artifact says complete")
	}
	for _, a := range m.Artifacts {
		switch a.ID {
		case good.ID:
			if a.Status != archive.StatusArchived {
				t.Errorf("good artifact %s, want archived", a.Status)
			}
		case bad.ID:
			if a.Status != archive.StatusFailed || a.Error == "" || a.Tries < 1 {
				t.Errorf("bad artifact %+v, want failed with an error and tries", a)
			}
		}
	}
	if len(m.Artifacts) != 2 {
		t.Errorf("manifest lists %d artifacts, want 2", len(m.Artifacts))
	}
}

// scriptedArchiver answers each call with the next error of its script (a
// narrow stand-in for the archiver, to drive the worker's outcome map).
type scriptedArchiver struct {
	errs  []error
	calls atomic.Int32
}

func (a *scriptedArchiver) ArchiveRun(ctx context.Context, ev *runevent.RunCompleted, final bool) (archive.RunResult, error) {
	i := int(a.calls.Add(1)) - 1
	if i >= len(a.errs) {
		return archive.RunResult{}, nil
	}
	return archive.RunResult{}, a.errs[i]
}

// TestLastDeliveryAlwaysDeadLetters: on the last delivery a cancellation
// (here a library's own deadline, not a shutdown of the worker) is
// dead-lettered with its error: a Nak would never be redelivered.
func TestLastDeliveryAlwaysDeadLetters(t *testing.T) {
	s := setup(t, events.Topology{MaxDeliver: 2}, nil)
	reg := prometheus.NewRegistry()
	deadline := fmt.Errorf("archive: list: %w", context.DeadlineExceeded)
	arch := &scriptedArchiver{errs: []error{deadline, deadline}}
	s.startWorker(t, arch, reg)
	repo := s.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := s.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	s.publish(t, archivetest.Event(repo, run))
	testserver.Eventually(t, 30*time.Second, "a dead letter", func() bool { return len(s.dlq(t)) == 1 })
	dl := s.dlq(t)[0]
	if e := dl.Header.Get(events.HeaderError); !strings.Contains(e, "deadline exceeded") {
		t.Errorf("dead letter error %q, want the job's error", e)
	}
	if n := testutil.ToFloat64(counter(t, reg, "archiver_jobs_total", "handed_back")); n != 0 {
		t.Errorf("handed_back = %v, want 0", n)
	}
	testserver.Eventually(t, 10*time.Second, "the run stream to drain", func() bool { return s.streamMsgs(t, s.topo.Stream) == 0 })
}

// TestCancellationIsNotShutdown: a job that fails with a context error
// while the worker is running is retried with backoff, not handed back as
// a shutdown.
func TestCancellationIsNotShutdown(t *testing.T) {
	s := setup(t, events.Topology{MaxDeliver: 3}, nil)
	reg := prometheus.NewRegistry()
	arch := &scriptedArchiver{errs: []error{fmt.Errorf("archive: blob: %w", context.Canceled)}}
	s.startWorker(t, arch, reg)
	repo := s.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := s.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	s.publish(t, archivetest.Event(repo, run))
	testserver.Eventually(t, 30*time.Second, "the run stream to drain", func() bool { return s.streamMsgs(t, s.topo.Stream) == 0 })
	if n := arch.calls.Load(); n != 2 {
		t.Errorf("archiver called %d times, want 2 (a retry after the error)", n)
	}
	if n := testutil.ToFloat64(counter(t, reg, "archiver_jobs_total", "handed_back")); n != 0 {
		t.Errorf("handed_back = %v, want 0", n)
	}
	if n := testutil.ToFloat64(counter(t, reg, "archiver_jobs_total", "retry")); n != 1 {
		t.Errorf("retry = %v, want 1", n)
	}
	if len(s.dlq(t)) != 0 {
		t.Error("a retried job was dead-lettered")
	}
}
