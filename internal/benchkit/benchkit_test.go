package benchkit_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRepoRoot(t *testing.T) {
	root, err := benchkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("RepoRoot %s: %v", root, err)
	}
	if wd, _ := os.Getwd(); !strings.HasPrefix(wd, root) {
		t.Errorf("RepoRoot %s is not above the working directory %s", root, wd)
	}
}

func TestFindBinary(t *testing.T) {
	executable := func(path string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	root := t.TempDir()
	cached := executable(filepath.Join(root, ".cache", "bin", "srv"))
	onPath := executable(filepath.Join(t.TempDir(), "srv"))
	plainRoot := t.TempDir() // .cache/bin/srv is there but not executable
	if err := os.MkdirAll(filepath.Join(plainRoot, ".cache", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plainRoot, ".cache", "bin", "srv"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name, root, env, path, want string
	}{
		{name: "env first", root: root, env: "/somewhere/srv", path: filepath.Dir(onPath), want: "/somewhere/srv"},
		{name: "cache before PATH", root: root, path: filepath.Dir(onPath), want: cached},
		{name: "PATH without root", path: filepath.Dir(onPath), want: onPath},
		{name: "non-executable cache skipped", root: plainRoot, path: filepath.Dir(onPath), want: onPath},
		{name: "none", root: t.TempDir(), path: t.TempDir()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BENCHKIT_TEST_BIN", tt.env)
			t.Setenv("PATH", tt.path)
			got, err := benchkit.FindBinary(tt.root, "srv", "BENCHKIT_TEST_BIN")
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("FindBinary = %s, want an error", got)
			case tt.want != "" && (err != nil || got != tt.want):
				t.Errorf("FindBinary = %q, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	port, err := benchkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	l.Close()
}

func TestProcess(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "sh.log")
	var tee syncBuffer
	p, err := benchkit.StartProcess("/bin/sh", []string{"-c", "echo out; echo err >&2; exec sleep 60"}, nil, log, &tee)
	if err != nil {
		t.Fatal(err)
	}
	if err := benchkit.Poll(t.Context(), 10*time.Second, 10*time.Millisecond, func() (bool, error) {
		return p.LogLines() == 2, nil
	}); err != nil {
		t.Fatalf("log %q: %v", p.LogTail(), err)
	}
	if p.Exited() || p.State() != "running" || p.ProcessState() != nil || p.Pid() == 0 {
		t.Errorf("running process: Exited %v, State %q, ProcessState %v, Pid %d", p.Exited(), p.State(), p.ProcessState(), p.Pid())
	}
	if got := tee.String(); got != "out\n" {
		t.Errorf("tee got %q, want stdout only", got)
	}
	p.Stop(syscall.SIGTERM, 10*time.Second)
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if !p.Exited() || p.State() == "running" || p.ProcessState() == nil || p.ProcessState().Success() {
		t.Errorf("stopped process: Exited %v, State %q, ProcessState %v", p.Exited(), p.State(), p.ProcessState())
	}
	if tail := p.LogTail(); tail != "out\nerr\n" && tail != "err\nout\n" {
		t.Errorf("LogTail = %q", tail)
	}
	p.Stop(syscall.SIGTERM, 0) // a no-op once exited
}

func TestProcessStopEscalates(t *testing.T) {
	t.Parallel()
	// The shell ignores SIGTERM, so Stop must kill it.
	p, err := benchkit.StartProcess("/bin/sh", []string{"-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}, nil, filepath.Join(t.TempDir(), "log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := benchkit.Poll(t.Context(), 10*time.Second, 10*time.Millisecond, func() (bool, error) {
		return p.LogLines() == 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	p.Stop(syscall.SIGTERM, 50*time.Millisecond)
	if st := p.ProcessState(); st == nil || st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("ProcessState %v, want killed", st)
	}
}

func TestStartProcessMissing(t *testing.T) {
	if _, err := benchkit.StartProcess(filepath.Join(t.TempDir(), "nothing"), nil, nil, filepath.Join(t.TempDir(), "log"), nil); err == nil {
		t.Error("no error for a missing binary")
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if runtime.GOOS != "linux" {
		// No /proc: the readers must say so rather than report zeros.
		if _, err := benchkit.ProcStatus(pid, "VmRSS"); err == nil {
			t.Error("ProcStatus without /proc: no error")
		}
		return
	}
	rss, err := benchkit.ProcStatus(pid, "VmRSS")
	if err != nil || rss <= 0 {
		t.Errorf("ProcStatus VmRSS = %d, %v", rss, err)
	}
	if _, err := benchkit.ProcStatus(pid, "NoSuchField"); err == nil {
		t.Error("ProcStatus NoSuchField: no error")
	}
	// Use some CPU, so that /proc (10 ms ticks) shows it.
	for start := benchkit.SelfCPU(); benchkit.SelfCPU()-start < 30*time.Millisecond; {
	}
	if self, proc := benchkit.SelfCPU(), benchkit.ProcCPU(pid); proc <= 0 || proc > self+20*time.Millisecond {
		t.Errorf("ProcCPU = %s, SelfCPU = %s", proc, self)
	}
	if got := benchkit.ProcCPU(0); got != 0 {
		t.Errorf("ProcCPU(0) = %s", got)
	}

	s := benchkit.SamplePeak(pid, "VmRSS", time.Millisecond)
	peak := s.Stop()
	if peak <= 0 || s.Stop() != peak {
		t.Errorf("SamplePeak VmRSS = %d, then %d", peak, s.Stop())
	}
}

func TestPoll(t *testing.T) {
	t.Parallel()
	calls := 0
	err := benchkit.Poll(t.Context(), 10*time.Second, time.Millisecond, func() (bool, error) {
		calls++
		return calls == 3, nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Poll = %v after %d calls, want nil after 3", err, calls)
	}
	boom := errors.New("boom")
	if err := benchkit.Poll(t.Context(), 10*time.Second, time.Millisecond, func() (bool, error) { return false, boom }); err != boom {
		t.Errorf("Poll = %v, want %v", err, boom)
	}
	if err := benchkit.Poll(t.Context(), 20*time.Millisecond, time.Millisecond, func() (bool, error) { return false, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Poll = %v, want a deadline", err)
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	if !benchkit.Sleep(t.Context(), time.Millisecond) {
		t.Error("Sleep reported an early end")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if benchkit.Sleep(ctx, time.Hour) {
		t.Error("Sleep did not end with ctx")
	}
}

func TestNATS(t *testing.T) {
	ping := func(t *testing.T, url string) {
		t.Helper()
		var nc *nats.Conn
		if err := benchkit.Poll(t.Context(), 10*time.Second, 20*time.Millisecond, func() (bool, error) {
			var err error
			nc, err = nats.Connect(url)
			return err == nil, nil
		}); err != nil {
			t.Fatalf("connect %s: %v", url, err)
		}
		defer nc.Close()
		if _, err := nc.JetStream(); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("process", func(t *testing.T) {
		bin := testserver.Binary(t, "nats-server", "ARCHIVER_NATS_BIN", testserver.NATSServerModule)
		dir := t.TempDir()
		p, url, err := benchkit.StartNATSServer(bin, filepath.Join(dir, "js"), filepath.Join(dir, "nats.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop(syscall.SIGTERM, 10*time.Second)
		ping(t, url)
	})
	t.Run("embedded", func(t *testing.T) {
		ns, err := benchkit.StartEmbeddedNATS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		if !ns.JetStreamEnabled() {
			t.Error("JetStream is off")
		}
		ping(t, ns.ClientURL())
	})
}

// syncBuffer is a bytes.Buffer safe for the process's copying goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
