// Command transfer benchmarks one artifact going GitHub (the simulator) →
// worker → S3 (MinIO) on loopback, against `rclone copyurl` of the same
// bytes into the same MinIO, in the same run.
//
// It builds cmd/worker, starts MinIO (a child process), an embedded NATS
// JetStream server and the GitHub simulator (both in this process), then for
// every size and round:
//
//   - worker: a fresh worker process (so its VmHWM is per size) gets one
//     run event; the time is from the publish until the run's manifest.json
//     is in MinIO, and the peak RSS is VmHWM read just before the worker is
//     stopped (VmRSS is also sampled every 100 ms);
//   - rclone: `rclone copyurl` of a freshly signed blob URL of the same
//     artifact; the time is the process's wall time and the peak RSS its
//     maximum resident set (GNU time's %M, else its VmHWM polled until it
//     exits).
//
// Before each timed leg the page cache is flushed (sync) and MinIO is given
// a few seconds to finish background work (deleting the previous objects),
// so that one leg's leftovers do not slow the next.
//
// Every object is checked afterwards: size, the manifest's sha256 against
// the simulator's, and (with -readback) the SHA-256 of the object read back
// from MinIO. The results are printed as Markdown tables on stdout; progress
// goes to stderr.
//
//	go run ./bench/transfer -sizes 1GiB,4GiB -runs 2
//	go run ./bench/transfer -sizes 1GiB -part-sizes 16MiB,64MiB
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
		fmt.Fprintln(os.Stderr, "transfer:", err)
		os.Exit(1)
	}
}
