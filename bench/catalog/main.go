// Command catalog benchmarks the archive's query catalogue (issue 14): how
// long `archivectl find --sha` and `archivectl ls owner/repo --since 30d`
// take on an archive of many run attempts, from the catalogue and from
// the manifest scan that ls did before it (--from-manifests).
//
// It starts MinIO (a child process) and generates -attempts run attempts
// (default 100,000) in a few repositories (one big repository with most
// of the runs, and -small-repos small ones), their runs created over the
// last 365 days, each with 1 to 3 artifacts and a random head SHA, branch,
// workflow and artifact names. For every attempt it writes manifest.json
// (archive.Manifest.Encode at archive.Layout.ManifestKey) and its
// catalogue file, -writers at a time: a direct put of the bytes that
// catalog.Write would write (catalog.EncodeJSONL of catalog.Rows of the
// manifest, with its options), checked afterwards on a sample by running
// catalog.Write over it and comparing ETags.
//
// Then it measures, -rounds times each (a different attempt's SHA every
// round), through the real archivectl binary built from the repository:
//
//   - find --sha over every repository with only small files (before
//     compaction);
//   - catalog compaction of every closed month (catalog.Compact, timed
//     once);
//   - find --sha from the compacted catalogue, and its baseline: ls
//     --from-manifests --json over every repository (one GET per
//     manifest), searched for the SHA;
//   - ls owner/repo --since 30d --json of the big repository, from the
//     catalogue and with --from-manifests.
//
// Every answer is checked (the attempt's artifacts; the same run attempts
// from both paths). The results are printed as a Markdown table on
// stdout, with the machine and the generation time; progress goes to
// stderr.
//
//	go run ./bench/catalog
//	go run ./bench/catalog -attempts 10000 -rounds 5
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}
