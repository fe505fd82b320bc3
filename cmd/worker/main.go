// Command worker archives the artifacts of completed GitHub Actions runs:
// it consumes run events from NATS JetStream and streams every artifact
// into S3 (or a local directory), verified, with a manifest per run
// attempt. Run it with -h for its configuration.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()
	if err := worker.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}
