// Command demo runs the whole artifact-archiver flow in one process, on
// embedded defaults and with no setup: an embedded NATS JetStream server,
// the GitHub simulator with a few repositories and runs, the webhook and a
// worker. It sends signed deliveries (plus a redelivery and a forged one),
// waits for every run's manifest and prints what was archived.
//
//	go run ./cmd/demo [--dest URL] [-v]
//
// The archive goes to file://./archive-demo unless --dest or
// ARCHIVER_DESTINATION names another (an s3:// destination uses the
// standard AWS SDK chain and ARCHIVER_S3_FORCE_PATH_STYLE). Look at it with
// ARCHIVER_DESTINATION=file://./archive-demo go run ./cmd/archivectl ls.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/artifact-archiver/artifact-archiver/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(demo.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
