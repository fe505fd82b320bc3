package worker_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

func envFrom(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServiceConfigFromEnv(t *testing.T) {
	t.Parallel()
	base := map[string]string{"ARCHIVER_DESTINATION": "s3://bucket/prefix", "GITHUB_TOKEN": "t"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(*testing.T, worker.ServiceConfig)
	}{
		{"defaults", base, "", func(t *testing.T, c worker.ServiceConfig) {
			if c.Delete || c.DeleteDryRun || c.AllowHTTP || c.Attestations {
				t.Error("deletion, http downloads and attestations must be off by default")
			}
			if c.Concurrency != 4 || c.RunSlots != 4 || c.MetricsAddr != ":9090" || c.GitHubAPIURL != "https://api.github.com/" {
				t.Errorf("defaults %+v", c)
			}
			if c.NATS.URL != "nats://127.0.0.1:4222" || c.Topology.Stream != "ARCHIVER_RUNS" {
				t.Errorf("nats defaults %+v %+v", c.NATS, c.Topology)
			}
		}},
		{"no destination", map[string]string{"GITHUB_TOKEN": "t"}, "ARCHIVER_DESTINATION", nil},
		{"no credentials", map[string]string{"ARCHIVER_DESTINATION": "file:///x"}, "GITHUB_TOKEN", nil},
		{"app credentials", map[string]string{"ARCHIVER_DESTINATION": "file:///x", "GITHUB_APP_ID": "12", "GITHUB_APP_PRIVATE_KEY": "pem"}, "", nil},
		{"app key file missing", map[string]string{"ARCHIVER_DESTINATION": "file:///x", "GITHUB_APP_ID": "12", "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent"}, "GITHUB_APP_PRIVATE_KEY_FILE", nil},
		{"dry run needs delete", with("ARCHIVER_DELETE_DRY_RUN", "true"), "ARCHIVER_DELETE_FROM_GITHUB", nil},
		{"bad bool", with("ARCHIVER_DELETE_FROM_GITHUB", "yes please"), "ARCHIVER_DELETE_FROM_GITHUB", nil},
		{"attestations", with("ARCHIVER_ATTESTATIONS", "true", "ARCHIVER_TRUSTED_ROOTS", "https://example.com/root.json, file:///etc/roots.jsonl"), "", func(t *testing.T, c worker.ServiceConfig) {
			if !c.Attestations || c.TrustedRootSources != "https://example.com/root.json, file:///etc/roots.jsonl" {
				t.Errorf("attestations %v, trusted roots %q", c.Attestations, c.TrustedRootSources)
			}
		}},
		{"attestations without trusted roots", with("ARCHIVER_ATTESTATIONS", "true"), "", func(t *testing.T, c worker.ServiceConfig) {
			if !c.Attestations || c.TrustedRootSources != "" {
				t.Errorf("attestations %v, trusted roots %q", c.Attestations, c.TrustedRootSources)
			}
		}},
		{"bad attestations bool", with("ARCHIVER_ATTESTATIONS", "sure"), "ARCHIVER_ATTESTATIONS", nil},
		{"trusted roots need attestations", with("ARCHIVER_TRUSTED_ROOTS", "https://example.com/root.json"), "ARCHIVER_ATTESTATIONS", nil},
		{"bad trusted root source", with("ARCHIVER_ATTESTATIONS", "true", "ARCHIVER_TRUSTED_ROOTS", "ftp://example.com/root.json"), "ARCHIVER_TRUSTED_ROOTS", nil},
		{"bad int", with("ARCHIVER_CONCURRENCY", "many"), "ARCHIVER_CONCURRENCY", nil},
		{"bad log level", with("ARCHIVER_LOG_LEVEL", "loud"), "ARCHIVER_LOG_LEVEL", nil},
		{"log format in any case", with("ARCHIVER_LOG_FORMAT", "Text"), "", func(t *testing.T, c worker.ServiceConfig) {
			if c.LogFormat != "text" {
				t.Errorf("log format %q", c.LogFormat)
			}
		}},
		{"app key file", map[string]string{"ARCHIVER_DESTINATION": "file:///x", "GITHUB_APP_ID": "12", "GITHUB_APP_PRIVATE_KEY_FILE": writeFile(t, "pem")}, "", func(t *testing.T, c worker.ServiceConfig) {
			if string(c.AppPrivateKey) != "pem" || c.AppID != 12 {
				t.Errorf("app %d key %q", c.AppID, c.AppPrivateKey)
			}
		}},
		{"concurrency range", with("ARCHIVER_CONCURRENCY", "0"), "ARCHIVER_CONCURRENCY", nil},
		{"part size too small", with("ARCHIVER_PART_SIZE", "1024"), "ARCHIVER_PART_SIZE", nil},
		{"ack wait too short", with("ARCHIVER_ACK_WAIT", "1s"), "ack wait", nil},
		{"grace vs ack wait", with("ARCHIVER_ACK_WAIT", "10s", "ARCHIVER_SHUTDOWN_GRACE", "5m"), "ARCHIVER_SHUTDOWN_GRACE", nil},
		{"download hosts", with("ARCHIVER_DOWNLOAD_HOSTS", " .blob.core.windows.net, ghes.example.com ,"), "", func(t *testing.T, c worker.ServiceConfig) {
			if len(c.DownloadHosts) != 2 || c.DownloadHosts[0] != ".blob.core.windows.net" {
				t.Errorf("hosts %q", c.DownloadHosts)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := worker.ServiceConfigFromEnv(envFrom(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestHelpListsEveryVariable checks -h against the variables
// ServiceConfigFromEnv actually reads: each is a row of Env, listed by -h.
func TestHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := worker.Main(context.Background(), []string{"-h"}, envFrom(nil), &out, &out); err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	_, _ = worker.ServiceConfigFromEnv(func(k string) string { read[k] = true; return "" })
	names := worker.Env().Names()
	for name := range read {
		if !slices.Contains(names, name) {
			t.Errorf("ServiceConfigFromEnv reads %s, which is not a row of Env", name)
		}
	}
	for _, v := range append(names, "ARCHIVER_DESTINATION (required)", "ARCHIVER_CONCURRENCY (default 4)", "ARCHIVER_LOG_LEVEL (default info)") {
		if !strings.Contains(out.String(), v) {
			t.Errorf("-h does not list %s", v)
		}
	}
	for _, v := range []string{"ARCHIVER_DESTINATION", "GITHUB_APP_PRIVATE_KEY_FILE", "NATS_CREDS", "AWS_ENDPOINT_URL_S3", "ARCHIVER_ACK_WAIT"} {
		if !slices.Contains(names, v) {
			t.Errorf("Env lacks %s", v)
		}
	}
}

func TestMainRejectsBadConfig(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := worker.Main(context.Background(), nil, envFrom(map[string]string{"GITHUB_TOKEN": "secret-token-value"}), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "ARCHIVER_DESTINATION") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error()+out.String(), "secret-token-value") {
		t.Error("the token leaked into the output")
	}
}

// signalWriter collects output and closes seen once it contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) && w.seen != nil {
		close(w.seen)
		w.seen = nil
	}
	return len(p), nil
}

// TestMainStopsWhileProvisioning: without NATS the worker retries the
// provisioning (logging to stdout) until SIGTERM, then fails: it never
// started taking work.
func TestMainStopsWhileProvisioning(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	seen := make(chan struct{})
	out := &signalWriter{want: "provisioning jetstream failed; retrying", seen: seen}
	done := make(chan error, 1)
	go func() {
		done <- worker.Main(ctx, nil, envFrom(map[string]string{
			"ARCHIVER_DESTINATION": "file://" + t.TempDir(), "GITHUB_TOKEN": "t",
			"NATS_URL": "nats://127.0.0.1:1", "ARCHIVER_METRICS_ADDR": "127.0.0.1:0",
		}), out, io.Discard)
	}()
	select {
	case <-seen:
	case err := <-done:
		t.Fatalf("Main returned %v before retrying", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no provisioning retry logged within 30s")
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "worker: provision") {
			t.Fatalf("Main = %v, want a provisioning error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not return after ctx ended")
	}
}
