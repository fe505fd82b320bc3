package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/destination"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// usage is cmd/demo's -h.
const usage = `Usage: demo [--dest URL] [-v]

Runs the whole artifact-archiver flow in one process on embedded defaults:
an embedded NATS JetStream server, the GitHub simulator with a few
repositories and runs, the webhook and a worker. It sends signed deliveries
(plus a redelivery and a forged one), waits for every run's manifest and
prints what was archived. It needs no setup.

Flags:
`

// afterwards is the end of cmd/demo's -h.
const afterwards = `
Afterwards:
  ARCHIVER_DESTINATION=file://./archive-demo go run ./cmd/archivectl ls
  ARCHIVER_DESTINATION=file://./archive-demo go run ./cmd/archivectl verify --deep
`

// Env is the demo's environment table: the archive's location. --dest
// wins over ARCHIVER_DESTINATION.
func Env() *service.Env { return env(new(Options)) }

func env(o *Options) *service.Env {
	var e service.Env
	destination.Env(&e, &o.Destination, DefaultDestination, &o.ForcePathStyle)
	return &e
}

// Main is cmd/demo: it parses args and the environment and runs the demo.
// It returns the process exit code: 0 on success, 1 on failure, 2 on a
// usage error.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dest := fs.String("dest", "", "archive `URL` (default $ARCHIVER_DESTINATION, else "+DefaultDestination+")")
	verbose := fs.Bool("v", false, "show the components' logs")
	o := Options{Timeout: 2 * time.Minute}
	e := env(&o)
	printUsage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprint(w, usage)
		fs.PrintDefaults()
		fmt.Fprintln(w)
		service.WriteUsage(w, e)
		fmt.Fprint(w, afterwards)
	}
	fs.Usage = func() {} // printed below, to stdout for -h
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		printUsage(stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "demo: takes no arguments")
		return 2
	}
	if err := e.Parse(getenv); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	if *dest != "" {
		o.Destination = *dest
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := Run(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
