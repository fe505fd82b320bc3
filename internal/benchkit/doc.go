// Package benchkit is what the benchmark commands (bench/transfer,
// bench/webhookmem, cmd/loadgen) share to run the servers they measure and
// to measure them: the repository root and the pinned server binaries in
// <repo>/.cache/bin, free loopback ports, child processes with a log file,
// nats-server (a child process or embedded), and a process's memory and CPU
// time read from /proc.
//
// It is for benchmarks, not for tests: errors are returned, not t.Fatal'd,
// and nothing is built on demand. Tests start their servers with
// internal/testkit/testserver, which builds a missing binary into the same
// <repo>/.cache/bin that [FindBinary] looks in.
//
// The /proc readers return 0 (or an error) where /proc does not exist, so
// that the commands still build and run elsewhere, without those figures.
package benchkit
