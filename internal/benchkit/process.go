package benchkit

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// logTailBytes is how much of a process's log [Process.LogTail] returns.
const logTailBytes = 4 << 10

// Process is a child process started by a benchmark, with its output
// appended to a log file. It runs in its own process group, so that a ^C to
// the benchmark does not reach it first (the benchmark decides when it
// stops), and on Linux the kernel kills it if the benchmark dies.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when cmd.Wait returns
	waitErr error
}

// StartProcess starts bin with env (nil: this process's environment) and
// its stdout and stderr appended to logPath; if tee is not nil, stdout is
// also written to it. It does not wait for anything.
func StartProcess(bin string, args, env []string, logPath string, tee io.Writer) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("benchkit: start %s: %w", bin, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if tee != nil {
		cmd.Stdout = io.MultiWriter(f, tee)
	}
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("benchkit: start %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and its log is closed.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ProcessState is the exited process's state (its CPU times and exit
// status); nil before Done is closed.
func (p *Process) ProcessState() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// State describes the process for an error message: "running", "exited 0"
// or how it ended.
func (p *Process) State() string {
	switch {
	case !p.Exited():
		return "running"
	case p.waitErr != nil:
		return p.waitErr.Error()
	default:
		return "exited 0"
	}
}

// Stop sends sig, waits up to grace for the process to exit, then kills it
// and waits. It does nothing if the process has exited.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Kill()
	}
}

// Kill kills the process and waits until it has exited.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// LogTail returns the last 4 KiB of the log (or why it cannot be read).
func (p *Process) LogTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}

// LogLines counts the lines of the log so far.
func (p *Process) LogLines() int {
	b, _ := os.ReadFile(p.logPath)
	return bytes.Count(b, []byte("\n"))
}
