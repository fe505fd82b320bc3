package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// options are the command-line flags.
type options struct {
	sizes     []int64
	partSizes []int64 // 0: the worker's default (ARCHIVER_PART_SIZE unset)
	rounds    int
	backends  []string // backendMinIO, backendVersityGW
	workers   []workerBuild
	bare      bool
	keep      bool
	readback  bool
	rclone    string
	minio     string
	versitygw string
	root      string
	perfDir   string
	gnuTime   bool
}

// parseFlags parses and checks the flags.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("transfer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := fs.String("sizes", "1GiB,4GiB", "comma-separated artifact sizes (B, KiB, MiB, GiB)")
	parts := fs.String("part-sizes", "", "comma-separated ARCHIVER_PART_SIZE values to measure the worker with (default: the worker's own default)")
	rounds := fs.Int("rounds", 1, "rounds; the order of the legs rotates between rounds, and the report gives each leg's median")
	fs.IntVar(rounds, "runs", 1, "the same as -rounds")
	backend := fs.String("backend", backendMinIO, "S3 server to write into: minio, versitygw or both")
	workers := fs.String("workers", "", "comma-separated label=path of more worker binaries to measure beside the one built from the repository (for example old=/tmp/old/worker)")
	bare := fs.Bool("bare", true, "measure the bare leg: the same bytes streamed by one PutObject with SHA-256 on the way (the one-stream limit)")
	versitygw := fs.String("versitygw", "", "versitygw binary (default $ARCHIVER_VERSITYGW_BIN, <repo>/.cache/bin/versitygw, or versitygw on PATH)")
	keep := fs.Bool("keep", false, "keep the work directory (MinIO data, objects, logs) instead of removing it")
	readback := fs.Bool("readback", true, "read every object back from MinIO and check its SHA-256 (outside the timed part)")
	rclone := fs.String("rclone", "/usr/bin/rclone", "rclone binary; empty to skip the rclone baseline")
	minio := fs.String("minio", "", "minio binary (default $ARCHIVER_MINIO_BIN, <repo>/.cache/bin/minio, or minio on PATH)")
	root := fs.String("repo", "", "repository root holding go.mod (default: found above the working directory)")
	gnuTime := fs.Bool("gnu-time", true, "measure rclone's peak RSS with GNU time's %M if /usr/bin/time is GNU time; false polls its VmHWM")
	perfDir := fs.String("perf", "", "record `perf record -g` profiles of the worker and rclone during each timed transfer into this directory")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o := options{rounds: *rounds, bare: *bare, keep: *keep, readback: *readback, rclone: *rclone, minio: *minio, versitygw: *versitygw,
		root: *root, perfDir: *perfDir, gnuTime: *gnuTime}
	switch *backend {
	case backendMinIO, backendVersityGW:
		o.backends = []string{*backend}
	case "both":
		o.backends = []string{backendMinIO, backendVersityGW}
	default:
		return options{}, fmt.Errorf("-backend %q: want minio, versitygw or both", *backend)
	}
	var err error
	if o.workers, err = parseWorkers(*workers); err != nil {
		return options{}, fmt.Errorf("-workers %q: %v", *workers, err)
	}
	if o.sizes, err = parseSizes(*sizes); err != nil || len(o.sizes) == 0 {
		return options{}, fmt.Errorf("-sizes %q: %v", *sizes, err)
	}
	o.partSizes = []int64{0}
	if *parts != "" {
		if o.partSizes, err = parseSizes(*parts); err != nil {
			return options{}, fmt.Errorf("-part-sizes %q: %v", *parts, err)
		}
	}
	if o.rounds < 1 {
		return options{}, fmt.Errorf("-rounds %d: want >= 1", o.rounds)
	}
	return o, nil
}

// workerBuild is a prebuilt worker binary measured under a label.
type workerBuild struct{ label, path string }

// parseWorkers parses a comma-separated list of label=path.
func parseWorkers(s string) ([]workerBuild, error) {
	var out []workerBuild
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		label, path, ok := strings.Cut(f, "=")
		if !ok || label == "" || path == "" {
			return nil, fmt.Errorf("%q: want label=path", f)
		}
		out = append(out, workerBuild{label: label, path: path})
	}
	return out, nil
}

// parseSizes parses a comma-separated list of sizes.
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseSize parses a positive size with an optional B/KiB/MiB/GiB (or
// K/M/G) suffix.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mul = strings.TrimSpace(rest), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional B/KiB/MiB/GiB suffix", s)
	}
	return n * mul, nil
}

// fmtSize renders n in the largest unit that divides it.
func fmtSize(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d B", n)
	}
}
