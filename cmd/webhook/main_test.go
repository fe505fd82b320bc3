package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
)

// TestMain doubles as the webhook binary: with WEBHOOK_TEST_MAIN=1 the test
// binary runs main(), so the SIGTERM test needs no separate build.
func TestMain(m *testing.M) {
	if os.Getenv("WEBHOOK_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestHelpListsEnvironment(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := webhook.Main(t.Context(), []string{"-h"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("-h: %v", err)
	}
	for _, name := range webhook.Env().Names() {
		if !strings.Contains(out.String(), name) {
			t.Errorf("-h does not list %s", name)
		}
	}
	for _, want := range []string{"GITHUB_WEBHOOK_SECRET_FILE", "NATS_URL", "ARCHIVER_PUBLISH_TIMEOUT", "ARCHIVER_STREAM_REPLICAS", "ARCHIVER_DEDUP_WINDOW", "(default 5s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMainRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := map[string]map[string]string{
		"no secret":         {},
		"bad timeout":       {"GITHUB_WEBHOOK_SECRET": "s", "ARCHIVER_PUBLISH_TIMEOUT": "soon"},
		"missing file":      {"GITHUB_WEBHOOK_SECRET_FILE": filepath.Join(t.TempDir(), "absent")},
		"timeout too large": {"GITHUB_WEBHOOK_SECRET": "s", "ARCHIVER_PUBLISH_TIMEOUT": "12s"},
	}
	for name, env := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Main(t.Context(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("Main accepted a bad configuration")
			}
		})
	}
	if err := webhook.Main(t.Context(), []string{"extra"}, func(string) string { return "s" }, io.Discard, io.Discard); err == nil {
		t.Error("Main accepted a positional argument")
	}
}

// TestSIGTERM runs the binary against a real JetStream, delivers a run,
// sends SIGTERM and expects a clean exit 0.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	secretFile := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(secretFile, []byte("old\n\nnew-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	cmd := exec.Command(os.Args[0]) // no test flags: main() parses os.Args
	cmd.Env = append(os.Environ(),
		"WEBHOOK_TEST_MAIN=1",
		"NATS_URL="+ns.ClientURL(),
		"ARCHIVER_LISTEN_ADDR="+addr,
		"GITHUB_WEBHOOK_SECRET_FILE="+secretFile,
		"ARCHIVER_LOG_FORMAT=text",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	testserver.Eventually(t, 20*time.Second, "the webhook's /readyz", func() bool {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	body, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{InstallationID: 1, RunID: 99, RunAttempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "workflow_run")
	req.Header.Set("X-GitHub-Delivery", "sigterm-1")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", ghsim.Sign("new-secret", body))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delivery: %d, want 202", resp.StatusCode)
	}
	client.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) || err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit within 20s of SIGTERM\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	logs := stderr.String()
	for _, want := range []string{"streams provisioned", "run enqueued", "delivery_id=sigterm-1", "webhook stopped", "secrets=2"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "new-secret") {
		t.Error("logs contain the secret")
	}
}
