package webhook

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

// Limits of the HTTP server and timeouts of the background work. The
// header and body timeouts are settings (see [Config]).
const (
	// maxHeaderBytes bounds a request's headers: GitHub sends about 1 KB,
	// and net/http's default of 1 MiB per slow connection is what a header
	// flood would hold.
	maxHeaderBytes = 64 << 10
	// writeMargin is the time to write a response after the body timeout
	// and the publish timeout.
	writeMargin   = 5 * time.Second
	idleTimeout   = 120 * time.Second
	readyTimeout  = 2 * time.Second
	provisionWait = 10 * time.Second // one provisioning attempt
	retryMin      = 250 * time.Millisecond
	retryMax      = 5 * time.Second
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
	servers []*http.Server
	lns     []net.Listener

	provisioned atomic.Bool
	stopping    atomic.Bool
	cancel      context.CancelFunc // stops provisioning
	wg          sync.WaitGroup     // serve and provisioning goroutines
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
	ops := hooks
	addrs := []string{s.cfg.ListenAddr}
	if s.cfg.MetricsAddr != "" {
		ops = http.NewServeMux()
		addrs = append(addrs, s.cfg.MetricsAddr)
	}
	ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	ops.HandleFunc("GET /readyz", s.serveReady)
	ops.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))

	for i, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
			s.nc.Close()
			return fmt.Errorf("webhook: listen %s: %w", addr, err)
		}
		mux := hooks
		if i == 1 {
			mux = ops
		}
		s.lns = append(s.lns, ln)
		s.servers = append(s.servers, &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
			// The handler sets the deadline of a delivery's body itself;
			// ReadTimeout bounds the bodies of other paths the same way.
			ReadTimeout:    s.cfg.ReadHeaderTimeout + s.cfg.BodyTimeout,
			WriteTimeout:   s.cfg.BodyTimeout + s.cfg.PublishTimeout + writeMargin,
			IdleTimeout:    idleTimeout,
			MaxHeaderBytes: maxHeaderBytes,
			ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		})
	}

	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Go(func() { s.provision(pctx) })
	for i, srv := range s.servers {
		ln := s.lns[i]
		s.wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
			}
		})
	}
	s.log.Info("webhook listening", "addr", s.Addr(), "metrics_addr", s.OpsAddr(),
		"nats_url", s.cfg.NATS.URL, "stream", s.cfg.Topology.Stream, "filter", s.cfg.Filter.String(),
		"secrets", s.secrets.Len(), "publish_timeout", s.cfg.PublishTimeout.String(),
		"body_timeout", s.cfg.BodyTimeout.String(), "body_bytes_in_flight_limit", s.cfg.BodyBytesInFlight)
	return nil
}

func (s *Server) closeListeners() {
	for _, ln := range s.lns {
		ln.Close()
	}
}

// Addr is the bound address of POST /webhook (useful with port 0).
func (s *Server) Addr() string { return s.lns[0].Addr().String() }

// OpsAddr is the bound address of /healthz, /readyz and /metrics.
func (s *Server) OpsAddr() string { return s.lns[len(s.lns)-1].Addr().String() }

// provision creates or updates the streams, retrying with backoff until it
// succeeds or ctx ends.
func (s *Server) provision(ctx context.Context) {
	wait := retryMin
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, provisionWait)
		err := events.ProvisionStreams(actx, s.js, s.cfg.Topology)
		cancel()
		if err == nil {
			s.provisioned.Store(true)
			s.log.Info("streams provisioned", "stream", s.cfg.Topology.Stream, "dead_letter", s.cfg.Topology.DeadLetter, "attempts", attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("provisioning streams failed; retrying", "err", err, "attempt", attempt, "retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
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
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := s.js.Stream(ctx, s.cfg.Topology.Stream); err != nil {
		return fmt.Errorf("stream %s: %w", s.cfg.Topology.Stream, err)
	}
	return nil
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if err := s.Ready(r.Context()); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
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
		for _, srv := range s.servers {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close() // ctx ended: cut the connections still open
				errs = append(errs, fmt.Errorf("webhook: shutdown: %w", err))
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
// serves until ctx is cancelled (SIGTERM), then drains and returns nil.
// "-h" writes the usage, listing every environment variable, to stdout.
// Logs go to stderr.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { Usage(stdout) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("webhook: unexpected arguments %q", fs.Args())
	}
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	secrets, err := cfg.LoadSecrets(os.ReadFile)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := NewServer(cfg, secrets, cfg.NewLogger(stderr), reg)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return srv.Stop(sctx)
}
