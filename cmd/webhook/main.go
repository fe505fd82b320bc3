// Command webhook receives GitHub workflow_run deliveries and stores every
// completed run as an event in NATS JetStream for the archive workers.
// Run "webhook -h" for its environment variables; see package
// github.com/artifact-archiver/artifact-archiver/pkg/webhook for what it
// answers and measures.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // from now on a second signal ends the process at once
	}()
	if err := webhook.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}
