package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/destination"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

// Main runs the worker binary until ctx is cancelled (SIGTERM), then shuts
// down gracefully: stop pulling, let in-flight runs finish within
// ARCHIVER_SHUTDOWN_GRACE, hand the rest back, exit.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stdout) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := ServiceConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("worker: config: %w", err)
	}
	log := NewLogger(stdout, cfg.LogLevel, cfg.LogFormat).With("component", "worker")
	return Serve(ctx, cfg, log)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: worker [-h]\n\nArchives the artifacts of completed GitHub Actions runs from NATS JetStream into S3.\nConfiguration is read from the environment:\n\n")
	for _, group := range [][][2]string{Env, events.ConnEnv, events.TopologyEnv} {
		for _, e := range group {
			fmt.Fprintf(w, "  %s\n      %s\n", e[0], e[1])
		}
	}
}

// NewLogger returns the JSON (or text) slog logger at level.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if strings.EqualFold(format, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Serve builds the worker's parts from cfg and runs them until ctx ends.
func Serve(ctx context.Context, cfg ServiceConfig, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := destination.Open(ctx, cfg.Destination, destination.Options{ForcePathStyle: cfg.ForcePathStyle, Logger: log})
	if err != nil {
		return fmt.Errorf("worker: destination: %w", err)
	}
	gh, err := ghclient.New(ghclient.Config{
		APIURL: cfg.GitHubAPIURL, Token: cfg.GitHubToken, AppID: cfg.AppID, PrivateKey: cfg.AppPrivateKey,
		Logger: log, Metrics: ghclient.NewMetrics(reg),
	})
	if err != nil {
		return err
	}
	arch, err := archive.New(archive.Config{
		Store:            store,
		GitHub:           gh,
		Downloader:       ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: cfg.AllowHTTP, AllowedHosts: cfg.DownloadHosts, StallTimeout: cfg.StallTimeout}),
		LeaseTTL:         cfg.LeaseTTL,
		Concurrency:      cfg.Concurrency,
		PartSize:         cfg.PartSize,
		EmptyListWait:    cfg.EmptyListWait,
		DeleteFromGitHub: cfg.Delete,
		DeleteDryRun:     cfg.DeleteDryRun,
		Logger:           log,
		Metrics:          archive.NewMetrics(reg),
	})
	if err != nil {
		return err
	}

	nc, err := events.Connect(cfg.NATS, "artifact-archiver-worker", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("worker: jetstream: %w", err)
	}

	ops := newOpsServer(cfg.MetricsAddr, reg, func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats not connected")
		}
		_, err := js.Consumer(ctx, cfg.Topology.Stream, cfg.Topology.Consumer)
		return err
	})
	if err := ops.start(); err != nil {
		return err
	}
	defer ops.stop()

	if err := provision(ctx, js, cfg.Topology, log); err != nil {
		return err
	}
	w, err := New(js, arch, Config{Topology: cfg.Topology, Slots: cfg.RunSlots, Heartbeat: cfg.Heartbeat, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	log.Info("worker running", "destination", store.Location(""), "concurrency", cfg.Concurrency,
		"run_slots", cfg.RunSlots, "delete_from_github", cfg.Delete, "delete_dry_run", cfg.DeleteDryRun, "metrics_addr", ops.addr())
	<-ctx.Done()
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	err = w.Stop(graceCtx)
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		log.Warn("nats drain", "err", derr)
	}
	log.Info("worker stopped")
	return err
}

// provision creates the streams and consumer, retrying until NATS answers
// or ctx ends.
func provision(ctx context.Context, js jetstream.JetStream, topo events.Topology, log *slog.Logger) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := events.Provision(pctx, js, topo)
		cancel()
		if err == nil {
			return nil
		}
		log.Warn("provisioning jetstream failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("worker: provision: %w", err)
		case <-time.After(2 * time.Second):
		}
	}
}

// opsServer serves /metrics, /healthz and /readyz on its own mux.
type opsServer struct {
	srv *http.Server
	ln  net.Listener
}

func newOpsServer(addr string, reg *prometheus.Registry, ready func(context.Context) error) *opsServer {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return &opsServer{srv: &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
}

func (o *opsServer) start() error {
	ln, err := net.Listen("tcp", o.srv.Addr)
	if err != nil {
		return fmt.Errorf("worker: metrics listener %s: %w", o.srv.Addr, err)
	}
	o.ln = ln
	go func() { _ = o.srv.Serve(ln) }()
	return nil
}

func (o *opsServer) addr() string { return o.ln.Addr().String() }

func (o *opsServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = o.srv.Shutdown(ctx)
}
