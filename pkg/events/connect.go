package events

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// DefaultNATSURL is used when NATS_URL is unset.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// ConnConfig holds the NATS connection settings, read from the environment
// variables the nats CLI and nats.go ecosystem use.
type ConnConfig struct {
	URL      string // NATS_URL (default nats://127.0.0.1:4222)
	Creds    string // NATS_CREDS: a .creds file (JWT + nkey seed)
	NKey     string // NATS_NKEY: an nkey seed file
	User     string // NATS_USER
	Password string // NATS_PASSWORD
	Token    string // NATS_TOKEN
	CA       string // NATS_CA: CA bundle to verify the server
	Cert     string // NATS_CERT: client certificate (mutual TLS)
	Key      string // NATS_KEY: client key (mutual TLS)
}

// ConnEnv adds the connection's variables to e, bound to c's fields with
// their defaults.
func ConnEnv(e *service.Env, c *ConnConfig) {
	e.String(&c.URL, "NATS_URL", DefaultNATSURL, "NATS server URL(s), comma-separated")
	e.String(&c.Creds, "NATS_CREDS", "", "credentials file (JWT and nkey seed)")
	e.String(&c.NKey, "NATS_NKEY", "", "nkey seed file")
	e.String(&c.User, "NATS_USER", "", "user name, with `NATS_PASSWORD`")
	e.String(&c.Password, "NATS_PASSWORD", "", "password of `NATS_USER`")
	e.String(&c.Token, "NATS_TOKEN", "", "authentication token")
	e.String(&c.CA, "NATS_CA", "", "CA certificate bundle to verify the server")
	e.String(&c.Cert, "NATS_CERT", "", "client certificate for mutual TLS, with `NATS_KEY`")
	e.String(&c.Key, "NATS_KEY", "", "client key for mutual TLS")
}

// ConnConfigFromEnv reads the connection settings through getenv.
func ConnConfigFromEnv(getenv func(string) string) ConnConfig {
	var c ConnConfig
	var e service.Env
	ConnEnv(&e, &c)
	_ = e.Parse(getenv) // strings: they always parse
	return c
}

// Connect dials NATS. The connection never gives up (it retries the first
// connect and reconnects forever) and has no reconnect buffer: a publish
// while disconnected fails at once instead of landing later from a buffer,
// after the webhook already answered 503.
func Connect(c ConnConfig, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// Notice a silently dead server in ~30 s instead of the default ~4 min.
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close or Drain
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("events: nkey %s: %w", c.NKey, err)
		}
		opts = append(opts, o)
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	if c.Cert != "" || c.Key != "" {
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	nc, err := nats.Connect(c.URL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("events: connect %s: %w", c.URL, err)
	}
	return nc, nil
}
