package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (it
// listens on port 0 and closes the listener). Good enough for tests.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testserver: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// process is a server running as a child process, with its output appended
// to a log file so that a failure can show it.
type process struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when cmd.Wait returns
	waitErr error
}

func startProcess(bin string, args, env []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends sig and waits for the process to exit, escalating to SIGKILL
// after grace.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// logTail returns the last few KiB of the process output.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// waitReady polls ready until it returns nil, the process exits, or the
// deadline passes. The poll interval grows from 10 ms to 200 ms.
func (p *process) waitReady(ctx context.Context, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	interval := 10 * time.Millisecond
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		timer := time.NewTimer(interval)
		select {
		case <-p.exited:
			timer.Stop()
			return fmt.Errorf("process exited before it was ready (%v)", p.waitErr)
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("not ready after %s: %w", startTimeout, errors.Join(ctx.Err(), last))
		case <-timer.C:
		}
		interval = min(interval*2, 200*time.Millisecond)
	}
}

// httpReady returns a readiness probe expecting 200 from GET url.
func httpReady(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// restartable is a server process that a test kills, as a crash would,
// and starts again: the lifecycle of [MinIOServer] and [VersityGWServer].
// Run n writes its output to <logDir>/<name>-n.log.
type restartable struct {
	t      testing.TB
	name   string // "minio", "versitygw": for log files and failures
	bin    string
	logDir string

	mu   sync.Mutex
	proc *process
	runs int
}

// start starts the process with args and env, unless it runs, and waits
// until ready answers nil. It fails the test, naming endpoint, if the
// process does not start or become ready.
func (r *restartable) start(endpoint string, args, env []string, ready func(context.Context) error) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return
	}
	r.runs++
	logPath := filepath.Join(r.logDir, r.name+"-"+strconv.Itoa(r.runs)+".log")
	p, err := startProcess(r.bin, args, env, logPath)
	if err != nil {
		r.t.Fatalf("testserver: %s: %v", r.name, err)
	}
	if err := p.waitReady(r.t.Context(), ready); err != nil {
		p.stop(syscall.SIGKILL, 0)
		r.t.Fatalf("testserver: %s %s (%s): %v\n--- %s log ---\n%s", r.name, endpoint, r.bin, err, r.name, p.logTail())
	}
	r.proc = p
}

// kill kills the process with SIGKILL and waits for it to exit. Killing a
// stopped process does nothing.
func (r *restartable) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	r.proc.stop(syscall.SIGKILL, 0)
	r.proc = nil
}
