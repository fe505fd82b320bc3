package events

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// jetStream starts an embedded JetStream server on a random local port and
// returns it with a client connected through Connect; both are stopped in
// t.Cleanup.
func jetStream(t *testing.T) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	nc, err := Connect(ConnConfig{URL: ns.ClientURL()}, "events-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return ns, nc, js
}

func testEvent(runID int64, attempt int) *runevent.RunCompleted {
	return &runevent.RunCompleted{
		SchemaVersion: runevent.SchemaVersion, Source: runevent.SourceWebhook, DeliveryID: "d-" + runevent.MsgID(runID, attempt),
		ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), InstallationID: 42,
		Repository:  runevent.Repository{ID: 1296269, Owner: "octo.org", Name: "hello.world", FullName: "octo.org/hello.world"},
		WorkflowRun: runevent.WorkflowRun{ID: runID, RunAttempt: attempt, Name: "ci", Conclusion: "success"},
	}
}
