// Package service is the setup every long-running binary shares, written
// once: the environment table that is parsed and printed by -h and the
// README ([Env]), the logger ([NewLogger]), the operational endpoints
// /healthz, /readyz and /metrics ([Ops]), provisioning with retry
// ([Retry]), and the life of the process from its arguments to its exit
// ([Main], [SignalContext], [Exec]).
//
// # Environment
//
// Every setting is an environment variable, and every variable a binary
// reads is one row of its [Env]: the name, the default, the help and the
// parser, bound to the configuration field the row sets. The rows give
// -h ([WriteUsage]) and the README's configuration tables ([Markdown]),
// so neither can miss a variable or show a stale default.
//
// # Lifecycle
//
// [Main] runs a [Program]: -h writes the usage to stdout and returns nil; a
// bad variable is an error naming it; the logger is built; the [Service]
// starts; the first SIGTERM or SIGINT (the end of ctx, see
// [SignalContext]) stops it gracefully within the program's grace period;
// a second signal ends the process at once.
package service
