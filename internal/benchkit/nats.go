package benchkit

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds how long an embedded server may take to accept
// connections.
const natsReadyTimeout = 10 * time.Second

// StartNATSServer starts the nats-server binary bin as a child process with
// JetStream, file storage in storeDir, on a free port of 127.0.0.1, with its
// output in logPath. It returns the process and the client URL; it does not
// wait until the server accepts connections (connect with retries).
func StartNATSServer(bin, storeDir, logPath string) (*Process, string, error) {
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	p, err := StartProcess(bin, []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", storeDir}, nil, logPath, nil)
	if err != nil {
		return nil, "", err
	}
	return p, "nats://127.0.0.1:" + strconv.Itoa(port), nil
}

// StartEmbeddedNATS starts a NATS server with JetStream in this process,
// with file storage in storeDir, on a free port of 127.0.0.1, and waits
// until it accepts connections. Stop it with Shutdown and
// WaitForShutdown.
func StartEmbeddedNATS(storeDir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("benchkit: embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(natsReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("benchkit: embedded nats: not ready within " + natsReadyTimeout.String())
	}
	return ns, nil
}
