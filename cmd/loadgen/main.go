// Command loadgen measures the webhook: signed, realistic workflow_run
// deliveries (distinct run ids, so none is a duplicate) from N concurrent
// keep-alive connections for a duration, each answered only after
// JetStream's acknowledgement; and, in the same run, the raw synchronous
// JetStream publish rate of the same compact event with the same
// concurrency, which bounds the webhook. Run "loadgen -h" for the flags;
// docs/benchmarks.md has the figures.
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
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
