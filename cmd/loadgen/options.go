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
	natsURL    string
	natsBin    string
	target     string
	secret     string
	conns      int
	duration   time.Duration
	warmup     time.Duration
	mode       string
	client     string
	logLevel   string
	cpuProfile string
}

// parseFlags parses and checks the flags.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.natsURL, "nats-url", "", "JetStream to use; empty starts one (see -nats-bin)")
	fs.StringVar(&o.natsBin, "nats-bin", "", "nats-server binary to start as a separate process with file storage; empty embeds the server in this process")
	fs.StringVar(&o.target, "url", "", "webhook URL to load; empty runs the webhook in this process on a real TCP listener")
	fs.StringVar(&o.secret, "secret", "loadgen-secret", "webhook secret (must match the target's)")
	fs.IntVar(&o.conns, "c", 16, "concurrent connections (and concurrent raw publishers)")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration of each phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each phase")
	fs.StringVar(&o.mode, "mode", "both", "both (raw, webhook, raw), webhook or raw")
	fs.StringVar(&o.client, "client", "raw", "HTTP client: raw (pre-rendered HTTP/1.1 on keep-alive sockets, cheap) or nethttp (net/http.Client)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level of the in-process webhook; its JSON logs are formatted and discarded")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the webhook phase to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.conns < 1:
		return o, errors.New("-c must be >= 1")
	case o.duration <= 0:
		return o, errors.New("-d must be positive")
	case o.mode != "both" && o.mode != "webhook" && o.mode != "raw":
		return o, fmt.Errorf("-mode %q: want both, webhook or raw", o.mode)
	case o.client != "raw" && o.client != "nethttp":
		return o, fmt.Errorf("-client %q: want raw or nethttp", o.client)
	case o.target != "" && o.natsURL == "" && o.mode != "webhook":
		return o, errors.New("-url with a raw phase needs -nats-url (the target's JetStream)")
	}
	return o, nil
}

// natsKind describes the JetStream in use for the report's header.
func natsKind(o options) string {
	switch {
	case o.natsURL != "":
		return "external"
	case o.natsBin != "":
		return "separate process " + o.natsBin + ", file storage"
	default:
		return "embedded in this process, file storage"
	}
}
