package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

// stack is a real JetStream (embedded nats-server over TCP), the GitHub
// simulator and MinIO, with the streams and consumer provisioned.
type stack struct {
	*archivetest.Env
	nats *testserver.NATSServer
	nc   *nats.Conn
	js   jetstream.JetStream
	topo events.Topology
	pub  *events.Publisher
}

func setup(t *testing.T, topo events.Topology, mod func(*archive.Config)) *stack {
	t.Helper()
	s := &stack{Env: archivetest.New(t, mod), nats: testserver.NATS(t)}
	var err error
	if s.nc, err = nats.Connect(s.nats.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.nc.Close)
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	s.topo = topo.WithDefaults()
	if err := events.Provision(t.Context(), s.js, s.topo); err != nil {
		t.Fatal(err)
	}
	s.pub = events.NewPublisher(s.js, s.topo, 0)
	return s
}

// startWorker runs a worker until the test ends (or its Stop is called).
func (s *stack) startWorker(t *testing.T, arch worker.Archiver, reg prometheus.Registerer) *worker.Worker {
	t.Helper()
	return s.startWorkerConfig(t, arch, worker.Config{Registerer: reg})
}

// startWorkerConfig runs a worker with cfg (topology, slots, waits and
// logger set here) until the test ends (or its Stop is called).
func (s *stack) startWorkerConfig(t *testing.T, arch worker.Archiver, cfg worker.Config) *worker.Worker {
	t.Helper()
	if arch == nil {
		arch = s.Arch
	}
	cfg.Topology, cfg.Slots, cfg.FetchWait, cfg.MaxBackoff, cfg.Logger = s.topo, 2, time.Second, 200*time.Millisecond, archivetest.Logger()
	w, err := worker.New(s.js, arch, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Stop(ctx)
	})
	return w
}

func (s *stack) publish(t *testing.T, ev *runevent.RunCompleted) {
	t.Helper()
	if _, err := s.pub.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) streamMsgs(t *testing.T, name string) uint64 {
	t.Helper()
	st, err := s.js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (s *stack) dlq(t *testing.T) []jetstream.RawStreamMsg {
	t.Helper()
	st, err := s.js.Stream(t.Context(), s.topo.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *m)
	}
	return out
}

func TestWorkerArchivesAndAcks(t *testing.T) {
	s := setup(t, events.Topology{}, nil)
	reg := prometheus.NewRegistry()
	s.startWorker(t, nil, reg)
	repo := s.Sim.AddRepo(archivetest.Installation, "octo-org", "hello.world")
	var runs []ghsim.Run
	for i := range 3 {
		run := s.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
		for j := range 3 {
			s.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "a", Size: int64(100*i + j + 1)})
		}
		runs = append(runs, run)
		s.publish(t, archivetest.Event(repo, run))
	}
	testserver.Eventually(t, 30*time.Second, "the run stream to drain", func() bool { return s.streamMsgs(t, s.topo.Stream) == 0 })
	for _, run := range runs {
		m := s.Manifest(t, repo.Owner, repo.Name, run.ID, 1)
		s.CheckArchived(t, m, s.RunArtifacts(repo.Owner, repo.Name, run.ID), nil)
	}
	if got := testutil.ToFloat64(counter(t, reg, "archiver_jobs_total", "archived")); got != 3 {
		t.Errorf("archiver_jobs_total{outcome=archived} = %v, want 3", got)
	}
	if n := len(s.dlq(t)); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

