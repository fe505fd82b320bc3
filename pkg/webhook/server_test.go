package webhook

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs a Server against natsURL; it is stopped in t.Cleanup.
func startServer(t *testing.T, natsURL string, env map[string]string) (*Server, *logBuffer) {
	t.Helper()
	kv := map[string]string{
		"ARCHIVER_LISTEN_ADDR":     "127.0.0.1:0",
		"NATS_URL":                 natsURL,
		"GITHUB_WEBHOOK_SECRET":    testSecret,
		"ARCHIVER_PUBLISH_TIMEOUT": "2s",
	}
	for k, v := range env {
		kv[k] = v
	}
	cfg, err := ConfigFromEnv(envFunc(kv))
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := cfg.LoadSecrets(nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	srv, err := NewServer(cfg, secrets, slog.New(slog.NewJSONHandler(logs, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return srv, logs
}

func httpClient(t *testing.T) *http.Client {
	c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

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

func TestServerReadinessFollowsNATS(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	storeDir := t.TempDir()
	// NATS is not there yet: alive, not ready.
	srv, logs := startServer(t, "nats://127.0.0.1:"+strconv.Itoa(port), nil)
	c := httpClient(t)
	base := "http://" + srv.Addr()
	if code, _ := get(t, c, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz = %d, want 200", code)
	}
	if code, body := get(t, c, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not provisioned") {
		t.Fatalf("readyz without NATS = %d %q, want 503 not provisioned", code, body)
	}
	body := runPayload(t, ghsim.RunPayload{RunID: 11})
	if r := post(t, base+"/webhook", signed(EventWorkflowRun, "early", body)); r.status != http.StatusServiceUnavailable {
		t.Fatalf("delivery before NATS: %d, want 503", r.status)
	}

	// NATS starts: the server connects, provisions the streams, and is ready.
	ns := startNATS(t, storeDir, port)
	testserver.Eventually(t, 20*time.Second, "readyz 200 after NATS started", func() bool {
		code, _ := get(t, c, base+"/readyz")
		return code == http.StatusOK
	})
	a := post(t, base+"/webhook", signed(EventWorkflowRun, "early", body)).accepted(t)
	if a.Duplicate || a.Sequence != 1 {
		t.Fatalf("redelivery once ready: %+v", a)
	}
	if !strings.Contains(logs.String(), "streams provisioned") {
		t.Error("no provisioning log line")
	}

	// NATS goes away: not ready.
	ns.Shutdown()
	ns.WaitForShutdown()
	testserver.Eventually(t, 10*time.Second, "readyz 503 after NATS stopped", func() bool {
		code, _ := get(t, c, base+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	if code, _ := get(t, c, base+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz with NATS down = %d, want 200 (the process is alive)", code)
	}
}

func TestServerReadyFalseWhenStreamDeleted(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, t.TempDir(), 0)
	srv, _ := startServer(t, ns.ClientURL(), nil)
	c := httpClient(t)
	base := "http://" + srv.Addr()
	testserver.Eventually(t, 10*time.Second, "ready", func() bool { code, _ := get(t, c, base+"/readyz"); return code == 200 })
	nc, err := events.Connect(events.ConnConfig{URL: ns.ClientURL()}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(t.Context(), events.DefaultStream); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, c, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, events.DefaultStream) {
		t.Fatalf("readyz without the stream = %d %q, want 503 naming the stream", code, body)
	}
}

func TestServerMetrics(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, t.TempDir(), 0)
	srv, _ := startServer(t, ns.ClientURL(), nil)
	c := httpClient(t)
	base := "http://" + srv.Addr()
	testserver.Eventually(t, 10*time.Second, "ready", func() bool { code, _ := get(t, c, base+"/readyz"); return code == 200 })
	post(t, base+"/webhook", signed(EventWorkflowRun, "m1", runPayload(t, ghsim.RunPayload{Owner: "secretive-org", Repo: "hidden", RunID: 31337}))).accepted(t)
	post(t, base+"/webhook", withSig(signed(EventWorkflowRun, "m2", []byte("{}")), "sha256=00"))

	code, body := get(t, c, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics = %d", code)
	}
	for _, want := range []string{
		`archiver_webhook_deliveries_total{event="workflow_run",outcome="accepted"} 1`,
		`archiver_webhook_signature_failures_total{reason="malformed"} 1`,
		`archiver_webhook_publish_duration_seconds_count{result="ok"} 1`,
		`archiver_webhook_body_size_bytes_count 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Bounded labels: no repository or id; own registry, not the default one.
	for _, leak := range []string{"secretive-org", "hidden", "31337", "m1"} {
		if strings.Contains(body, leak) {
			t.Errorf("metrics contain %q", leak)
		}
	}
	for line := range strings.Lines(body) {
		if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "archiver_webhook_") && !strings.HasPrefix(line, "promhttp_") {
			t.Errorf("metric outside the archiver_webhook_ prefix on the server's own registry: %s", line)
		}
	}
}

func TestServerSeparateMetricsAddr(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, t.TempDir(), 0)
	srv, _ := startServer(t, ns.ClientURL(), map[string]string{"ARCHIVER_METRICS_ADDR": "127.0.0.1:0"})
	c := httpClient(t)
	if srv.OpsAddr() == srv.Addr() {
		t.Fatal("ops endpoints share the webhook listener")
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _ := get(t, c, "http://"+srv.Addr()+p); code != http.StatusNotFound {
			t.Errorf("%s on the webhook port = %d, want 404", p, code)
		}
	}
	if code, _ := get(t, c, "http://"+srv.OpsAddr()+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics on the ops port = %d, want 200", code)
	}
	testserver.Eventually(t, 10*time.Second, "ready on the ops port", func() bool {
		code, _ := get(t, c, "http://"+srv.OpsAddr()+"/readyz")
		return code == 200
	})
	post(t, "http://"+srv.Addr()+"/webhook", signed(EventWorkflowRun, "sep", runPayload(t, ghsim.RunPayload{RunID: 12}))).accepted(t)
}

// TestServerGracefulStop stops the server while a delivery is in flight:
// the listener closes at once, the delivery completes with 202 and is in
// the stream, and Stop returns nil.
func TestServerGracefulStop(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, t.TempDir(), 0)
	srv, _ := startServer(t, ns.ClientURL(), nil)
	c := httpClient(t)
	testserver.Eventually(t, 10*time.Second, "ready", func() bool { code, _ := get(t, c, "http://"+srv.Addr()+"/readyz"); return code == 200 })
	c.CloseIdleConnections()

	body := runPayload(t, ghsim.RunPayload{RunID: 4711, RunAttempt: 1})
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: test\r\n%s: workflow_run\r\n%s: inflight\r\nContent-Type: application/json\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
		HeaderEvent, HeaderDelivery, SignatureHeader, ghsim.Sign(testSecret, body), len(body))
	half := len(body) / 2
	if _, err := conn.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	testserver.Eventually(t, 5*time.Second, "request in flight", func() bool {
		return metric(t, srv.reg, "archiver_webhook_in_flight_requests") == 1
	})

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- srv.Stop(ctx)
	}()
	testserver.Eventually(t, 5*time.Second, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a delivery was in flight", err)
	default:
	}

	if _, err := conn.Write(body[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !bytes.Contains(rb, []byte(`"delivery_id":"inflight"`)) {
		t.Fatalf("in-flight delivery: %d %s, want 202", resp.StatusCode, rb)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the in-flight delivery finished")
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop = %v", err)
	}

	nc, err := events.Connect(events.ConnConfig{URL: ns.ClientURL()}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(t.Context(), events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), events.Subjects{}.Runs())
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Nats-Msg-Id") != "wr:4711:1" {
		t.Fatalf("stored message id %q", m.Header.Get("Nats-Msg-Id"))
	}
}

// TestServerSlowClients checks the server's limits on slow and oversized
// requests, configured through the environment: slow headers close the
// connection, a slow body gets 408, oversized headers 431.
func TestServerSlowClients(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	// No NATS: none of these requests gets as far as a publish.
	srv, logs := startServer(t, "nats://127.0.0.1:"+strconv.Itoa(freePort(t)), map[string]string{
		"ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT": timeout.String(),
		"ARCHIVER_WEBHOOK_BODY_TIMEOUT":        timeout.String(),
	})
	if !strings.Contains(logs.String(), `"body_timeout":"300ms"`) {
		t.Errorf("the settings are not logged at start:\n%s", logs)
	}

	t.Run("slow headers", func(t *testing.T) {
		t.Parallel()
		// The server's header timeout runs from the accept, which may come
		// before Dial returns: measure from before the dial.
		start := time.Now()
		conn, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: test\r\n%s: workflow_run\r\n", HeaderEvent)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(make([]byte, 512))
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection with unfinished headers: read %d bytes, err %v; want it closed", n, err)
		}
		if took := time.Since(start); took < timeout {
			t.Errorf("closed after %s, before the %s header timeout", took, timeout)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		t.Parallel()
		resp, b := readResponse(t, slowRequest(t, srv.Addr(), 26_000_000, []byte("{")))
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408; body %s", resp.StatusCode, b)
		}
	})
	t.Run("oversized headers", func(t *testing.T) {
		t.Parallel()
		conn, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: test\r\nX-Padding: %s\r\nContent-Length: 2\r\n\r\n{}", strings.Repeat("x", 2*maxHeaderBytes))
		resp, _ := readResponse(t, conn)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		t.Parallel()
		_, body := get(t, httpClient(t), "http://"+srv.OpsAddr()+"/metrics")
		if !strings.Contains(body, "archiver_webhook_body_bytes_in_flight_limit 6.7108864e+07") {
			t.Errorf("metrics lack the default body budget:\n%s", body)
		}
	})
}
