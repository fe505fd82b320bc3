package archivectl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/destination"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// settings is archivectl's environment. Each group of variables is bound
// to the fields it sets, so that a command parses only the groups it uses:
// ls needs no NATS settings, for one.
type settings struct {
	destination    string
	forcePathStyle bool
	s3             destination.S3Writes
	nats           events.ConnConfig
	topology       events.Topology
	gitHub         ghclient.Config
	logLevel       slog.Level
	noColor        string
	term           string
}

// envGroup returns a titled group of variables bound to s, for a command's
// -h and for parsing.
type envGroup func(s *settings) *service.Env

// envGroups are all the groups, as "archivectl -h" lists them.
func envGroups() []envGroup {
	return []envGroup{envDestination, envNATS, envGitHub, envOutput}
}

// Env lists every variable archivectl reads, in titled groups; "archivectl
// COMMAND -h" lists the groups the command reads.
func Env() []*service.Env {
	var envs []*service.Env
	for _, g := range envGroups() {
		envs = append(envs, g(new(settings)))
	}
	return envs
}

func envDestination(s *settings) *service.Env {
	e := &service.Env{Title: "Archive"}
	destination.Env(e, &s.destination, "", &s.forcePathStyle)
	destination.S3WritesEnv(e, &s.s3)
	return e
}

func envNATS(s *settings) *service.Env {
	e := &service.Env{Title: "NATS JetStream"}
	events.ConnEnv(e, &s.nats)
	events.TopologyEnv(e, &s.topology)
	events.ConsumerEnv(e, &s.topology)
	return e
}

func envGitHub(s *settings) *service.Env {
	e := &service.Env{Title: "GitHub"}
	e.String(&s.gitHub.APIURL, "GITHUB_API_URL", ghclient.DefaultAPIURL, "REST API root; `https://HOST/api/v3` for GitHub Enterprise Server")
	e.String(&s.gitHub.Token, "GITHUB_TOKEN", "", "a token for every request, instead of App credentials (events get installation 0)")
	e.Int64(&s.gitHub.AppID, "GITHUB_APP_ID", 0, "GitHub App id: installation tokens, and the App JWT for --installation").DefaultText("")
	e.Secret(&s.gitHub.PrivateKey, "GITHUB_APP_PRIVATE_KEY", "the App's PEM private key")
	return e
}

// envApp is envGitHub without GITHUB_TOKEN: the /app endpoints need the
// App's JWT.
func envApp(s *settings) *service.Env {
	e := &service.Env{Title: "GitHub App (JWT authentication; a token cannot list deliveries)"}
	e.String(&s.gitHub.APIURL, "GITHUB_API_URL", ghclient.DefaultAPIURL, "REST API root")
	e.Int64(&s.gitHub.AppID, "GITHUB_APP_ID", 0, "GitHub App id").DefaultText("").Required()
	e.Secret(&s.gitHub.PrivateKey, "GITHUB_APP_PRIVATE_KEY", "the App's PEM private key (this or the file is required)")
	return e
}

func envOutput(s *settings) *service.Env {
	e := &service.Env{Title: "Output"}
	e.String(&s.noColor, "NO_COLOR", "", "set to disable colours (they are off anyway when stdout is not a terminal)")
	e.String(&s.term, "TERM", "", "`dumb` disables colours too")
	e.Level(&s.logLevel, "ARCHIVER_LOG_LEVEL", slog.LevelWarn, "level of the diagnostic logs on stderr: `debug`, `info`, `warn` or `error`")
	return e
}

func writeEnv(w io.Writer, groups []envGroup) {
	if len(groups) == 0 {
		return
	}
	envs := make([]*service.Env, len(groups))
	for i, g := range groups {
		envs[i] = g(new(settings))
	}
	fmt.Fprintln(w)
	service.WriteUsage(w, envs...)
}

// parse reads group through getenv into new settings; a variable that
// does not parse keeps its default. A value that does not parse is a usage
// error; a key file that cannot be read is not.
func (c *cli) parse(group envGroup) (*settings, error) {
	s := new(settings)
	if err := group(s).Parse(c.getenv); err != nil {
		if _, ok := errors.AsType[*fs.PathError](err); ok {
			return s, err
		}
		return s, usagef("%v", err)
	}
	return s, nil
}

// openStore opens ARCHIVER_DESTINATION through destination.Open, the one
// path to every kind of store. The returned close function releases it.
func (c *cli) openStore(ctx context.Context) (archive.Store, func(), error) {
	s, err := c.parse(envDestination)
	if err != nil {
		return nil, nil, err
	}
	if s.destination == "" {
		return nil, nil, usagef("ARCHIVER_DESTINATION is not set (s3://bucket/prefix or file:///path)")
	}
	st, err := destination.Open(ctx, s.destination, destination.Options{
		ForcePathStyle: s.forcePathStyle,
		S3:             s.s3,
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
	s, err := c.parse(envNATS)
	if err != nil {
		return nil, events.Topology{}, nil, err
	}
	topo := s.topology.WithDefaults()
	if err := topo.Validate(); err != nil {
		return nil, events.Topology{}, nil, usagef("%v", err)
	}
	nc, err := events.Connect(s.nats, "archivectl", c.log,
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

// gitHub builds the GitHub clients from GITHUB_* and says whether they use
// GITHUB_TOKEN. With appOnly a GITHUB_TOKEN is ignored: the /app endpoints
// need the App's JWT.
func (c *cli) gitHub(appOnly bool) (cs *ghclient.Clients, token bool, err error) {
	group := envGitHub
	if appOnly {
		group = envApp
	}
	s, err := c.parse(group)
	if err != nil {
		return nil, false, err
	}
	cfg := s.gitHub
	cfg.Logger = c.log
	if cfg.Token == "" && (cfg.AppID == 0 || len(cfg.PrivateKey) == 0) {
		if appOnly {
			return nil, false, usagef("set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or _FILE): the App's webhook deliveries need App authentication")
		}
		return nil, false, usagef("set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY (or _FILE)")
	}
	if cs, err = ghclient.New(cfg); err != nil {
		return nil, false, err
	}
	return cs, cfg.Token != "", nil
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
