package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeOps(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "archiver_test_total", Help: "a test counter"})
	reg.MustRegister(c)
	c.Inc()
	var ready atomic.Bool
	var deadline atomic.Bool
	srv, err := service.ServeOps("127.0.0.1:0", service.Ops{Registry: reg, Ready: func(ctx context.Context) error {
		if d, ok := ctx.Deadline(); ok && time.Until(d) <= service.ReadyTimeout {
			deadline.Store(true)
		}
		if !ready.Load() {
			return errors.New("streams not provisioned yet")
		}
		return nil
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	base := "http://" + srv.Addr()

	if code, body := get(t, client, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, client, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready: streams not provisioned yet") {
		t.Errorf("/readyz not ready = %d %q, want 503 with the reason", code, body)
	}
	ready.Store(true)
	if code, body := get(t, client, base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz ready = %d %q, want 200 ok", code, body)
	}
	if !deadline.Load() {
		t.Error("the readiness check got no deadline within ReadyTimeout")
	}
	if code, body := get(t, client, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "archiver_test_total 1") {
		t.Errorf("/metrics = %d, lacks the registry's counter:\n%s", code, body)
	}
	if code, _ := get(t, client, base+"/other"); code != http.StatusNotFound {
		t.Errorf("/other = %d, want 404", code)
	}
	resp, err := client.Post(base+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
	}

	client.CloseIdleConnections()
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("the listener still answers after Stop")
	}
}

func TestServeListenError(t *testing.T) {
	t.Parallel()
	srv, err := service.ServeOps("127.0.0.1:0", service.Ops{Registry: prometheus.NewRegistry()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(t.Context())
	if _, err := service.ServeOps(srv.Addr(), service.Ops{Registry: prometheus.NewRegistry()}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("second listener on %s: err = %v, want one naming the address", srv.Addr(), err)
	}
}

// TestStopCutsSlowConnections: when ctx ends before an open request
// finishes, Stop closes the connection and returns.
func TestStopCutsSlowConnections(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv, err := service.Serve("127.0.0.1:0", &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer close(release)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + srv.Addr() + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Stop(ctx); err == nil {
		t.Error("Stop = nil with a request still open when ctx ended")
	}
	if err := <-errc; err == nil {
		t.Error("the open request completed; want its connection cut")
	}
}
