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
	runs      int
	keep      bool
	readback  bool
	rclone    string
	minio     string
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
	runs := fs.Int("runs", 1, "rounds; the order worker/rclone alternates between rounds")
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
	o := options{runs: *runs, keep: *keep, readback: *readback, rclone: *rclone, minio: *minio, root: *root, perfDir: *perfDir, gnuTime: *gnuTime}
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil || len(o.sizes) == 0 {
		return options{}, fmt.Errorf("-sizes %q: %v", *sizes, err)
	}
	o.partSizes = []int64{0}
	if *parts != "" {
		if o.partSizes, err = parseSizes(*parts); err != nil {
			return options{}, fmt.Errorf("-part-sizes %q: %v", *parts, err)
		}
	}
	if o.runs < 1 {
		return options{}, fmt.Errorf("-runs %d: want >= 1", o.runs)
	}
	return o, nil
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
