package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// measureRclone copies the artifact with `rclone copyurl` from a freshly
// signed blob URL.
func (b *bench) measureRclone(ctx context.Context, art ghsim.Artifact, runID int64, want string) (result, error) {
	res := result{size: art.Size, tool: "rclone"}
	key := fmt.Sprintf("rclone/%d/%s.zip", runID, art.Name)
	conf := filepath.Join(b.dir, "rclone.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return res, err
	}
	env := append(baseEnv(),
		"RCLONE_CONFIG="+conf,
		"RCLONE_CONFIG_MINIO_TYPE=s3",
		"RCLONE_CONFIG_MINIO_PROVIDER=Minio",
		"RCLONE_CONFIG_MINIO_ENDPOINT="+b.endpoint,
		"RCLONE_CONFIG_MINIO_ACCESS_KEY_ID="+b.accessKey,
		"RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY="+b.secretKey,
		"RCLONE_CONFIG_MINIO_REGION="+region,
	)
	u, err := b.downloadURL(ctx, art.ID)
	if err != nil {
		return res, err
	}
	rargs := []string{"copyurl", u, "minio:" + bucket + "/" + key}
	bin, args := b.opt.rclone, rargs
	rssFile := filepath.Join(b.dir, fmt.Sprintf("rclone-%d.maxrss", runID))
	if b.gnuTime != "" {
		bin, args = b.gnuTime, append([]string{"-f", "%M", "-o", rssFile, b.opt.rclone}, rargs...)
	}
	logPath := filepath.Join(b.dir, fmt.Sprintf("rclone-%d.log", runID))
	blobBefore := b.sim.Stats().BlobBytesByArtifact[art.ID]
	b.settle(ctx)
	progress := b.watchProgress(art.ID)
	defer progress.stop()
	cpu := b.startCPU(0)
	start := time.Now()
	c, err := benchkit.StartProcess(bin, args, env, logPath, nil)
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
		if b.gnuTime != "" { // profile rclone, not GNU time
			pid = childPid(pid)
		}
		prof = b.startPerf(pid, fmt.Sprintf("rclone-%s-run%d", strings.ReplaceAll(fmtSize(art.Size), " ", ""), runID))
	}
	defer prof.stop()
	select {
	case <-c.Done():
	case <-time.After(deadlineFor(art.Size)):
		c.Stop(syscall.SIGKILL, 0)
		return res, errors.New("rclone timed out")
	case <-ctx.Done():
		c.Stop(syscall.SIGKILL, 0)
		return res, ctx.Err()
	}
	res.wall = time.Since(start)
	_, res.cpuMinIO, res.cpuBench, res.cpuOthers = cpu.stop()
	res.watch = progress.stop()
	res.cpuTool = c.ProcessState().UserTime() + c.ProcessState().SystemTime()
	res.cpuOthers -= res.cpuTool
	if !c.ProcessState().Success() {
		return res, fmt.Errorf("rclone: %v: %s", c.ProcessState(), c.LogTail())
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
	var problems []string
	if p := b.checkObject(ctx, key, art.Size, want); p != "" {
		problems = append(problems, p)
	}
	if res.blobBytes != art.Size {
		problems = append(problems, fmt.Sprintf("blob host served %d bytes for %d", res.blobBytes, art.Size))
	}
	res.note = strings.Join(problems, "; ")
	res.verified = len(problems) == 0
	if !b.opt.keep {
		b.deletePrefix(ctx, key)
	}
	return res, nil
}

// downloadURL asks the simulator's zip endpoint for a fresh signed blob
// URL (valid for a minute).
func (b *bench) downloadURL(ctx context.Context, id int64) (string, error) {
	u := fmt.Sprintf("%srepos/%s/%s/actions/artifacts/%d/zip", b.sim.URL(), owner, repoName, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "token "+ghToken)
	hc := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("GET %s: %s, want 302", u, resp.Status)
	}
	return resp.Header.Get("Location"), nil
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
