package testserver

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSOption configures [NATS] and [NATSBinary].
type NATSOption func(*natsOptions)

type natsOptions struct {
	embedded []func(*server.Options)
	args     []string
}

// WithServerOptions adjusts the embedded server's options after the
// defaults (127.0.0.1, the fixed port, JetStream, the store directory) are
// set. It applies to [NATS] only.
func WithServerOptions(fn func(*server.Options)) NATSOption {
	return func(o *natsOptions) { o.embedded = append(o.embedded, fn) }
}

// WithArgs adds command-line arguments for the nats-server process. It
// applies to [NATSBinary] only.
func WithArgs(args ...string) NATSOption {
	return func(o *natsOptions) { o.args = append(o.args, args...) }
}

// NATSServer is a JetStream-enabled NATS server on a fixed port and store
// directory, embedded ([NATS]) or as a process ([NATSBinary]). URL, Port and
// StoreDir stay the same across Stop/Start/Restart, so clients reconnect to
// the same server with the same streams.
type NATSServer struct {
	URL      string // nats://127.0.0.1:PORT
	Port     int
	StoreDir string

	t        testing.TB
	opts     natsOptions
	bin      string // "" when embedded
	monitor  int    // monitoring port of the process
	logDir   string
	mu       sync.Mutex
	embedded *server.Server
	proc     *process
	runs     int
}

// NATS starts an embedded nats-server with JetStream listening on a real
// TCP port (so that a connection survives [NATSServer.Restart]), and shuts
// it down in t.Cleanup.
func NATS(t testing.TB, opts ...NATSOption) *NATSServer {
	t.Helper()
	s := newNATS(t, "", opts)
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// NATSBinary runs the pinned nats-server binary ($ARCHIVER_NATS_BIN, else
// <repo root>/.cache/bin/nats-server, else PATH, else built from
// [NATSServerModule]) as a separate process with JetStream, for tests of
// whole processes. The process is killed in t.Cleanup.
func NATSBinary(t testing.TB, opts ...NATSOption) *NATSServer {
	t.Helper()
	bin := Binary(t, "nats-server", "ARCHIVER_NATS_BIN", NATSServerModule)
	s := newNATS(t, bin, opts)
	var err error
	if s.monitor, err = FreePort(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

func newNATS(t testing.TB, bin string, opts []NATSOption) *NATSServer {
	t.Helper()
	var o natsOptions
	for _, opt := range opts {
		opt(&o)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &NATSServer{
		URL:      "nats://" + hostPort(port),
		Port:     port,
		StoreDir: filepath.Join(dir, "jetstream"),
		t:        t,
		opts:     o,
		bin:      bin,
		logDir:   dir,
	}
	if err := os.Mkdir(s.StoreDir, 0o755); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	return s
}

// Embedded returns the running embedded server, or nil (stopped, or a
// process started by NATSBinary).
func (s *NATSServer) Embedded() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.embedded
}

// Start starts the server (again) on the same port and store directory and
// waits until it accepts connections (embedded) or /healthz answers 200
// (process). It does nothing if the server is running. Call it from the
// test's goroutine: it fails the test.
func (s *NATSServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.embedded != nil || s.proc != nil {
		return
	}
	s.runs++
	if s.bin == "" {
		s.startEmbedded()
	} else {
		s.startProcess()
	}
}

func (s *NATSServer) startEmbedded() {
	s.t.Helper()
	o := &server.Options{
		ServerName: "testserver",
		Host:       "127.0.0.1",
		Port:       s.Port,
		JetStream:  true,
		StoreDir:   s.StoreDir,
		NoLog:      true,
		NoSigs:     true,
	}
	for _, fn := range s.opts.embedded {
		fn(o)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		s.t.Fatalf("testserver: nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(startTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		s.t.Fatalf("testserver: nats server on %s not ready after %s", s.URL, startTimeout)
	}
	s.embedded = ns
}

func (s *NATSServer) startProcess() {
	s.t.Helper()
	args := []string{
		"--addr", "127.0.0.1",
		"--port", strconv.Itoa(s.Port),
		"--http_port", strconv.Itoa(s.monitor),
		"--jetstream",
		"--store_dir", s.StoreDir,
		"--server_name", "testserver",
	}
	args = append(args, s.opts.args...)
	logPath := filepath.Join(s.logDir, fmt.Sprintf("nats-server-%d.log", s.runs))
	p, err := startProcess(s.bin, args, os.Environ(), logPath)
	if err != nil {
		s.t.Fatalf("testserver: nats-server: %v", err)
	}
	probe := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer probe.CloseIdleConnections()
	healthz := fmt.Sprintf("http://%s/healthz", hostPort(s.monitor))
	if err := p.waitReady(s.t.Context(), httpReady(probe, healthz)); err != nil {
		p.stop(syscall.SIGKILL, 0)
		s.t.Fatalf("testserver: nats-server %s (%s): %v\n--- log ---\n%s", s.URL, s.bin, err, p.logTail())
	}
	s.proc = p
}

// Stop shuts the server down (the process gets SIGTERM, then SIGKILL after
// 10 s) and waits for it to exit. JetStream data stays in StoreDir. Stopping
// a stopped server does nothing.
func (s *NATSServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.embedded != nil:
		s.embedded.Shutdown()
		s.embedded.WaitForShutdown()
		s.embedded = nil
	case s.proc != nil:
		s.proc.stop(syscall.SIGTERM, 10*time.Second)
		s.proc = nil
	}
}

// Kill ends a process started by NATSBinary with SIGKILL, as a crash would
// (data not yet synced may be lost). An embedded server is shut down as by
// Stop.
func (s *NATSServer) Kill() {
	s.mu.Lock()
	if s.proc != nil {
		s.proc.stop(syscall.SIGKILL, 0)
		s.proc = nil
	}
	s.mu.Unlock()
	s.Stop()
}

// Restart stops the server and starts it again on the same port and store
// directory.
func (s *NATSServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}
