package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
)

// startNATS returns the JetStream URL to use, the pid of a nats-server
// process it started (0 otherwise) and a stop function.
func startNATS(o options, tmp string) (string, int, func(), error) {
	store := filepath.Join(tmp, "jetstream")
	switch {
	case o.natsURL != "":
		return o.natsURL, 0, func() {}, nil
	case o.natsBin != "":
		p, url, err := benchkit.StartNATSServer(o.natsBin, store, filepath.Join(tmp, "nats-server.log"))
		if err != nil {
			return "", 0, nil, err
		}
		return url, p.Pid(), func() { p.Stop(syscall.SIGTERM, 10*time.Second) }, nil
	default:
		ns, err := benchkit.StartEmbeddedNATS(store)
		if err != nil {
			return "", 0, nil, err
		}
		return ns.ClientURL(), 0, func() { ns.Shutdown(); ns.WaitForShutdown() }, nil
	}
}

// connectJetStream connects to natsURL and provisions the archiver's
// streams, retrying for up to 30 s while NATS starts.
func connectJetStream(ctx context.Context, natsURL string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, events.Topology, error) {
	topo := events.Topology{}.WithDefaults()
	nc, err := events.Connect(events.ConnConfig{URL: natsURL}, "loadgen", log)
	if err != nil {
		return nil, nil, topo, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, topo, err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = provisionWhenUp(pctx, js, topo)
	cancel()
	if err != nil {
		nc.Close()
		return nil, nil, topo, err
	}
	return nc, js, topo, nil
}

// provisionWhenUp provisions the streams, retrying while NATS starts.
func provisionWhenUp(ctx context.Context, js jetstream.JetStream, topo events.Topology) error {
	for {
		err := events.ProvisionStreams(ctx, js, topo)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("provision streams: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// purge empties the run stream between phases (best effort).
func purge(ctx context.Context, js jetstream.JetStream, topo events.Topology) {
	if s, err := js.Stream(ctx, topo.Stream); err == nil {
		s.Purge(ctx)
	}
}

// streamMsgs returns how many messages the run stream holds.
func streamMsgs(ctx context.Context, js jetstream.JetStream, topo events.Topology) (uint64, error) {
	s, err := js.Stream(ctx, topo.Stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// startWebhook runs the webhook in this process on a real TCP listener of
// 127.0.0.1, against natsURL, and waits until it is ready.
func startWebhook(ctx context.Context, o options, natsURL string) (*webhook.Server, error) {
	env := map[string]string{
		"ARCHIVER_LISTEN_ADDR":  "127.0.0.1:0",
		"NATS_URL":              natsURL,
		"GITHUB_WEBHOOK_SECRET": o.secret,
		"ARCHIVER_LOG_LEVEL":    o.logLevel,
	}
	cfg, err := webhook.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	secrets, err := cfg.LoadSecrets(os.ReadFile)
	if err != nil {
		return nil, err
	}
	// Production logging cost (JSON formatting at the configured level),
	// without the terminal.
	srv, err := webhook.NewServer(cfg, secrets, cfg.NewLogger(io.Discard), prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			err := srv.Ready(ctx)
			srv.Stop(ctx)
			return nil, fmt.Errorf("in-process webhook not ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return srv, nil
}
