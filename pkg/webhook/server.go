package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// Limits of the HTTP server. The header and body timeouts are settings
// (see [Config]); readiness and provisioning retries are service's.
const (
	// maxHeaderBytes bounds a request's headers: GitHub sends about 1 KB,
	// and net/http's default of 1 MiB per slow connection is what a header
	// flood would hold.
	maxHeaderBytes = 64 << 10
	// writeMargin is the time to write a response after the body timeout
	// and the publish timeout.
	writeMargin = 5 * time.Second
	idleTimeout = 120 * time.Second
)

// Server is the webhook service: the HTTP endpoints, the NATS connection
// and the stream provisioning. Start does not block; Stop drains.
type Server struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	secrets Secrets

	nc      *nats.Conn
	js      jetstream.JetStream
	handler *Handler
	hooks   *service.HTTPServer
	ops     *service.HTTPServer // nil: the ops endpoints are on hooks

	provisioned atomic.Bool
	stopping    atomic.Bool
	cancel      context.CancelFunc // stops provisioning
	wg          sync.WaitGroup     // the provisioning goroutine
	stopOnce    sync.Once
	stopErr     error
}

// NewServer returns a server for cfg, which must be valid; Start registers
// its metrics on reg and serves reg on /metrics. The memory and timeout
// limits default when zero (DefaultBodyBytesInFlight,
// DefaultReadHeaderTimeout, DefaultBodyTimeout).
func NewServer(cfg Config, secrets Secrets, log *slog.Logger, reg *prometheus.Registry) (*Server, error) {
	cfg.BodyBytesInFlight = cmp.Or(cfg.BodyBytesInFlight, DefaultBodyBytesInFlight)
	cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	cfg.BodyTimeout = cmp.Or(cfg.BodyTimeout, DefaultBodyTimeout)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if secrets.Len() == 0 {
		return nil, errors.New("webhook: no webhook secret")
	}
	cfg.Topology = cfg.Topology.WithDefaults()
	return &Server{cfg: cfg, log: log, reg: reg, secrets: secrets}, nil
}

// Start connects to NATS (in the background if it is not reachable yet),
// starts provisioning the streams, and starts serving. It returns once the
// listeners are bound. /readyz answers 503 until the streams are
// provisioned and NATS is connected.
func (s *Server) Start(ctx context.Context) error {
	m, err := NewMetrics(s.reg)
	if err != nil {
		return err
	}
	s.nc, err = events.Connect(s.cfg.NATS, "artifact-archiver-webhook", s.log)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.nc.Close()
		return fmt.Errorf("webhook: jetstream: %w", err)
	}
	s.handler = NewHandler(events.NewPublisher(s.js, s.cfg.Topology, s.cfg.PublishTimeout), HandlerOptions{
		Secrets:           s.secrets,
		Filter:            s.cfg.Filter,
		MaxBodyBytes:      s.cfg.MaxBodyBytes,
		BodyBytesInFlight: s.cfg.BodyBytesInFlight,
		BodyTimeout:       s.cfg.BodyTimeout,
		PublishTimeout:    s.cfg.PublishTimeout,
		Metrics:           m,
		Logger:            s.log,
	})

	hooks := http.NewServeMux()
	hooks.Handle("/webhook", s.handler) // the handler answers 405 to other methods, counted
	ops := service.Ops{Registry: s.reg, Ready: s.Ready}
	if s.cfg.MetricsAddr == "" {
		ops.Register(hooks)
	}
	s.hooks, err = service.Serve(s.cfg.ListenAddr, &http.Server{
		Handler:           hooks,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		// The handler sets the deadline of a delivery's body itself;
		// ReadTimeout bounds the bodies of other paths the same way.
		ReadTimeout:    s.cfg.ReadHeaderTimeout + s.cfg.BodyTimeout,
		WriteTimeout:   s.cfg.BodyTimeout + s.cfg.PublishTimeout + writeMargin,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
	}, s.log)
	if err != nil {
		s.nc.Close()
		return fmt.Errorf("webhook: %w", err)
	}
	if s.cfg.MetricsAddr != "" {
		if s.ops, err = service.ServeOps(s.cfg.MetricsAddr, ops, s.log); err != nil {
			cut, cancel := context.WithCancel(ctx)
			cancel()
			_ = s.hooks.Stop(cut)
			s.nc.Close()
			return fmt.Errorf("webhook: %w", err)
		}
	}

	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Go(func() { s.provision(pctx) })
	s.log.Info("webhook listening", "addr", s.Addr(), "metrics_addr", s.OpsAddr(),
		"nats_url", s.cfg.NATS.URL, "stream", s.cfg.Topology.Stream, "filter", s.cfg.Filter.String(),
		"secrets", s.secrets.Len(), "publish_timeout", s.cfg.PublishTimeout.String(),
		"body_timeout", s.cfg.BodyTimeout.String(), "body_bytes_in_flight_limit", s.cfg.BodyBytesInFlight)
	return nil
}

