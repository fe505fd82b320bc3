// Command archivectl operates the artifact archive: it lists, fetches and
// audits archived GitHub Actions artifacts, backfills what was missed,
// recovers failed webhook deliveries and replays dead-lettered events.
// Run "archivectl -h" for its commands; see package
// github.com/artifact-archiver/artifact-archiver/pkg/archivectl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // from now on a second signal ends the process at once
	}()
	os.Exit(archivectl.Main(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
