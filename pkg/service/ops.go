package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits of the operational endpoints.
const (
	// ReadyTimeout bounds one readiness check.
	ReadyTimeout = 2 * time.Second
	// opsReadHeaderTimeout bounds the wait for a request's headers on an
	// ops listener.
	opsReadHeaderTimeout = 10 * time.Second
)

// Ops are a service's operational endpoints: GET /healthz answers 200 while
// the process runs, GET /readyz answers 200 when Ready reports nil and 503
// with the reason otherwise, and GET /metrics serves Registry.
type Ops struct {
	Registry *prometheus.Registry
	// Ready reports why the service cannot take work, or nil. Each check
	// gets ReadyTimeout.
	Ready func(ctx context.Context) error
}

// Register adds the endpoints to mux.
func (o Ops) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", o.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
}

func (o Ops) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
	defer cancel()
	if err := o.Ready(ctx); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}

// ServeOps serves o on its own listener at addr; see [Serve].
func ServeOps(addr string, o Ops, log *slog.Logger) (*HTTPServer, error) {
	mux := http.NewServeMux()
	o.Register(mux)
	return Serve(addr, &http.Server{Handler: mux, ReadHeaderTimeout: opsReadHeaderTimeout}, log)
}

// HTTPServer is an http.Server serving its own listener in the background.
type HTTPServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve binds addr and serves srv on it in the background; it returns once
// the listener is bound. An unexpected end of serving is logged. srv's
// ErrorLog defaults to log at warn.
func Serve(addr string, srv *http.Server, log *slog.Logger) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service: listen %s: %w", addr, err)
	}
	if srv.ErrorLog == nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	s := &HTTPServer{srv: srv, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return s, nil
}

// Addr is the bound address (useful with port 0).
func (s *HTTPServer) Addr() string { return s.ln.Addr().String() }

// Stop stops accepting connections and waits for the open ones to finish;
// when ctx ends first, it closes them. It returns once serving has ended,
// and may be called again.
func (s *HTTPServer) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close() // ctx ended: cut the connections still open
		err = fmt.Errorf("service: shut down %s: %w", s.Addr(), err)
	}
	<-s.done
	return err
}