// Addr is the bound address of POST /webhook (useful with port 0).
func (s *Server) Addr() string { return s.hooks.Addr() }

// OpsAddr is the bound address of /healthz, /readyz and /metrics.
func (s *Server) OpsAddr() string {
	if s.ops != nil {
		return s.ops.Addr()
	}
	return s.hooks.Addr()
}

// provision creates or updates the streams, retrying with backoff until it
// succeeds or ctx ends.
func (s *Server) provision(ctx context.Context) {
	n, err := service.Retry(ctx, s.log, "provisioning streams", func(ctx context.Context) error {
		return events.ProvisionStreams(ctx, s.js, s.cfg.Topology)
	})
	if err != nil {
		return // stopped
	}
	// Logged before readiness flips, so that a log says so whenever
	// /readyz has said 200.
	s.log.Info("streams provisioned", "stream", s.cfg.Topology.Stream, "dead_letter", s.cfg.Topology.DeadLetter, "attempts", n)
	s.provisioned.Store(true)
}

// Ready reports why the server cannot take deliveries, or nil: the streams
// must be provisioned, NATS connected and the run stream present.
func (s *Server) Ready(ctx context.Context) error {
	switch {
	case s.stopping.Load():
		return errors.New("shutting down")
	case !s.provisioned.Load():
		return errors.New("streams not provisioned yet")
	case !s.nc.IsConnected():
		return fmt.Errorf("nats %s", s.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, service.ReadyTimeout)
	defer cancel()
	if _, err := s.js.Stream(ctx, s.cfg.Topology.Stream); err != nil {
		return fmt.Errorf("stream %s: %w", s.cfg.Topology.Stream, err)
	}
	return nil
}

// Stop stops accepting deliveries, waits for the ones in flight (their
// publishes finish or time out), then closes the NATS connection. If ctx
// ends first, open connections are closed. It is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		if s.cancel != nil {
			s.cancel()
		}
		// The webhook listener first; the ops listener (if separate) keeps
		// answering /readyz with 503 meanwhile.
		var errs []error
		for _, srv := range []*service.HTTPServer{s.hooks, s.ops} {
			if srv == nil {
				continue
			}
			if err := srv.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("webhook: %w", err))
			}
		}
		s.wg.Wait()
		if s.nc != nil {
			s.nc.Close()
		}
		s.stopErr = errors.Join(errs...)
		s.log.Info("webhook stopped", "err", s.stopErr)
	})
	return s.stopErr
}

// Main is the webhook binary: it reads the configuration from getenv,
// serves until ctx is cancelled (SIGTERM), then drains within
// ARCHIVER_SHUTDOWN_TIMEOUT and returns. "-h" writes the usage, listing
// every environment variable, to stdout. Logs go to stderr.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Main(ctx, program(), args, getenv, stdout, stderr)
}

// program is the webhook binary for service.Main.
func program() service.Program[Config] {
	return service.Program[Config]{
		Name: "webhook",
		Doc: `Receives GitHub workflow_run deliveries on POST /webhook and stores each
completed run as an event in NATS JetStream, answering 202 only once it is
stored. Also serves GET /healthz, /readyz and /metrics.`,
		Env: Env(),
		Load: func(getenv func(string) string) (Config, error) {
			c, err := ConfigFromEnv(getenv)
			if err != nil {
				return Config{}, err
			}
			return c, c.Validate()
		},
		Log:   func(c Config) (slog.Level, string) { return c.LogLevel, c.LogFormat },
		Grace: func(c Config) time.Duration { return c.ShutdownTimeout },
		New: func(c Config, log *slog.Logger) (service.Service, error) {
			secrets, err := c.LoadSecrets(os.ReadFile)
			if err != nil {
				return nil, err
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			return NewServer(c, secrets, log, reg)
		},
	}
}
