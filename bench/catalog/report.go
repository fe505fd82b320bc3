package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is what the benchmark measured.
type report struct {
	opt           options
	machine       string
	attempts      int
	artifacts     int
	repos         int
	generation    time.Duration
	partitions    int
	smallFiles    int
	compacted     int
	compactedRows int
	compaction    time.Duration
	lsRuns        int
	// Durations of every round.
	findSmall, findCatalogue, findScan []time.Duration
	lsCatalogue, lsScan                []time.Duration
}

func newReport(o options, minioBin string) *report {
	return &report{opt: o, machine: machine(minioBin)}
}

// machine describes where the benchmark runs: CPU, cores, memory, Go and
// MinIO versions.
func machine(minioBin string) string {
	cpu, mem := "unknown CPU", ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(line, "MemTotal:") {
			mem = ", " + strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ") + " RAM"
		}
	}
	minioVersion := "?"
	if out, err := exec.Command(minioBin, "--version").Output(); err == nil {
		minioVersion, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	return fmt.Sprintf("%s, %d cores%s, %s %s/%s, MinIO %s", cpu, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH, minioVersion)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func rounds(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// write prints the report as Markdown.
func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "Machine: %s\n\n", r.machine)
	fmt.Fprintf(w, "Archive: %d run attempts, %d artifacts, %d repositories (one with 80%% of the attempts), runs created over 365 days.\n",
		r.attempts, r.artifacts, r.repos)
	fmt.Fprintf(w, "Generation (manifest.json + catalogue file per attempt, %d writers): %s (%.0f attempts/s).\n",
		r.opt.writers, r.generation.Round(time.Second), float64(r.attempts)/r.generation.Seconds())
	fmt.Fprintf(w, "Catalogue before compaction: %d partitions, %d small files. Compaction of %d closed-month partitions (%d rows): %s.\n\n",
		r.partitions, r.smallFiles, r.compacted, r.compactedRows, r.compaction.Round(time.Second))
	speedup := func(base, ds []time.Duration) string {
		if m := median(ds); m > 0 {
			return fmt.Sprintf("%.0f×", median(base).Seconds()/m.Seconds())
		}
		return "-"
	}
	fmt.Fprintf(w, "Median of %d rounds for the compacted catalogue and of %d for the others (every round in seconds in brackets):\n\n", r.opt.rounds, r.opt.scanRounds)
	fmt.Fprintf(w, "| query | catalogue, compacted | catalogue, small files only | manifest scan (`--from-manifests`) | scan / compacted |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| `find --sha S` (all repositories) | %s (%s) | %s (%s) | %s (%s) | %s |\n",
		seconds(median(r.findCatalogue)), rounds(r.findCatalogue), seconds(median(r.findSmall)), rounds(r.findSmall),
		seconds(median(r.findScan)), rounds(r.findScan), speedup(r.findScan, r.findCatalogue))
	fmt.Fprintf(w, "| `ls %s/%s --since 30d` (%d run attempts) | %s (%s) | - | %s (%s) | %s |\n",
		owner, bigRepo, r.lsRuns, seconds(median(r.lsCatalogue)), rounds(r.lsCatalogue),
		seconds(median(r.lsScan)), rounds(r.lsScan), speedup(r.lsScan, r.lsCatalogue))
	verdict := "met"
	if median(r.findCatalogue) > 2*time.Second {
		verdict = "missed"
	}
	fmt.Fprintf(w, "\nTarget `find --sha` <= 2 s: %s.\n", verdict)
}
