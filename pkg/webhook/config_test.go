package webhook

import (
	"bytes"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

func envFunc(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := ConfigFromEnv(envFunc(map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{
		ListenAddr: ":8080", NATS: events.ConnConfig{URL: "nats://127.0.0.1:4222"},
		Topology: events.Topology{}.WithDefaults(), Secret: "s",
		MaxBodyBytes: 25 << 20, BodyBytesInFlight: 64 << 20,
		ReadHeaderTimeout: 10 * time.Second, BodyTimeout: 10 * time.Second,
		PublishTimeout: 5 * time.Second, ShutdownTimeout: 20 * time.Second,
		LogLevel: slog.LevelInfo, LogFormat: "json",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", c, want)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	c, err := ConfigFromEnv(envFunc(map[string]string{
		"ARCHIVER_LISTEN_ADDR":                  "127.0.0.1:9000",
		"ARCHIVER_METRICS_ADDR":                 "127.0.0.1:9001",
		"NATS_URL":                              "nats://n1:4222,nats://n2:4222",
		"NATS_CREDS":                            "/creds",
		"GITHUB_WEBHOOK_SECRET_FILE":            "/secrets",
		"ARCHIVER_MAX_BODY_BYTES":               "1048576",
		"ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT": "8388608",
		"ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT":  "3s",
		"ARCHIVER_WEBHOOK_BODY_TIMEOUT":         "15s",
		"ARCHIVER_PUBLISH_TIMEOUT":              "2s",
		"ARCHIVER_SHUTDOWN_TIMEOUT":             "30s",
		"ARCHIVER_LOG_LEVEL":                    "DEBUG",
		"ARCHIVER_LOG_FORMAT":                   "Text",
		"ARCHIVER_STREAM_REPLICAS":              "3",
		"ARCHIVER_STREAM_MAX_AGE":               "720h",
		"ARCHIVER_STREAM_MAX_BYTES":             "2147483648",
		"ARCHIVER_DEDUP_WINDOW":                 "24h",
		"ARCHIVER_FILTER_REPOS_ALLOW":           "acme/*, widgets/api ,",
		"ARCHIVER_FILTER_REPOS_DENY":            "acme/scratch-*",
		"ARCHIVER_FILTER_WORKFLOWS":             "release.yml",
		"ARCHIVER_FILTER_BRANCHES":              "main,release/*",
		"ARCHIVER_FILTER_CONCLUSIONS":           "success,failure",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != "127.0.0.1:9000" || c.MetricsAddr != "127.0.0.1:9001" || c.NATS.URL != "nats://n1:4222,nats://n2:4222" ||
		c.NATS.Creds != "/creds" || c.SecretFile != "/secrets" || c.MaxBodyBytes != 1<<20 ||
		c.BodyBytesInFlight != 8<<20 || c.ReadHeaderTimeout != 3*time.Second || c.BodyTimeout != 15*time.Second ||
		c.PublishTimeout != 2*time.Second || c.ShutdownTimeout != 30*time.Second ||
		c.LogLevel != slog.LevelDebug || c.LogFormat != "text" {
		t.Errorf("config %+v", c)
	}
	if c.Topology.Replicas != 3 || c.Topology.MaxAge != 720*time.Hour || c.Topology.MaxBytes != 2<<30 || c.Topology.Duplicates != 24*time.Hour {
		t.Errorf("topology %+v", c.Topology)
	}
	wantFilter := Filter{
		ReposAllow: []string{"acme/*", "widgets/api"}, ReposDeny: []string{"acme/scratch-*"},
		Workflows: []string{"release.yml"}, Branches: []string{"main", "release/*"}, Conclusions: []string{"success", "failure"},
	}
	if !reflect.DeepEqual(c.Filter, wantFilter) {
		t.Errorf("filter %+v, want %+v", c.Filter, wantFilter)
	}
}

func TestConfigFromEnvParseErrors(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"ARCHIVER_MAX_BODY_BYTES", "ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT", "ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT", "ARCHIVER_WEBHOOK_BODY_TIMEOUT", "ARCHIVER_PUBLISH_TIMEOUT", "ARCHIVER_SHUTDOWN_TIMEOUT", "ARCHIVER_LOG_LEVEL", "ARCHIVER_STREAM_REPLICAS", "ARCHIVER_DEDUP_WINDOW"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ConfigFromEnv(envFunc(map[string]string{name: "not-a-value"}))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() Config {
		c, err := ConfigFromEnv(envFunc(map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		field  string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"secret file only", func(c *Config) { c.Secret, c.SecretFile = "", "/s" }, ""},
		{"no secret", func(c *Config) { c.Secret = "" }, "GITHUB_WEBHOOK_SECRET"},
		{"empty listen address", func(c *Config) { c.ListenAddr = "" }, "ARCHIVER_LISTEN_ADDR"},
		{"metrics on the webhook address", func(c *Config) { c.MetricsAddr = c.ListenAddr }, "ARCHIVER_METRICS_ADDR"},
		{"zero body limit", func(c *Config) { c.MaxBodyBytes = 0 }, "ARCHIVER_MAX_BODY_BYTES"},
		{"body budget equal to the body limit", func(c *Config) { c.BodyBytesInFlight = c.MaxBodyBytes }, ""},
		{"body budget below the body limit", func(c *Config) { c.BodyBytesInFlight = c.MaxBodyBytes - 1 }, "ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT"},
		{"zero read header timeout", func(c *Config) { c.ReadHeaderTimeout = 0 }, "ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT"},
		{"negative body timeout", func(c *Config) { c.BodyTimeout = -time.Second }, "ARCHIVER_WEBHOOK_BODY_TIMEOUT"},
		{"zero publish timeout", func(c *Config) { c.PublishTimeout = 0 }, "ARCHIVER_PUBLISH_TIMEOUT"},
		{"publish timeout at GitHub's limit", func(c *Config) { c.PublishTimeout = 10 * time.Second }, "ARCHIVER_PUBLISH_TIMEOUT"},
		{"shutdown shorter than publish", func(c *Config) { c.ShutdownTimeout = c.PublishTimeout }, "ARCHIVER_SHUTDOWN_TIMEOUT"},
		{"log format", func(c *Config) { c.LogFormat = "yaml" }, "ARCHIVER_LOG_FORMAT"},
		{"bad filter pattern", func(c *Config) { c.Filter.ReposAllow = []string{"["} }, "pattern"},
		{"bad conclusion", func(c *Config) { c.Filter.Conclusions = []string{"canceled"} }, "conclusion"},
		{"replicas", func(c *Config) { c.Topology.Replicas = 7 }, "replicas"},
		{"dedup window over max age", func(c *Config) { c.Topology.MaxAge = time.Hour }, "duplicate window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// TestUsageListsEveryVariable checks -h against the variables
// ConfigFromEnv actually reads: each is a row of Env and listed by -h, and
// the consumer's variables (the worker's) are neither read nor listed.
func TestUsageListsEveryVariable(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	if _, err := ConfigFromEnv(func(k string) string { read[k] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Main(t.Context(), []string{"-h"}, envFunc(nil), &buf, io.Discard); err != nil {
		t.Fatal(err)
	}
	usage := buf.String()
	names := Env().Names()
	for name := range read {
		if !slices.Contains(names, name) {
			t.Errorf("ConfigFromEnv reads %s, which is not a row of Env", name)
		}
		if !strings.Contains(usage, name) {
			t.Errorf("usage does not list %s:\n%s", name, usage)
		}
	}
	for _, name := range []string{"ARCHIVER_CONSUMER", "ARCHIVER_ACK_WAIT", "ARCHIVER_MAX_DELIVER", "ARCHIVER_MAX_ACK_PENDING"} {
		if read[name] || strings.Contains(usage, name) {
			t.Errorf("the webhook reads or lists the worker's %s", name)
		}
	}
	for _, name := range []string{"ARCHIVER_LISTEN_ADDR", "ARCHIVER_MAX_BODY_BYTES", "ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT", "ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT", "ARCHIVER_WEBHOOK_BODY_TIMEOUT", "ARCHIVER_PUBLISH_TIMEOUT", "ARCHIVER_LOG_LEVEL", "ARCHIVER_LOG_FORMAT"} {
		line := usage[strings.Index(usage, name):]
		line = line[:strings.IndexByte(line, '\n')]
		if !strings.Contains(line, "default") {
			t.Errorf("usage line for %s has no default: %q", name, line)
		}
	}
}
