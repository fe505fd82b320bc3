package benchkit

import (
	"sync"
	"time"
)

// PeakSampler polls one "kB" field of a process's /proc/<pid>/status (VmRSS
// for the highest sampled resident set, VmHWM for the kernel's own peak) and
// keeps the highest value seen.
type PeakSampler struct {
	quit chan struct{}
	done chan int64
	once sync.Once
	peak int64
}

// SamplePeak reads field of process pid now and then every gap until Stop.
// Reads that fail (the process has exited) are skipped.
func SamplePeak(pid int, field string, gap time.Duration) *PeakSampler {
	s := &PeakSampler{quit: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(gap)
		defer t.Stop()
		for {
			if v, err := ProcStatus(pid, field); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-s.quit:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the highest value seen, in bytes (0 if
// no read succeeded). It is idempotent.
func (s *PeakSampler) Stop() int64 {
	s.once.Do(func() {
		close(s.quit)
		s.peak = <-s.done
	})
	return s.peak
}
