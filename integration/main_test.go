//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The environment that selects and shapes the run (see README.md).
const (
	// EnvMode is process, docker or both. Default: both when a Docker engine
	// answers (or ARCHIVER_CI=1), else process.
	EnvMode = "ARCHIVER_INTEGRATION_MODE"
	// EnvCI is set to 1 by .ci/run: docker mode is then required, and fails
	// loudly when no engine answers.
	EnvCI = "ARCHIVER_CI"
	// EnvNATSImage and EnvMinIOImage override the NATS and MinIO images of
	// docker mode.
	EnvNATSImage  = "ARCHIVER_NATS_IMAGE"
	EnvMinIOImage = "ARCHIVER_MINIO_IMAGE"
)

// suite is what TestMain prepares once for every test.
var suite struct {
	root   string   // repository root (go.mod)
	bins   binaries // static builds of our commands
	binErr error    // why they could not be built
	modes  []*mode  // the modes every test runs in, in order
}

// binaries are the paths of our commands, built once per test run.
type binaries struct {
	Dir                  string
	Webhook, Worker, Sim string
	// Ctl is archivectl, which tests run against the archive.
	Ctl       string
	buildTime time.Duration
}

// mode is one way to bring the stack up. A mode whose err is set cannot
// run; every test fails in it with that error (never skips).
type mode struct {
	name  string
	err   error
	start func(t *testing.T, cfg StackConfig) Stack
}

func TestMain(m *testing.M) {
	// Before any testcontainers call: the Ryuk reaper image cannot be
	// pulled here; every container and network is removed by t.Cleanup.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	suite.root = root
	dir, err := os.MkdirTemp("", "archiver-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	suite.bins, suite.binErr = buildBinaries(root, filepath.Join(dir, "bin"))
	if suite.binErr != nil {
		fmt.Fprintln(os.Stderr, "integration: build:", suite.binErr)
	} else {
		logf("built webhook, worker, ghsim and archivectl (static) in %s", suite.bins.buildTime.Round(time.Millisecond))
	}
	modes, err := selectModes(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	suite.modes = modes
	return m.Run()
}

// selectModes applies ARCHIVER_INTEGRATION_MODE and prepares docker mode
// (engine, images) when it is selected.
func selectModes(dir string) ([]*mode, error) {
	want := strings.ToLower(strings.TrimSpace(os.Getenv(EnvMode)))
	ci := os.Getenv(EnvCI) == "1"
	var dockerErr error
	var env *dockerEnv
	if want != "process" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		env, dockerErr = prepareDocker(ctx, dir)
	}
	process := &mode{name: "process", err: suite.binErr, start: startProcessStack}
	docker := &mode{name: "docker", err: dockerErr, start: func(t *testing.T, cfg StackConfig) Stack { return startDockerStack(t, env, cfg) }}
	if suite.binErr != nil {
		docker.err = suite.binErr
	}
	switch want {
	case "process":
		logf("mode: process (%s=process)", EnvMode)
		return []*mode{process}, nil
	case "docker":
		logf("mode: docker (%s=docker)", EnvMode)
		return []*mode{docker}, nil
	case "both":
		logf("mode: process and docker (%s=both)", EnvMode)
		return []*mode{process, docker}, nil
	case "":
		switch {
		case dockerErr == nil:
			logf("mode: process and docker (a Docker engine answers)")
			return []*mode{process, docker}, nil
		case ci:
			// CI must test both: docker mode runs and fails loudly.
			logf("mode: process and docker (%s=1); docker mode will FAIL: %v", EnvCI, dockerErr)
			return []*mode{process, docker}, nil
		case errors.Is(dockerErr, errNoEngine):
			logf("mode: process only; %v", dockerErr)
			return []*mode{process}, nil
		default:
			// An engine answers but docker mode cannot be prepared: that is
			// a failure, not a reason to test less.
			logf("mode: process and docker; docker mode will FAIL: %v", dockerErr)
			return []*mode{process, docker}, nil
		}
	default:
		return nil, fmt.Errorf("%s=%q: want process, docker or both", EnvMode, want)
	}
}

// eachMode runs test once per selected mode, as subtests named after the
// mode, each on a stack of its own started with cfg.
func eachMode(t *testing.T, cfg StackConfig, test func(t *testing.T, h *harness)) {
	t.Helper()
	if b := cfg.s3Backend(); b != S3MinIO {
		t.Logf("S3 backend %s: process mode only, no docker subtest (docker mode runs the images of deploy/compose.yaml, whose S3 is MinIO)", b)
	} else if cfg.ProcessOnly != "" {
		t.Logf("process mode only, no docker subtest: %s", cfg.ProcessOnly)
	}
	ran := false
	for _, m := range suite.modes {
		if cfg.NATSNodes > 1 && m.name != "docker" {
			// A NATS cluster with network partitions needs containers.
			continue
		}
		if (cfg.s3Backend() != S3MinIO || cfg.ProcessOnly != "") && m.name != "process" {
			continue
		}
		ran = true
		t.Run(m.name, func(t *testing.T) {
			if m.err != nil {
				t.Fatalf("%s mode cannot run: %v", m.name, m.err)
			}
			start := time.Now()
			s := m.start(t, cfg)
			h := newHarness(t, s, cfg)
			t.Logf("%s stack up in %s", m.name, time.Since(start).Round(time.Millisecond))
			test(t, h)
		})
	}
	switch {
	case !ran && cfg.NATSNodes > 1:
		t.Logf("docker-only test: docker mode is not selected (%s)", EnvMode)
	case !ran && cfg.ProcessOnly != "":
		t.Logf("process-only test (%s): process mode is not selected (%s)", cfg.ProcessOnly, EnvMode)
	case !ran:
		t.Logf("process-only test (S3 backend %s): process mode is not selected (%s)", cfg.s3Backend(), EnvMode)
	}
}

// buildBinaries compiles our commands once, statically (CGO_ENABLED=0), so
// the same files run as processes and in FROM-scratch images.
func buildBinaries(root, dir string) (binaries, error) {
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return binaries{}, err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "./cmd/webhook", "./cmd/worker", "./cmd/ghsim", "./cmd/archivectl")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return binaries{}, fmt.Errorf("go build ./cmd/webhook ./cmd/worker ./cmd/ghsim ./cmd/archivectl: %w\n%s", err, out.Bytes())
	}
	b := binaries{
		Dir:       dir,
		Webhook:   filepath.Join(dir, "webhook"),
		Worker:    filepath.Join(dir, "worker"),
		Sim:       filepath.Join(dir, "ghsim"),
		Ctl:       filepath.Join(dir, "archivectl"),
		buildTime: time.Since(start),
	}
	return b, nil
}

// repoRoot is the directory holding go.mod, above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "integration: "+format+"\n", args...)
}
