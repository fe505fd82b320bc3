package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"
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

// envHelp lists the variables the demo reads.
const envHelp = `
Environment:
  ARCHIVER_DESTINATION          archive URL, if --dest is not given (default ` + DefaultDestination + `)
  ARCHIVER_S3_FORCE_PATH_STYLE  path-style S3 URLs, for MinIO and other S3-compatibles (default false)
  AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ...
                                the standard AWS SDK chain, for an s3:// destination

Afterwards:
  ARCHIVER_DESTINATION=file://./archive-demo go run ./cmd/archivectl ls
  ARCHIVER_DESTINATION=file://./archive-demo go run ./cmd/archivectl verify --deep
`

// Main is cmd/demo: it parses args and the environment and runs the demo.
// It returns the process exit code: 0 on success, 1 on failure, 2 on a
// usage error.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dest := fs.String("dest", "", "archive `URL` (default $ARCHIVER_DESTINATION, else "+DefaultDestination+")")
	verbose := fs.Bool("v", false, "show the components' logs")
	printUsage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprint(w, usage)
		fs.PrintDefaults()
		fmt.Fprint(w, envHelp)
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
	o := Options{Destination: *dest, Timeout: 2 * time.Minute}
	if o.Destination == "" {
		o.Destination = getenv("ARCHIVER_DESTINATION")
	}
	if s := getenv("ARCHIVER_S3_FORCE_PATH_STYLE"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			fmt.Fprintf(stderr, "demo: ARCHIVER_S3_FORCE_PATH_STYLE=%q: want true or false\n", s)
			return 2
		}
		o.ForcePathStyle = v
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
