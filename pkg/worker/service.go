package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/attest"
	"github.com/artifact-archiver/artifact-archiver/pkg/destination"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// opsStopTimeout bounds the shutdown of the ops endpoints, after the
// worker has stopped.
const opsStopTimeout = 5 * time.Second

// Main runs the worker binary until ctx is cancelled (SIGTERM), then shuts
// down gracefully: stop pulling, let in-flight runs finish within
// ARCHIVER_SHUTDOWN_GRACE, hand the rest back, exit. "-h" writes the usage,
// listing every environment variable, to stdout. Logs go to stdout.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Main(ctx, service.Program[ServiceConfig]{
		Name: "worker",
		Doc:  "Archives the artifacts of completed GitHub Actions runs from NATS JetStream into S3.",
		Env:  Env(),
		Load: func(getenv func(string) string) (ServiceConfig, error) {
			c, err := ServiceConfigFromEnv(getenv)
			if err != nil {
				return ServiceConfig{}, fmt.Errorf("worker: config: %w", err)
			}
			return c, nil
		},
		Log:   func(c ServiceConfig) (slog.Level, string) { return c.LogLevel, c.LogFormat },
		Grace: func(c ServiceConfig) time.Duration { return c.ShutdownGrace },
		New: func(c ServiceConfig, log *slog.Logger) (service.Service, error) {
			return NewService(c, log.With("component", "worker")), nil
		},
		LogToStdout: true,
	}, args, getenv, stdout, stderr)
}

// Serve runs the worker service of cfg until ctx ends, then stops it
// within cfg.ShutdownGrace.
func Serve(ctx context.Context, cfg ServiceConfig, log *slog.Logger) error {
	return service.Run(ctx, NewService(cfg, log), cfg.ShutdownGrace, log)
}

// Service is the worker binary's parts: the destination, the GitHub
// clients, the archiver, the NATS connection, the ops endpoints and the
// [Worker].
type Service struct {
	cfg ServiceConfig
	log *slog.Logger
	reg *prometheus.Registry

	nc  *nats.Conn
	ops *service.HTTPServer
	w   *Worker

	stopOnce sync.Once
	stopErr  error
}

// NewService returns the service of cfg, which must be valid.
func NewService(cfg ServiceConfig, log *slog.Logger) *Service {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Service{cfg: cfg, log: log, reg: reg}
}

// Start builds the parts, serves the ops endpoints, provisions the streams
// and the consumer (retrying until NATS answers or ctx ends: /readyz
// answers 503 meanwhile) and starts pulling. A Start that fails releases
// what it opened.
func (s *Service) Start(ctx context.Context) (err error) {
	cfg := s.cfg
	store, err := destination.Open(ctx, cfg.Destination, destination.Options{ForcePathStyle: cfg.ForcePathStyle, S3: cfg.S3, Logger: s.log})
	if err != nil {
		return fmt.Errorf("worker: destination: %w", err)
	}
	// Attestation bundles come from their own pre-signed blob host, not
	// the artifacts' one, so ARCHIVER_DOWNLOAD_HOSTS does not apply; the
	// downloader never sends the GitHub token.
	gh, err := ghclient.New(ghclient.Config{
		APIURL: cfg.GitHubAPIURL, Token: cfg.GitHubToken, AppID: cfg.AppID, PrivateKey: cfg.AppPrivateKey,
		Logger: s.log, Metrics: ghclient.NewMetrics(s.reg),
		Bundles: ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: cfg.AllowHTTP, StallTimeout: cfg.StallTimeout}),
	})
	if err != nil {
		return err
	}
	var roots archive.TrustedRootSource
	if cfg.Attestations {
		src, err := attest.NewSources(cfg.TrustedRootSources, nil)
		if err != nil {
			return fmt.Errorf("worker: trusted roots: %w", err)
		}
		roots = src
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
		Attestations:     cfg.Attestations,
		TrustedRoots:     roots,
		Logger:           s.log,
		Metrics:          archive.NewMetrics(s.reg),
	})
	if err != nil {
		return err
	}

	if s.nc, err = events.Connect(cfg.NATS, "artifact-archiver-worker", s.log); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("worker: jetstream: %w", err)
	}
	s.ops, err = service.ServeOps(cfg.MetricsAddr, service.Ops{Registry: s.reg, Ready: func(ctx context.Context) error {
		if !s.nc.IsConnected() {
			return errors.New("nats not connected")
		}
		_, err := js.Consumer(ctx, cfg.Topology.Stream, cfg.Topology.Consumer)
		return err
	}}, s.log)
	if err != nil {
		return fmt.Errorf("worker: metrics listener: %w", err)
	}
	if _, err := service.Retry(ctx, s.log, "provisioning jetstream", func(ctx context.Context) error {
		return events.Provision(ctx, js, cfg.Topology)
	}); err != nil {
		return fmt.Errorf("worker: provision: %w", err)
	}
	if s.w, err = New(js, arch, Config{Topology: cfg.Topology, Slots: cfg.RunSlots, Heartbeat: cfg.Heartbeat, Catalog: store, Logger: s.log, Registerer: s.reg}); err != nil {
		return err
	}
	if err := s.w.Start(ctx); err != nil {
		return err
	}
	s.log.Info("worker running", "destination", store.Location(""), "concurrency", cfg.Concurrency,
		"run_slots", cfg.RunSlots, "delete_from_github", cfg.Delete, "delete_dry_run", cfg.DeleteDryRun, "attestations", cfg.Attestations, "metrics_addr", s.ops.Addr())
	return nil
}

// Stop stops pulling, lets in-flight runs finish until ctx ends (the grace
// period), hands the rest back, drains NATS and stops the ops endpoints.
// It is idempotent.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		if s.w != nil {
			s.stopErr = s.w.Stop(ctx)
		}
		if s.nc != nil {
			if err := s.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				s.log.Warn("nats drain", "err", err)
			}
		}
		s.log.Info("worker stopped")
		s.close()
	})
	return s.stopErr
}

// close stops the ops endpoints and closes the NATS connection.
func (s *Service) close() {
	if s.ops != nil {
		ctx, cancel := context.WithTimeout(context.Background(), opsStopTimeout)
		defer cancel()
		_ = s.ops.Stop(ctx)
	}
	if s.nc != nil {
		s.nc.Close()
	}
}
