package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// report prints the measurement as a Markdown table of one row.
func (m *measurement) report(w io.Writer) {
	var answers []string
	m.answered.Range(func(k, v any) bool {
		answers = append(answers, fmt.Sprintf("%s×%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(answers)
	var others []string
	for k, n := range m.otherStatus {
		others = append(others, fmt.Sprintf("%s×%d", k, n))
	}
	slices.Sort(others)
	p50, p99 := "-", "-"
	if len(m.latencies) > 0 {
		slices.Sort(m.latencies)
		p50, p99 = ms(percentile(m.latencies, 0.50)), ms(percentile(m.latencies, 0.99))
	}
	verdict := "completed"
	if m.aborted != "" {
		verdict = "aborted: " + m.aborted
	}
	rss5s := "-"
	if m.rss5s > 0 {
		rss5s = strconv.FormatInt(m.rss5s/mib, 10)
	}
	fmt.Fprintln(w, "| run | slow conns (opened in total) | attack s | idle VmRSS MiB | VmRSS at 5 s MiB | peak VmHWM MiB | max sampled VmRSS MiB | valid sent | valid 202 | valid other | valid p50 | valid p99 | slow conns answered | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %s | %d (%d) | %.1f | %d | %s | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n",
		cmpOr(m.opt.label, "-"), m.opt.conns, m.opened.Load(), m.attackWindow.Seconds(), m.idleRSS/mib, rss5s, m.hwm/mib, m.maxRSS/mib,
		m.sent, m.accepted, cmpOr(strings.Join(others, " "), "0"), p50, p99,
		cmpOr(strings.Join(answers, " "), "none"), verdict)
}

// percentile returns the p-th quantile (0..1) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// ms renders d in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// cmpOr returns s, or def if s is empty.
func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
