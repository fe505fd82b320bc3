package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// watch is what progressWatcher saw during one timed leg.
type watch struct {
	// stall is the longest time the blob host served no byte of the
	// artifact (sampled every 100 ms); stalls describes every stall of a
	// second or more.
	stall  time.Duration
	stalls []string
	// maxDirty is the highest Dirty+Writeback of /proc/meminfo.
	maxDirty int64
	// cpuPressure and ioPressure are the machine's PSI "some" shares
	// (/proc/pressure): the fraction of the time at least one task was
	// waiting for a CPU, or blocked on I/O.
	cpuPressure, ioPressure float64
}

// progressWatcher samples the bytes the blob host served for an artifact,
// the page cache and the machine's pressure.
type progressWatcher struct {
	quit chan struct{}
	done chan watch
	once sync.Once
	last watch
}

func (b *bench) watchProgress(id int64) *progressWatcher {
	p := &progressWatcher{quit: make(chan struct{}), done: make(chan watch, 1)}
	go func() {
		t := time.NewTicker(sampleGap)
		defer t.Stop()
		var w watch
		var seen int64 = -1
		start := time.Now()
		since := start
		cpu0, io0 := psiSome("cpu"), psiSome("io")
		var stallNote string
		for {
			select {
			case <-p.quit:
				if d := time.Since(start); d > 0 {
					w.cpuPressure = float64(psiSome("cpu")-cpu0) / float64(d)
					w.ioPressure = float64(psiSome("io")-io0) / float64(d)
				}
				p.done <- w
				return
			case now := <-t.C:
				n := b.sim.Stats().BlobBytesByArtifact[id]
				dirty := meminfo("Dirty") + meminfo("Writeback")
				w.maxDirty = max(w.maxDirty, dirty)
				stalled := now.Sub(since)
				if n != seen {
					if stalled >= time.Second && seen >= 0 {
						w.stalls = append(w.stalls, fmt.Sprintf("%.1fs without a byte from %.1fs on (%d MiB served; %s)",
							stalled.Seconds(), since.Sub(start).Seconds(), seen/mib, stallNote))
					}
					seen, since, stallNote = n, now, ""
					continue
				}
				w.stall = max(w.stall, stalled)
				if stalled >= 500*time.Millisecond && stallNote == "" {
					stallNote = fmt.Sprintf("at 0.5s into it: page cache dirty+writeback %d MiB, S3 server threads in D state %d",
						dirty/mib, dStateThreads(b.server.Pid()))
				}
			}
		}
	}()
	return p
}

// stop returns what was seen; it is idempotent.
func (p *progressWatcher) stop() watch {
	p.once.Do(func() {
		close(p.quit)
		p.last = <-p.done
	})
	return p.last
}

// psiSome returns the "some" total of /proc/pressure/<kind>, 0 if
// unavailable.
func psiSome(kind string) time.Duration {
	data, err := os.ReadFile("/proc/pressure/" + kind)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	_, total, ok := strings.Cut(line, "total=")
	if !ok {
		return 0
	}
	us, _ := strconv.ParseInt(strings.TrimSpace(total), 10, 64)
	return time.Duration(us) * time.Microsecond
}

// meminfo returns a /proc/meminfo field in bytes.
func meminfo(field string) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// dStateThreads counts a process's threads in uninterruptible sleep
// (usually waiting for the disk).
func dStateThreads(pid int) int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	n := 0
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			continue
		}
		if _, rest, ok := strings.Cut(string(data), ") "); ok && strings.HasPrefix(rest, "D") {
			n++
		}
	}
	return n
}
