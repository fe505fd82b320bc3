package main

import (
	"fmt"
	"io"
)

// report prints the results as Markdown.
func (b *bench) report(w io.Writer) {
	fmt.Fprintf(w, "| round | size | tool | part size | seconds | MiB/s | peak RSS MiB | sha256 |\n")
	fmt.Fprintf(w, "|---:|---:|---|---:|---:|---:|---:|---|\n")
	for _, r := range b.results {
		part := "-"
		if r.tool == "worker" {
			part = "default (16 MiB)"
			if r.partSize > 0 {
				part = fmtSize(r.partSize)
			}
		}
		ok := "ok"
		if !r.verified {
			ok = "MISMATCH: " + r.note
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f | %.0f | %.1f | %s |\n",
			r.round, fmtSize(r.size), r.tool, part, r.wall.Seconds(), r.mibps(), float64(r.peakRSS)/mib, ok)
	}

	fmt.Fprintf(w, "\n| round | size | worker part size | worker MiB/s | rclone MiB/s | worker/rclone |\n")
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.results {
		if r.tool != "worker" {
			continue
		}
		for _, c := range b.results {
			if c.tool == "rclone" && c.round == r.round && c.size == r.size {
				part := "default"
				if r.partSize > 0 {
					part = fmtSize(r.partSize)
				}
				fmt.Fprintf(w, "| %d | %s | %s | %.0f | %.0f | %.2f× |\n", r.round, fmtSize(r.size), part, r.mibps(), c.mibps(), r.mibps()/c.mibps())
			}
		}
	}

	io.WriteString(w, "\nworker process:\n\n")
	io.WriteString(w, "| round | size | part size | publish→manifest s | transfer s (worker log) | idle RSS MiB | max sampled VmRSS MiB | VmHWM MiB | WARN lines |\n")
	io.WriteString(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.results {
		if r.tool != "worker" {
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %s | %.2f | %.2f | %.1f | %.1f | %.1f | %d |\n", r.round, fmtSize(r.size), partName(r),
			r.wall.Seconds(), r.transfer.Seconds(), float64(r.idleRSS)/mib, float64(r.sampledRSS)/mib, float64(r.peakRSS)/mib, r.warnings)
	}

	io.WriteString(w, "\nCPU and machine during each timed part (\"bench\" is this process: the simulator's blob host, NATS, polling; "+
		"\"others\" is every other process on the machine; pressure is PSI \"some\"; a stall is the longest time the blob host served no byte):\n\n")
	io.WriteString(w, "| round | size | tool | part size | CPU s tool | CPU s MinIO | CPU s bench | CPU s per GiB | cores busy | others, cores | CPU pressure % | IO pressure % | max dirty MiB | longest stall s |\n")
	io.WriteString(w, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.results {
		all := (r.cpuTool + r.cpuMinIO + r.cpuBench).Seconds()
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %d | %.1f |\n",
			r.round, fmtSize(r.size), r.tool, partName(r), r.cpuTool.Seconds(), r.cpuMinIO.Seconds(), r.cpuBench.Seconds(),
			all/(float64(r.size)/(1<<30)), all/r.wall.Seconds(), r.cpuOthers.Seconds()/r.wall.Seconds(),
			100*r.watch.cpuPressure, 100*r.watch.ioPressure, r.watch.maxDirty/mib, r.watch.stall.Seconds())
	}
}
