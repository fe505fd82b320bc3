// Package integration proves that artifact-archiver loses nothing: it runs
// the real binaries (cmd/webhook, cmd/worker, cmd/ghsim) against a real NATS
// JetStream, a real MinIO (or versitygw, a second S3 implementation) and
// the GitHub simulator, injects faults (killed workers, restarted or
// clustered NATS, a stopped MinIO, a misbehaving GitHub, duplicate and
// refused deliveries, a burst), and checks the archive and the simulator
// afterwards.
//
// The tests build only with the "integration" tag, so that "go test ./..."
// compiles them out; "make integration" runs them:
//
//	go test -tags integration -count=1 -timeout 40m ./integration/...
//
// Every test runs once per mode: "process" (local processes on loopback
// ports) and "docker" (containers started with testcontainers-go on a
// per-test network). ARCHIVER_INTEGRATION_MODE selects process, docker or
// both; see README.md.
package integration
