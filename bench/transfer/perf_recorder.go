package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
)

// perfRecorder is a `perf record` attached to a process.
type perfRecorder struct{ c *benchkit.Process }

// startPerf attaches perf to pid when -perf is set.
func (b *bench) startPerf(pid int, name string) *perfRecorder {
	if b.opt.perfDir == "" || pid == 0 {
		return &perfRecorder{}
	}
	if err := os.MkdirAll(b.opt.perfDir, 0o755); err != nil {
		b.log.Printf("perf: %v", err)
		return &perfRecorder{}
	}
	out := filepath.Join(b.opt.perfDir, name+".data")
	c, err := benchkit.StartProcess("perf", []string{"record", "-g", "-F", "499", "-p", strconv.Itoa(pid), "-o", out}, os.Environ(), filepath.Join(b.opt.perfDir, name+".log"), nil)
	if err != nil {
		b.log.Printf("perf: %v", err)
		return &perfRecorder{}
	}
	time.Sleep(200 * time.Millisecond) // let it attach
	return &perfRecorder{c: c}
}

// stop ends the recording (SIGINT, so that perf writes its file); it is
// idempotent.
func (p *perfRecorder) stop() {
	if p.c != nil {
		p.c.Stop(syscall.SIGINT, 10*time.Second)
		p.c = nil
	}
}
