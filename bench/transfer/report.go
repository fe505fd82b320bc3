package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// report prints the results as Markdown: every transfer, the median of
// the rounds per leg, the ratios of the worker to the bare PutObject and
// to rclone, then the worker processes and the CPU of each transfer.
func (b *bench) report(w io.Writer) {
	fmt.Fprintf(w, "| backend | round | size | leg | part size | seconds | MiB/s | peak RSS MiB | sha256 |\n")
	fmt.Fprintf(w, "|---|---:|---:|---|---:|---:|---:|---:|---|\n")
	for _, r := range b.results {
		ok := "ok"
		if !r.verified {
			ok = "MISMATCH: " + r.note
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %.2f | %.0f | %.1f | %s |\n",
			r.backend, r.round, fmtSize(r.size), r.leg(), partLabel(r), r.wall.Seconds(), r.mibps(), float64(r.peakRSS)/mib, ok)
	}

	groups := groupLegs(b.results)
	fmt.Fprintf(w, "\nMedian of the rounds:\n\n")
	fmt.Fprintf(w, "| backend | size | leg | part size | rounds | median MiB/s | min–max MiB/s | median peak RSS MiB | max peak RSS MiB |\n")
	fmt.Fprintf(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, g := range groups {
		speeds, rss := g.speeds(), g.rss()
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d | %.0f | %.0f–%.0f | %.1f | %.1f |\n", g.backend, fmtSize(g.size), g.leg, g.part,
			len(g.runs), median(speeds), slices.Min(speeds), slices.Max(speeds), median(rss), slices.Max(rss))
	}

	fmt.Fprintf(w, "\nWorker against the bare PutObject and rclone (ratios of the medians; each round's ratio in brackets):\n\n")
	fmt.Fprintf(w, "| backend | size | leg | part size | worker/bare | worker/rclone |\n")
	fmt.Fprintf(w, "|---|---:|---|---:|---:|---:|\n")
	for _, g := range groups {
		if g.tool != legWorker {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", g.backend, fmtSize(g.size), g.leg, g.part,
			ratio(g, find(groups, g.backend, g.size, legBare)), ratio(g, find(groups, g.backend, g.size, legRclone)))
	}

	io.WriteString(w, "\nworker process:\n\n")
	io.WriteString(w, "| backend | round | size | leg | part size | publish→manifest s | transfer s (worker log) | idle RSS MiB | max sampled VmRSS MiB | VmHWM MiB | WARN lines |\n")
	io.WriteString(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.results {
		if r.tool != legWorker {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %.2f | %.2f | %.1f | %.1f | %.1f | %d |\n", r.backend, r.round, fmtSize(r.size), r.leg(), partName(r),
			r.wall.Seconds(), r.transfer.Seconds(), float64(r.idleRSS)/mib, float64(r.sampledRSS)/mib, float64(r.peakRSS)/mib, r.warnings)
	}

	io.WriteString(w, "\nCPU and machine during each timed part (\"bench\" is this process: the simulator's blob host, NATS, polling; "+
		"\"others\" is every other process on the machine; pressure is PSI \"some\"; a stall is the longest time the blob host served no byte):\n\n")
	io.WriteString(w, "| backend | round | size | leg | part size | CPU s tool | CPU s S3 server | CPU s bench | CPU s per GiB | cores busy | others, cores | CPU pressure % | IO pressure % | max dirty MiB | longest stall s |\n")
	io.WriteString(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.results {
		all := (r.cpuTool + r.cpuServer + r.cpuBench).Seconds()
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %d | %.1f |\n",
			r.backend, r.round, fmtSize(r.size), r.leg(), partName(r), r.cpuTool.Seconds(), r.cpuServer.Seconds(), r.cpuBench.Seconds(),
			all/(float64(r.size)/(1<<30)), all/r.wall.Seconds(), r.cpuOthers.Seconds()/r.wall.Seconds(),
			100*r.watch.cpuPressure, 100*r.watch.ioPressure, r.watch.maxDirty/mib, r.watch.stall.Seconds())
	}
}

// partLabel renders a worker's part size for the first table, naming the
// default's value.
func partLabel(r result) string {
	if r.tool == legWorker && r.partSize == 0 && r.variant == "" {
		return fmt.Sprintf("default (%s)", fmtSize(archive.DefaultPartSize))
	}
	return partName(r)
}

// legGroup is one leg's results over the rounds, for one backend and size.
type legGroup struct {
	backend, leg, tool, part string
	size                     int64
	runs                     []result // by round
}

func (g legGroup) speeds() []float64 {
	out := make([]float64, len(g.runs))
	for i, r := range g.runs {
		out[i] = r.mibps()
	}
	return out
}

func (g legGroup) rss() []float64 {
	out := make([]float64, len(g.runs))
	for i, r := range g.runs {
		out[i] = float64(r.peakRSS) / mib
	}
	return out
}

// groupLegs groups the results by backend, size, leg and part size, in the
// order they first appear.
func groupLegs(results []result) []legGroup {
	var groups []legGroup
	for _, r := range results {
		i := slices.IndexFunc(groups, func(g legGroup) bool {
			return g.backend == r.backend && g.size == r.size && g.leg == r.leg() && g.part == partName(r)
		})
		if i < 0 {
			groups = append(groups, legGroup{backend: r.backend, leg: r.leg(), tool: r.tool, part: partName(r), size: r.size})
			i = len(groups) - 1
		}
		groups[i].runs = append(groups[i].runs, r)
	}
	return groups
}

// find returns the group of a leg without part sizes (rclone, bare), or
// nil.
func find(groups []legGroup, backend string, size int64, tool string) *legGroup {
	for i, g := range groups {
		if g.backend == backend && g.size == size && g.tool == tool {
			return &groups[i]
		}
	}
	return nil
}

// ratio renders worker/other of the medians and of each round ("-" if
// other was not measured).
func ratio(worker legGroup, other *legGroup) string {
	if other == nil {
		return "-"
	}
	var rounds []string
	for _, w := range worker.runs {
		for _, o := range other.runs {
			if o.round == w.round {
				rounds = append(rounds, fmt.Sprintf("%.2f", w.mibps()/o.mibps()))
			}
		}
	}
	return fmt.Sprintf("%.2f× (%s)", median(worker.speeds())/median(other.speeds()), strings.Join(rounds, ", "))
}

// median returns the median of v (the mean of the middle two for an even
// count); v is not modified.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
