package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// childLeg is a leg that runs one command to copy the artifact (rclone,
// bareput).
type childLeg struct {
	tool string // legRclone, legBare
	bin  string
	args []string
	env  []string
	// stdout, if set, also receives the command's standard output.
	stdout io.Writer
}

// measureChild runs the leg's command once as the timed part: its wall
// time, the CPU it and the S3 server used, its peak RSS (GNU time's %M,
// else its VmHWM polled until it exits), and the bytes the blob host
// served for art. The caller verifies what was written.
func (b *bench) measureChild(ctx context.Context, l childLeg, art ghsim.Artifact, runID int64) (result, error) {
	res := result{size: art.Size, tool: l.tool}
	tag := fmt.Sprintf("%s-%d", l.tool, runID)
	bin, args := l.bin, l.args
	rssFile := filepath.Join(b.dir, tag+".maxrss")
	if b.gnuTime != "" {
		bin, args = b.gnuTime, append([]string{"-f", "%M", "-o", rssFile, l.bin}, l.args...)
	}
	blobBefore := b.sim.Stats().BlobBytesByArtifact[art.ID]
	b.settle(ctx)
	progress := b.watchProgress(art.ID)
	defer progress.stop()
	cpu := b.startCPU(0)
	start := time.Now()
	c, err := benchkit.StartProcess(bin, args, l.env, filepath.Join(b.dir, tag+".log"), l.stdout)
	if err != nil {
		return res, err
	}
	var hwm *benchkit.PeakSampler
	if b.gnuTime == "" {
		// Not wait4's ru_maxrss: a child spawned by Go (vfork) is charged
		// this process's RSS at spawn time.
		hwm = benchkit.SamplePeak(c.Pid(), "VmHWM", 20*time.Millisecond)
		defer hwm.Stop()
	}
	prof := &perfRecorder{}
	if b.opt.perfDir != "" {
		pid := c.Pid()
		if b.gnuTime != "" { // profile the command, not GNU time
			pid = childPid(pid)
		}
		prof = b.startPerf(pid, fmt.Sprintf("%s-%s-run%d", l.tool, strings.ReplaceAll(fmtSize(art.Size), " ", ""), runID))
	}
	defer prof.stop()
	select {
	case <-c.Done():
	case <-time.After(deadlineFor(art.Size)):
		c.Stop(syscall.SIGKILL, 0)
		return res, errors.New(l.tool + " timed out")
	case <-ctx.Done():
		c.Stop(syscall.SIGKILL, 0)
		return res, ctx.Err()
	}
	res.wall = time.Since(start)
	_, res.cpuServer, res.cpuBench, res.cpuOthers = cpu.stop()
	res.watch = progress.stop()
	res.cpuTool = c.ProcessState().UserTime() + c.ProcessState().SystemTime()
	res.cpuOthers -= res.cpuTool
	if !c.ProcessState().Success() {
		return res, fmt.Errorf("%s: %v: %s", l.tool, c.ProcessState(), c.LogTail())
	}
	if b.gnuTime != "" {
		data, err := os.ReadFile(rssFile)
		if err != nil {
			return res, err
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(lastLine(string(data))), 10, 64)
		if err != nil {
			return res, fmt.Errorf("GNU time output %q: %w", data, err)
		}
		res.peakRSS = kb * 1024
	} else {
		res.peakRSS = hwm.Stop()
	}
	res.blobBytes = b.sim.Stats().BlobBytesByArtifact[art.ID] - blobBefore
	return res, nil
}

// childPid returns the first child of pid, waiting up to a second for it
// (pid itself if there is none).
func childPid(pid int) int {
	for range 100 {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(data)); len(f) > 0 {
			if c, err := strconv.Atoi(f[0]); err == nil {
				return c
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pid
}

// lastLine returns the last line of s, trimmed.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// checkCopy returns what is wrong with a leg's copy at key: the object
// (size, and its SHA-256 read back) and the bytes served.
func (b *bench) checkCopy(ctx context.Context, res *result, key, want string) {
	var problems []string
	if p := b.checkObject(ctx, key, res.size, want); p != "" {
		problems = append(problems, p)
	}
	if res.blobBytes != res.size {
		problems = append(problems, fmt.Sprintf("blob host served %d bytes for %d", res.blobBytes, res.size))
	}
	if res.note != "" {
		problems = append(problems, res.note)
	}
	res.note = strings.Join(problems, "; ")
	res.verified = len(problems) == 0
	if !b.opt.keep {
		b.deletePrefix(ctx, key)
	}
}
