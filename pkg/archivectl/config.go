package archivectl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/destination"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// envGroup is a titled list of environment variables for -h.
type envGroup struct {
	title string
	vars  [][2]string
}

var (
	envDestination = envGroup{"Archive", [][2]string{
		{"ARCHIVER_DESTINATION", "the archive: s3://bucket/prefix or file:///path (required)"},
		{"ARCHIVER_S3_FORCE_PATH_STYLE", "path-style S3 URLs, for MinIO and other S3-compatibles (default false)"},
		{"AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_PROFILE, ...", "the standard AWS SDK chain (read from the process environment)"},
	}}
	envNATS   = envGroup{"NATS JetStream", append(append([][2]string{}, events.ConnEnv...), topologyNames()...)}
	envGitHub = envGroup{"GitHub", [][2]string{
		{"GITHUB_API_URL", "REST API root (default " + ghclient.DefaultAPIURL + "; GHES: https://HOST/api/v3)"},
		{"GITHUB_TOKEN", "a token for every request, instead of App credentials (events get installation 0)"},
		{"GITHUB_APP_ID", "GitHub App id: installation tokens, and the App JWT for --installation"},
		{"GITHUB_APP_PRIVATE_KEY / GITHUB_APP_PRIVATE_KEY_FILE", "the App's PEM private key, inline or as a file"},
	}}
	envApp = envGroup{"GitHub App (JWT authentication; a token cannot list deliveries)", [][2]string{
		{"GITHUB_API_URL", "REST API root (default " + ghclient.DefaultAPIURL + ")"},
		{"GITHUB_APP_ID", "GitHub App id (required)"},
		{"GITHUB_APP_PRIVATE_KEY / GITHUB_APP_PRIVATE_KEY_FILE", "the App's PEM private key, inline or as a file (required)"},
	}}
	envOutput = envGroup{"Output", [][2]string{
		{"NO_COLOR", "set to disable colours (they are off anyway when stdout is not a terminal)"},
		{"ARCHIVER_LOG_LEVEL", "level of diagnostic logs on stderr (default warn)"},
	}}
)

// topologyNames are the topology variables that name what archivectl
// touches (the sizing ones are for the webhook and worker).
func topologyNames() [][2]string {
	var out [][2]string
	for _, v := range events.TopologyEnv {
		switch v[0] {
		case "ARCHIVER_STREAM", "ARCHIVER_DLQ_STREAM", "ARCHIVER_SUBJECT_PREFIX":
			out = append(out, v)
		}
	}
	return out
}

func writeEnv(w io.Writer, groups []envGroup) {
	if len(groups) == 0 {
		return
	}
	fmt.Fprintf(w, "\nEnvironment:\n")
	for _, g := range groups {
		fmt.Fprintf(w, "  %s:\n", g.title)
		for _, v := range g.vars {
			fmt.Fprintf(w, "    %s\n        %s\n", v[0], v[1])
		}
	}
}

// openStore opens ARCHIVER_DESTINATION through destination.Open, the one
// path to every kind of store. The returned close function releases it.
func (c *cli) openStore(ctx context.Context) (archive.Store, func(), error) {
	dest := c.getenv("ARCHIVER_DESTINATION")
	if dest == "" {
		return nil, nil, usagef("ARCHIVER_DESTINATION is not set (s3://bucket/prefix or file:///path)")
	}
	pathStyle, err := s3store.ForcePathStyleFromEnv(c.getenv)
	if err != nil {
		return nil, nil, usagef("%v", err)
	}
	st, err := destination.Open(ctx, dest, destination.Options{
		ForcePathStyle: pathStyle,
		Logger:         c.log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open destination: %w", err)
	}
	closeFn := func() {}
	if cl, ok := st.(io.Closer); ok {
		closeFn = func() { _ = cl.Close() }
	}
	return st, closeFn, nil
}

// jetStream connects to NATS for a short-lived command: it fails at once
// when NATS is unreachable instead of retrying forever like the services.
func (c *cli) jetStream() (jetstream.JetStream, events.Topology, func(), error) {
	topo, err := events.TopologyFromEnv(c.getenv)
	if err != nil {
		return nil, events.Topology{}, nil, usagef("%v", err)
	}
	nc, err := events.Connect(events.ConnConfigFromEnv(c.getenv), "archivectl", c.log,
		nats.RetryOnFailedConnect(false), nats.MaxReconnects(2), nats.Timeout(10*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close
				c.log.Warn("nats disconnected", "err", err)
			}
		}))
	if err != nil {
		return nil, events.Topology{}, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, events.Topology{}, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, topo, nc.Close, nil
}

// gitHub builds the GitHub clients from GITHUB_*. With appOnly a
// GITHUB_TOKEN is ignored: the /app endpoints need the App's JWT.
func (c *cli) gitHub(appOnly bool) (*ghclient.Clients, error) {
	cfg := ghclient.Config{
		APIURL: cmp.Or(c.getenv("GITHUB_API_URL"), ghclient.DefaultAPIURL),
		Logger: c.log,
	}
	if !appOnly {
		cfg.Token = c.getenv("GITHUB_TOKEN")
	}
	if s := c.getenv("GITHUB_APP_ID"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, usagef("GITHUB_APP_ID=%q: not an integer", s)
		}
		cfg.AppID = id
	}
	switch key, file := c.getenv("GITHUB_APP_PRIVATE_KEY"), c.getenv("GITHUB_APP_PRIVATE_KEY_FILE"); {
	case key != "":
		cfg.PrivateKey = []byte(key)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY_FILE: %w", err)
		}
		cfg.PrivateKey = b
	}
	if cfg.Token == "" && (cfg.AppID == 0 || len(cfg.PrivateKey) == 0) {
		if appOnly {
			return nil, usagef("set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or _FILE): the App's webhook deliveries need App authentication")
		}
		return nil, usagef("set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY (or _FILE)")
	}
	cs, err := ghclient.New(cfg)
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// retryRateLimited runs fn until it succeeds or fails with anything but a
// GitHub rate limit; on a *archive.RetryAfterError it says so on stderr and
// waits until GitHub allows the next request.
func (c *cli) retryRateLimited(ctx context.Context, what string, fn func() error) error {
	for {
		err := fn()
		var ra *archive.RetryAfterError
		if !errors.As(err, &ra) {
			return err
		}
		d := max(ra.At.Sub(c.now()), time.Second)
		fmt.Fprintf(c.stderr, "rate limited by GitHub while %s; waiting %s (until %s)\n",
			what, d.Round(time.Second), c.now().Add(d).Format(time.TimeOnly))
		if werr := c.wait(ctx, d); werr != nil {
			return fmt.Errorf("%s: %w (while waiting for the rate limit: %v)", what, werr, err)
		}
	}
}
