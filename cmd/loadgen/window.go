package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
)

// window runs worker on o.conns goroutines: a warm-up, then the measured
// window. A worker loops until stop() reports true, calling measure with
// each op's latency and outcome ("ok", "dup" or an error key).
func window(ctx context.Context, o options, natsPID int, worker func(id int, stop func() bool, measure func(time.Duration, string)) error) (phaseResult, error) {
	res := phaseResult{errors: map[string]int{}}
	var measuring, stopped atomic.Bool
	var total atomic.Int64
	per := make([][]time.Duration, o.conns)
	counts := make([]map[string]int, o.conns)
	errs := make([]error, o.conns)
	var wg sync.WaitGroup
	for i := range o.conns {
		counts[i] = map[string]int{}
		wg.Go(func() {
			errs[i] = worker(i, stopped.Load, func(d time.Duration, outcome string) {
				if outcome == "ok" {
					total.Add(1)
				}
				if !measuring.Load() {
					return
				}
				counts[i][outcome]++
				if outcome == "ok" || outcome == "dup" {
					per[i] = append(per[i], d)
				}
			})
		})
	}
	benchkit.Sleep(ctx, o.warmup)
	cpu0, nats0 := benchkit.SelfCPU(), benchkit.ProcCPU(natsPID)
	start := time.Now()
	measuring.Store(true)
	benchkit.Sleep(ctx, o.duration)
	measuring.Store(false)
	res.elapsed = time.Since(start)
	res.cpuSelf, res.cpuNATS = benchkit.SelfCPU()-cpu0, benchkit.ProcCPU(natsPID)-nats0
	stopped.Store(true)
	wg.Wait()
	res.total = total.Load()
	for i := range o.conns {
		for k, v := range counts[i] {
			switch k {
			case "ok":
				res.ok += v
			case "dup":
				res.ok += v
				res.duplicates += v
			default:
				res.errors[k] += v
			}
		}
		res.latencies = append(res.latencies, per[i]...)
	}
	slices.Sort(res.latencies)
	return res, errors.Join(errs...)
}
