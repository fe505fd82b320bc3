package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// options are the command-line flags.
type options struct {
	label         string
	root          string
	webhookBin    string
	natsBin       string
	conns         int
	contentLength int64
	hold          time.Duration
	interval      time.Duration
	rssLimit      int64
	keep          bool
}

// parseFlags parses and checks the flags.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("webhookmem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.label, "label", "", "name of the result row, e.g. before or after")
	fs.StringVar(&o.root, "repo", "", "repository to build cmd/webhook from (default: the one holding the working directory)")
	fs.StringVar(&o.webhookBin, "webhook-bin", "", "webhook binary to measure instead of building -repo's cmd/webhook")
	fs.StringVar(&o.natsBin, "nats-bin", "", "nats-server binary (default <repo>/.cache/bin/nats-server, else PATH)")
	fs.IntVar(&o.conns, "conns", 1000, "slow connections held open")
	fs.Int64Var(&o.contentLength, "content-length", 26_000_000, "Content-Length the slow connections announce")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "how long to hold the slow connections and send valid deliveries once all are open")
	fs.DurationVar(&o.interval, "interval", 20*time.Millisecond, "pause between valid deliveries (0: back to back)")
	rssLimit := fs.Int64("rss-limit-mib", 3072, "kill the webhook and report the run as aborted once its VmRSS passes this")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.conns < 1 || o.hold <= 0 || *rssLimit <= 0 {
		return o, errors.New("-conns, -hold and -rss-limit-mib must be positive")
	}
	o.rssLimit = *rssLimit * mib
	return o, nil
}
