package events

import (
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

func TestConnConfigFromEnv(t *testing.T) {
	t.Parallel()
	if got := ConnConfigFromEnv(func(string) string { return "" }); got != (ConnConfig{URL: DefaultNATSURL}) {
		t.Fatalf("defaults: %+v", got)
	}
	env := map[string]string{
		"NATS_URL": "nats://a:4222,nats://b:4222", "NATS_CREDS": "/c", "NATS_NKEY": "/n",
		"NATS_USER": "u", "NATS_PASSWORD": "p", "NATS_TOKEN": "t",
		"NATS_CA": "/ca", "NATS_CERT": "/cert", "NATS_KEY": "/key",
	}
	got := ConnConfigFromEnv(func(k string) string { return env[k] })
	want := ConnConfig{URL: "nats://a:4222,nats://b:4222", Creds: "/c", NKey: "/n", User: "u", Password: "p", Token: "t", CA: "/ca", Cert: "/cert", Key: "/key"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// Every variable read is a row of ConnEnv.
	var e service.Env
	ConnEnv(&e, new(ConnConfig))
	for k := range env {
		if !slices.Contains(e.Names(), k) {
			t.Errorf("ConnEnv does not document %s", k)
		}
	}
}

func TestConnectUnreadableNKey(t *testing.T) {
	t.Parallel()
	_, err := Connect(ConnConfig{URL: DefaultNATSURL, NKey: filepath.Join(t.TempDir(), "missing.nk")}, "test", slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "nkey") {
		t.Fatalf("Connect with a missing nkey file: %v", err)
	}
}

func TestConnectRetriesUntilServerUp(t *testing.T) {
	t.Parallel()
	// Nothing listens on the port: Connect still returns a connection that
	// keeps retrying (RetryOnFailedConnect), not an error.
	nc, err := Connect(ConnConfig{URL: "nats://127.0.0.1:1"}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Connect without a server: %v", err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected to nothing")
	}
}
