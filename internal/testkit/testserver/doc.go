// Package testserver starts real servers for tests: MinIO (S3, over HTTP or
// TLS), versitygw (Versity's S3 gateway over its posix backend, the second
// S3 implementation) and NATS with JetStream (embedded in the test binary or
// as the pinned nats-server binary in its own process). The S3 servers embed
// [S3Access]: endpoint, credentials, SDK configuration, clients and buckets.
//
// Every server is bound to 127.0.0.1 on a free port, keeps its data in a
// t.TempDir, and is stopped by t.Cleanup. Servers can be stopped and started
// again on the same port and data directory for fault tests. Readiness is
// polled against the server with a deadline; nothing sleeps for a fixed
// time.
//
// Binaries are looked up in this order: an environment variable
// ($ARCHIVER_MINIO_BIN, $ARCHIVER_NATS_BIN, $ARCHIVER_VERSITYGW_BIN),
// <repo root>/.cache/bin, then PATH. A missing binary is built with
// "go install" into <repo root>/.cache/bin under a file lock, so that test
// binaries running in parallel build it once. A server that cannot be
// started fails the test with the reason; tests are never skipped.
package testserver
