package archivectl_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

// fakeArchiver fails every run permanently until told to succeed.
type fakeArchiver struct {
	mu      sync.Mutex
	succeed bool
	seen    []*runevent.RunCompleted
}

func (f *fakeArchiver) ArchiveRun(_ context.Context, ev *runevent.RunCompleted, _ bool) (archive.RunResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, ev)
	if f.succeed {
		return archive.RunResult{Manifest: &archive.Manifest{}}, nil
	}
	return archive.RunResult{}, archive.Permanent(errors.New("repository gone"))
}

func (f *fakeArchiver) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

func startWorker(t *testing.T, js jetstream.JetStream, topo events.Topology, arch worker.Archiver) func() {
	t.Helper()
	w, err := worker.New(js, arch, worker.Config{Topology: topo, Slots: 1, FetchWait: 500 * time.Millisecond, Logger: archivetest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Stop(ctx)
	}
	t.Cleanup(stop)
	return stop
}

// dlqRecord mirrors dlq ls --json.
type dlqRecord struct {
	Sequence         uint64                 `json:"sequence"`
	Kind             string                 `json:"kind"`
	Error            string                 `json:"error"`
	Deliveries       int                    `json:"deliveries"`
	OriginalSubject  string                 `json:"original_subject"`
	OriginalSequence uint64                 `json:"original_sequence"`
	Event            *runevent.RunCompleted `json:"event"`
	DecodeError      string                 `json:"decode_error"`
	Headers          map[string][]string    `json:"headers"`
}

// TestDLQ dead-letters events through a real worker, then lists, shows,
// replays and purges them.
func TestDLQ(t *testing.T) {
	t.Parallel()
	srv, js, topo := jetStream(t, true)
	ev := env{"NATS_URL": srv.URL}
	fake := &fakeArchiver{}
	stop := startWorker(t, js, topo, fake)

	good := &runevent.RunCompleted{
		SchemaVersion: runevent.SchemaVersion, Source: runevent.SourceWebhook, DeliveryID: "d-1", ReceivedAt: time.Now().UTC(),
		InstallationID: 77, Repository: runevent.Repository{ID: 100000001, Owner: "octo-org", Name: "app", FullName: "octo-org/app"},
		WorkflowRun: runevent.WorkflowRun{ID: 555, RunAttempt: 2, Name: "CI", Conclusion: "success"},
	}
	if _, err := events.NewPublisher(js, topo, 0).Publish(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	garbage := nats.NewMsg("archiver.runs.77.100000001")
	garbage.Data = []byte("not json")
	if _, err := js.PublishMsg(t.Context(), garbage, jetstream.WithMsgID("garbage")); err != nil {
		t.Fatal(err)
	}
	testserver.Eventually(t, 20*time.Second, "two dead letters", func() bool { return len(streamMsgs(t, js, topo.DeadLetter)) == 2 })
	stop()
	// A pull request of the stopped worker can outlive it on the server
	// until it expires; a replayed event delivered to it would wait out
	// AckWait. Replay once no pull is pending.
	cons, err := js.Consumer(t.Context(), topo.Stream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	testserver.Eventually(t, 10*time.Second, "the stopped worker's pull requests to expire", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumWaiting == 0
	})

	r := run(t, ev, "dlq", "ls").want(t, 0)
	mustContain(t, "dlq ls", r.stdout, "SEQ", "KIND", "permanent", "octo-org/app", "555", "repository gone", "(undecodable)", "bad event")
	recs := decode[[]dlqRecord](t, run(t, ev, "dlq", "ls", "--json").want(t, 0).stdout)
	if len(recs) != 2 {
		t.Fatalf("dlq ls --json: %d records, want 2", len(recs))
	}
	var goodSeq, badSeq uint64
	for _, rec := range recs {
		if rec.Event != nil {
			goodSeq = rec.Sequence
			if rec.Event.WorkflowRun.ID != 555 || rec.Kind != "permanent" || rec.OriginalSubject != "archiver.runs.77.100000001" || rec.Deliveries != 1 {
				t.Fatalf("event record %+v", rec)
			}
		} else {
			badSeq = rec.Sequence
			if rec.DecodeError == "" {
				t.Fatalf("undecodable record %+v has no decode error", rec)
			}
		}
	}
	if goodSeq == 0 || badSeq == 0 {
		t.Fatalf("records %+v: want one event and one undecodable", recs)
	}
	good2 := strconv.FormatUint(goodSeq, 10)

	show := decode[dlqRecord](t, run(t, ev, "dlq", "show", good2, "--json").want(t, 0).stdout)
	if show.Headers[events.HeaderError] == nil || show.Headers[events.HeaderDelivery][0] != "d-1" {
		t.Fatalf("dlq show --json headers %v", show.Headers)
	}
	r = run(t, ev, "dlq", "show", good2).want(t, 0)
	mustContain(t, "dlq show", r.stdout, "Archiver-Error: permanent: repository gone", "wr:555:2", `"run_attempt": 2`)
	run(t, ev, "dlq", "show", "999").want(t, archivectl.ExitFailure)
	run(t, ev, "dlq", "show").want(t, archivectl.ExitUsage)
	run(t, ev, "dlq", "replay").want(t, archivectl.ExitUsage)
	run(t, ev, "dlq", "frobnicate").want(t, archivectl.ExitUsage)

	// The undecodable event cannot be replayed; nothing changes.
	r = run(t, ev, "dlq", "replay", strconv.FormatUint(badSeq, 10)).want(t, archivectl.ExitFailure)
	mustContain(t, "replay undecodable", r.stdout, "undecodable")
	// A dry run changes nothing either.
	run(t, ev, "dlq", "replay", "--all", "--dry-run").want(t, archivectl.ExitFailure)
	if n := len(streamMsgs(t, js, topo.DeadLetter)); n != 2 {
		t.Fatalf("%d dead letters after a dry run, want 2", n)
	}
	if n := len(streamMsgs(t, js, topo.Stream)); n != 0 {
		t.Fatalf("%d run events after a dry run, want 0", n)
	}

	// Replay the event: it is back in the run stream under a fresh id,
	// and its dead letter is gone.
	r = run(t, ev, "dlq", "replay", good2).want(t, 0)
	wantID := "wr:555:2:replay:" + good2
	mustContain(t, "replay", r.stdout, "replayed", wantID)
	msgs := streamMsgs(t, js, topo.Stream)
	if len(msgs) != 1 || msgs[0].Subject != "archiver.runs.77.100000001" || msgs[0].Header.Get(jetstream.MsgIDHeader) != wantID ||
		msgs[0].Header.Get(events.HeaderDelivery) != "d-1" || msgs[0].Header.Get(events.HeaderError) != "" {
		t.Fatalf("run stream after replay: %+v", msgs)
	}
	replayed, err := runevent.DecodeRunCompleted(msgs[0].Data)
	if err != nil || !reflect.DeepEqual(replayed, good) {
		t.Fatalf("replayed event %+v (%v), want %+v", replayed, err, good)
	}
	if dl := streamMsgs(t, js, topo.DeadLetter); len(dl) != 1 || dl[0].Sequence != badSeq {
		t.Fatalf("dead letters after replay: %d, want only the undecodable one", len(dl))
	}
	run(t, ev, "dlq", "replay", good2).want(t, archivectl.ExitFailure) // gone

	// A worker that now succeeds archives the replayed event.
	fake.mu.Lock()
	fake.succeed = true
	fake.mu.Unlock()
	before := fake.calls()
	startWorker(t, js, topo, fake)
	testserver.Eventually(t, 20*time.Second, "the replayed event to be archived and acked", func() bool {
		return fake.calls() > before && len(streamMsgs(t, js, topo.Stream)) == 0
	})

	// Purge asks first; anything but yes aborts.
	r = runStdin(t, ev, "n\n", "dlq", "purge").want(t, archivectl.ExitFailure)
	mustContain(t, "purge prompt", r.stderr, "Delete all 1 dead letter from", "aborted")
	run(t, ev, "dlq", "purge").want(t, archivectl.ExitFailure) // closed stdin
	if n := len(streamMsgs(t, js, topo.DeadLetter)); n != 1 {
		t.Fatalf("%d dead letters after aborted purges, want 1", n)
	}
	runStdin(t, ev, "yes\n", "dlq", "purge").want(t, 0)
	if n := len(streamMsgs(t, js, topo.DeadLetter)); n != 0 {
		t.Fatalf("%d dead letters after purge, want 0", n)
	}
	r = run(t, ev, "dlq", "ls").want(t, 0)
	mustContain(t, "empty dlq ls", r.stdout, "no dead letters")
	run(t, ev, "dlq", "purge", "--yes").want(t, 0)
}

// TestDLQReplaysMaxDeliveriesAdvisory: a consumer that gave up on a
// message leaves it in the work-queue stream and a MAX_DELIVERIES advisory
// in the DLQ; replaying the advisory republishes the stuck message and
// removes it.
func TestDLQReplaysMaxDeliveriesAdvisory(t *testing.T) {
	t.Parallel()
	srv, js, topo := jetStream(t, false)
	ev := env{"NATS_URL": srv.URL}
	cons, err := js.CreateOrUpdateConsumer(t.Context(), topo.Stream, jetstream.ConsumerConfig{
		Durable: "stuck", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2, FilterSubject: topo.Subjects.Runs(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &runevent.RunCompleted{
		SchemaVersion: runevent.SchemaVersion, ReceivedAt: time.Now().UTC(), InstallationID: 9,
		Repository:  runevent.Repository{ID: 42, Owner: "o", Name: "r", FullName: "o/r"},
		WorkflowRun: runevent.WorkflowRun{ID: 777, RunAttempt: 1},
	}
	ack, err := events.NewPublisher(js, topo, 0).Publish(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_ = msg.Nak()
	}
	// The server gives up (and emits the advisory) when it would deliver
	// the message a third time.
	if msg, err := cons.Next(jetstream.FetchMaxWait(time.Second)); err == nil {
		t.Fatalf("delivered a third time: %s", msg.Data())
	}
	testserver.Eventually(t, 20*time.Second, "the max-deliveries advisory", func() bool { return len(streamMsgs(t, js, topo.DeadLetter)) == 1 })

	recs := decode[[]dlqRecord](t, run(t, ev, "dlq", "ls", "--json").want(t, 0).stdout)
	if len(recs) != 1 || recs[0].Kind != "max_deliveries_advisory" || recs[0].OriginalSequence != ack.Sequence || recs[0].Deliveries != 2 {
		t.Fatalf("advisory record %+v, want stream sequence %d", recs, ack.Sequence)
	}
	seq := strconv.FormatUint(recs[0].Sequence, 10)
	r := run(t, ev, "dlq", "replay", "--all").want(t, 0)
	mustContain(t, "replay advisory", r.stdout, "wr:777:1:replay:"+seq)
	msgs := streamMsgs(t, js, topo.Stream)
	if len(msgs) != 1 || msgs[0].Sequence == ack.Sequence || msgs[0].Header.Get(jetstream.MsgIDHeader) != "wr:777:1:replay:"+seq {
		t.Fatalf("run stream after replaying the advisory: %+v, want only the republished event", msgs)
	}
	var got runevent.RunCompleted
	if err := json.Unmarshal(msgs[0].Data, &got); err != nil || got.WorkflowRun.ID != 777 {
		t.Fatalf("republished body %s", msgs[0].Data)
	}
	if n := len(streamMsgs(t, js, topo.DeadLetter)); n != 0 {
		t.Fatalf("%d dead letters after replay, want 0", n)
	}
}