func TestPermanentErrorIsDeadLettered(t *testing.T) {
	s := setup(t, events.Topology{}, nil)
	s.startWorker(t, nil, nil)
	// A repository the App cannot see: list answers 404.
	s.Sim.AddRepo(archivetest.Installation, "octo-org", "visible")
	ev := archivetest.Event(ghsim.Repo{ID: 99, Owner: "gone", Name: "repo", InstallationID: archivetest.Installation},
		ghsim.Run{RunSpec: ghsim.RunSpec{ID: 12345, Attempt: 1, HeadSHA: "0123456789abcdef"}})
	s.publish(t, ev)
	// An installation that no longer exists (the App was uninstalled).
	s.publish(t, archivetest.Event(ghsim.Repo{ID: 100, Owner: "x", Name: "y", InstallationID: 555},
		ghsim.Run{RunSpec: ghsim.RunSpec{ID: 777, Attempt: 1, HeadSHA: "fedcba9876543210"}}))
	// Undecodable bytes on the run subject.
	if _, err := s.js.Publish(t.Context(), "archiver.runs.0.1", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	testserver.Eventually(t, 30*time.Second, "three dead letters", func() bool { return len(s.dlq(t)) == 3 })
	if n := s.streamMsgs(t, s.topo.Stream); n != 0 {
		t.Errorf("run stream still holds %d messages", n)
	}
	kinds := map[string]jetstream.RawStreamMsg{}
	for _, m := range s.dlq(t) {
		kinds[m.Subject] = m
		if m.Header.Get(events.HeaderErrorKind) != "permanent" || m.Header.Get(events.HeaderError) == "" {
			t.Errorf("dead letter %s headers %v", m.Subject, m.Header)
		}
	}
	gone, ok := kinds["archiver.dlq.77.99"]
	if !ok {
		t.Fatalf("dead letters %v, want one on archiver.dlq.77.99", kinds)
	}
	if gone.Header.Get(events.HeaderDelivery) != ev.DeliveryID || gone.Header.Get(events.HeaderOrigSubject) != "archiver.runs.77.99" {
		t.Errorf("dead letter headers %v", gone.Header)
	}
	if n := gone.Header.Get(events.HeaderDeliveries); n != "1" {
		t.Errorf("a permanent error was delivered %s times, want 1", n)
	}
	if back, err := runevent.DecodeRunCompleted(gone.Data); err != nil || back.WorkflowRun.ID != 12345 {
		t.Errorf("dead letter body %q: %v", gone.Data, err)
	}
	if m, ok := kinds["archiver.dlq.555.100"]; !ok || m.Header.Get(events.HeaderDeliveries) != "1" {
		t.Errorf("uninstalled App: dead letters %v", kinds)
	}
	if _, ok := kinds["archiver.dlq.undecodable"]; !ok {
		t.Errorf("no dead letter for the undecodable message: %v", kinds)
	}
}

// TestMaxDeliverRecordsFailuresThenDeadLetters: a digest that never matches
// is retried MaxDeliver times; the last delivery writes the manifest with
// the artifact "failed" and dead-letters the event.
func TestMaxDeliverRecordsFailuresThenDeadLetters(t *testing.T) {
	s := setup(t, events.Topology{MaxDeliver: 2}, func(c *archive.Config) { c.Attempts = 1 })
	s.startWorker(t, nil, nil)
	repo := s.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := s.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	good := s.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "good", Size: 10})
	bad := s.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "bad", Size: 10, WrongDigest: true})
	s.publish(t, archivetest.Event(repo, run))
	testserver.Eventually(t, 30*time.Second, "a dead letter", func() bool { return len(s.dlq(t)) == 1 })
	dl := s.dlq(t)[0]
	if dl.Header.Get(events.HeaderErrorKind) != "max_deliveries" || dl.Header.Get(events.HeaderDeliveries) != "2" {
		t.Errorf("dead letter headers %v", dl.Header)
	}
	m := s.Manifest(t, repo.Owner, repo.Name, run.ID, 1)
	status := map[int64]string{}
	for _, a := range m.Artifacts {
		status[a.ID] = a.Status
	}
	if status[good.ID] != archive.StatusArchived || status[bad.ID] != archive.StatusFailed {
		t.Errorf("statuses %v", status)
	}
	testserver.Eventually(t, 10*time.Second, "the run stream to drain", func() bool { return s.streamMsgs(t, s.topo.Stream) == 0 })
}

// TestShutdownHandsRunBack: a worker stopped with a short grace period in
// the middle of a slow transfer hands the run back; another worker
// archives it and no multipart upload is left open.
func TestShutdownHandsRunBack(t *testing.T) {
	s := setup(t, events.Topology{}, nil)
	repo := s.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := s.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	big := s.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "big", Size: 12 * archivetest.MiB})
	s.Sim.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(1*archivetest.MiB).ForArtifact(big.ID))
	first := s.startWorker(t, nil, nil)
	s.publish(t, archivetest.Event(repo, run))
	testserver.Eventually(t, 30*time.Second, "the transfer to start", func() bool {
		return s.Sim.Stats().BlobBytesByArtifact[big.ID] > archivetest.PartSize
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Stat(t.Context(), archive.Layout{Owner: repo.Owner, Repo: repo.Name, RunID: run.ID}.ManifestKey(1)); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("manifest after an interrupted run: %v", err)
	}
	if n := s.streamMsgs(t, s.topo.Stream); n != 1 {
		t.Fatalf("run stream holds %d messages after hand-back, want 1", n)
	}
	s.startWorker(t, nil, nil)
	testserver.Eventually(t, 60*time.Second, "the run stream to drain", func() bool { return s.streamMsgs(t, s.topo.Stream) == 0 })
	s.CheckArchived(t, s.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{big.ID}, nil)
	if ups := s.OpenUploads(t); len(ups) != 0 {
		t.Errorf("open multipart uploads: %v", ups)
	}
}

// TestHeartbeatKeepsLongRun: a run longer than AckWait is not redelivered,
// because the worker sends InProgress every AckWait/4.
func TestHeartbeatKeepsLongRun(t *testing.T) {
	s := setup(t, events.Topology{AckWait: 10 * time.Second}, nil)
	repo := s.Sim.AddRepo(archivetest.Installation, "o", "r")
	run := s.Sim.AddRun(repo.Owner, repo.Name, ghsim.RunSpec{})
	slow := s.Sim.AddArtifact(repo.Owner, repo.Name, run.ID, ghsim.ArtifactSpec{Name: "slow", Size: 14 * 256 << 10})
	// 3.5 MiB at 256 KiB/s: about 14 s, longer than AckWait.
	s.Sim.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(256<<10).ForArtifact(slow.ID))
	counting := &countingArchiver{Archiver: s.Arch}
	s.startWorker(t, counting, nil)
	s.publish(t, archivetest.Event(repo, run))
	testserver.Eventually(t, 60*time.Second, "the run stream to drain", func() bool { return s.streamMsgs(t, s.topo.Stream) == 0 })
	if n := counting.calls.Load(); n != 1 {
		t.Errorf("the run was processed %d times, want 1 (redelivered while in progress)", n)
	}
	s.CheckArchived(t, s.Manifest(t, repo.Owner, repo.Name, run.ID, 1), []int64{slow.ID}, nil)
}

func counter(t *testing.T, reg *prometheus.Registry, name, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					g.Set(m.GetCounter().GetValue())
				}
			}
		}
	}
	return g
}
