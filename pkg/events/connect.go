package events

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
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

// ConnEnv lists the environment variables read by [ConnConfigFromEnv], for -h.
var ConnEnv = [][2]string{
	{"NATS_URL", "NATS server URL(s), comma separated (default " + DefaultNATSURL + ")"},
	{"NATS_CREDS", "credentials file (JWT + nkey seed)"},
	{"NATS_NKEY", "nkey seed file"},
	{"NATS_USER / NATS_PASSWORD", "user and password"},
	{"NATS_TOKEN", "authentication token"},
	{"NATS_CA", "CA certificate bundle to verify the server"},
	{"NATS_CERT / NATS_KEY", "client certificate and key for mutual TLS"},
}

// ConnConfigFromEnv reads the connection settings through getenv.
func ConnConfigFromEnv(getenv func(string) string) ConnConfig {
	return ConnConfig{
		URL:      cmp.Or(getenv("NATS_URL"), DefaultNATSURL),
		Creds:    getenv("NATS_CREDS"),
		NKey:     getenv("NATS_NKEY"),
		User:     getenv("NATS_USER"),
		Password: getenv("NATS_PASSWORD"),
		Token:    getenv("NATS_TOKEN"),
		CA:       getenv("NATS_CA"),
		Cert:     getenv("NATS_CERT"),
		Key:      getenv("NATS_KEY"),
	}
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
