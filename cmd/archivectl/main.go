// Command archivectl operates the artifact archive: it lists, fetches and
// audits archived GitHub Actions artifacts, backfills what was missed,
// recovers failed webhook deliveries and replays dead-lettered events.
// Run "archivectl -h" for its commands; see package
// github.com/artifact-archiver/artifact-archiver/pkg/archivectl.
package main

import (
	"context"
	"os"

	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

func main() {
	// The first SIGTERM or SIGINT cancels the command; a second one ends
	// the process at once.
	ctx, stop := service.SignalContext(context.Background())
	code := archivectl.Main(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
