// Command transfer benchmarks one artifact going GitHub (the simulator) →
// worker → S3 on loopback, against `rclone copyurl` of the same bytes and
// against a bare PutObject of them (the one-stream limit), into the same
// S3 server in the same run. The S3 server is MinIO, versitygw, or each in
// turn (-backend both).
//
// It builds cmd/worker and bareput, starts an embedded NATS JetStream
// server and the GitHub simulator (both in this process), then for every
// backend it starts the S3 server (a child process) and for every round and
// size measures, in an order that rotates with the round:
//
//   - worker: a fresh worker process (so its VmHWM is per size) gets one
//     run event; the time is from the publish until the run's manifest.json
//     is in S3, and the peak RSS is VmHWM read just before the worker is
//     stopped (VmRSS is also sampled every 100 ms). -workers adds prebuilt
//     worker binaries (an older build, say) as more worker legs;
//   - rclone: `rclone copyurl` of a freshly signed blob URL of the same
//     artifact;
//   - bare: bareput, which streams a freshly signed blob URL into one
//     PutObject with aws-sdk-go-v2 (unsigned payload, no SDK checksum),
//     computing SHA-256 on the way.
//
// For rclone and bare the time is the process's wall time and the peak RSS
// its maximum resident set (GNU time's %M, else its VmHWM polled until it
// exits).
//
// Before each timed leg the page cache is flushed (sync) and the S3 server
// is given a few seconds to finish background work (deleting the previous
// objects), so that one leg's leftovers do not slow the next.
//
// Every object is checked afterwards: size, the manifest's (or bareput's)
// sha256 against the simulator's, and (with -readback) the SHA-256 of the
// object read back. The results are printed as Markdown tables on stdout:
// every transfer, the median of the rounds per leg, and the worker's ratios
// to the bare leg and to rclone. Progress goes to stderr.
//
//	go run ./bench/transfer -backend both -sizes 1GiB,4GiB -rounds 3
//	go run ./bench/transfer -sizes 1GiB -part-sizes 8MiB,16MiB -workers old=/tmp/old/worker
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
