package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Pinned versions of the server binaries built by [Binary].
const (
	MinIOModule      = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
	NATSServerModule = "github.com/nats-io/nats-server/v2@v2.15.2"
)

// RepoRoot returns the directory holding go.mod, found by walking up from
// the working directory (a package directory under go test).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testserver: getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testserver: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of an executable named name: $envVar if set, else
// <repo root>/.cache/bin/name, else name on PATH. If none exists it runs
// "CGO_ENABLED=0 go install module" into <repo root>/.cache/bin while holding
// an exclusive lock on <repo root>/.cache/bin/.name.lock, so that concurrent
// test binaries build it once; the binary appears there atomically.
func Binary(t testing.TB, name, envVar, module string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("testserver: $%s=%s: %v", envVar, p, err)
		}
		return p
	}
	binDir := filepath.Join(RepoRoot(t), ".cache", "bin")
	cached := filepath.Join(binDir, name)
	if isExecutable(cached) {
		return cached
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}

	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatalf("testserver: create %s: %v", binDir, err)
	}
	unlock, err := lockFile(filepath.Join(binDir, "."+name+".lock"))
	if err != nil {
		t.Fatalf("testserver: lock build of %s: %v", name, err)
	}
	defer unlock()
	if isExecutable(cached) { // another test binary built it while we waited
		return cached
	}

	t.Logf("testserver: %s not found; building %s into %s (minutes)", name, module, binDir)
	start := time.Now()
	// Build into a fresh directory and rename into place, so that nobody
	// (checking without the lock) sees a half-written binary.
	gobin, err := os.MkdirTemp(binDir, ".build-")
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	defer os.RemoveAll(gobin)
	cmd := exec.CommandContext(t.Context(), "go", "install", module)
	cmd.Dir = binDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+gobin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("testserver: go install %s: %v\n%s", module, err, out.Bytes())
	}
	if err := os.Rename(filepath.Join(gobin, name), cached); err != nil {
		t.Fatalf("testserver: go install %s did not produce %s: %v\n%s", module, name, err, out.Bytes())
	}
	t.Logf("testserver: built %s in %s", cached, time.Since(start).Round(time.Second))
	return cached
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// lockFile takes an exclusive flock on path, creating it, and returns the
// function that releases it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
