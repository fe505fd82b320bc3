package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// phaseResult collects one measured phase.
type phaseResult struct {
	ok, duplicates int
	total          int64 // accepted ops including warm-up and tail
	errors         map[string]int
	latencies      []time.Duration
	elapsed        time.Duration
	cpuSelf        time.Duration // this process's CPU in the window
	cpuNATS        time.Duration // the nats-server process's, if we started it
}

// rate is the measured operations per second.
func (r phaseResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// pct is the p-th percentile latency (100: the maximum), 0 if none.
func (r phaseResult) pct(p int) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, len(r.latencies)*p/100)]
}

// ms renders d in milliseconds with two decimals.
func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms" }

// String renders the result as the report's line(s) for phase name.
func (r phaseResult) String(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s %8.0f/s  p50 %s  p90 %s  p99 %s  max %s  (%d ok in %s",
		name+":", r.rate(), ms(r.pct(50)), ms(r.pct(90)), ms(r.pct(99)), ms(r.pct(100)), r.ok, r.elapsed.Round(time.Millisecond))
	if len(r.errors) > 0 {
		fmt.Fprintf(&b, ", errors %v", r.errors)
	}
	b.WriteString(")")
	if r.ok > 0 {
		fmt.Fprintf(&b, "\n%34s CPU per op: this process %.1fµs", "", float64(r.cpuSelf.Microseconds())/float64(r.ok))
		if r.cpuNATS > 0 {
			fmt.Fprintf(&b, ", nats-server %.1fµs", float64(r.cpuNATS.Microseconds())/float64(r.ok))
		}
	}
	return b.String()
}
