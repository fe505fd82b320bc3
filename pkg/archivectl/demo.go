package archivectl

import (
	"context"
	"flag"
	"log/slog"
	"strconv"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/demo"
)

var demoCommand = &command{
	name:     "demo",
	synopsis: "[--dest URL] [-v]",
	summary:  "run the whole flow in one process on embedded defaults",
	help: `Starts an embedded NATS JetStream server, the GitHub simulator with a few
repositories and runs, the webhook and a worker, sends signed deliveries
(plus a redelivery and a forged one) and prints what was archived. It needs
no setup: the archive goes to file://./archive-demo unless --dest or
ARCHIVER_DESTINATION names another (an s3:// destination uses the standard
AWS SDK chain and ARCHIVER_S3_FORCE_PATH_STYLE).

Example:
  go run ./cmd/archivectl demo && ARCHIVER_DESTINATION=file://./archive-demo go run ./cmd/archivectl ls`,
	env: []envGroup{envDestination},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &demoOptions{}
		fs.StringVar(&o.dest, "dest", "", "archive `URL` (default $ARCHIVER_DESTINATION, else "+demo.DefaultDestination+")")
		fs.BoolVar(&o.verbose, "v", false, "show the components' logs")
		return o.run
	},
}

type demoOptions struct {
	dest    string
	verbose bool
}

func (o *demoOptions) run(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 {
		return usagef("demo takes no arguments")
	}
	dest := o.dest
	if dest == "" {
		dest = c.getenv("ARCHIVER_DESTINATION")
	}
	level := slog.LevelError
	if o.verbose {
		level = slog.LevelInfo
	}
	pathStyle, _ := strconv.ParseBool(c.getenv("ARCHIVER_S3_FORCE_PATH_STYLE"))
	return demo.Run(ctx, demo.Options{
		Destination:    dest,
		ForcePathStyle: pathStyle,
		Logger:         slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level})),
		Timeout:        2 * time.Minute,
	}, c.stdout)
}
