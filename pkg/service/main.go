package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Service is a long-running part of a binary. Start does not block longer
// than it takes to start (it returns an error if ctx ends first), and a
// Start that fails leaves nothing running. Stop stops taking new work,
// drains, and cuts the rest short when ctx ends; it is idempotent.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Program describes a long-running binary to [Main], with its
// configuration type C.
type Program[C any] struct {
	// Name is the binary's name, for -h.
	Name string
	// Doc says what the binary does: the text of -h above the environment.
	Doc string
	// Env is the binary's environment table, listed by -h.
	Env *Env
	// Load reads the configuration through getenv and validates it.
	Load func(getenv func(string) string) (C, error)
	// Log returns the configuration's log level and format.
	Log func(C) (slog.Level, string)
	// Grace returns how long Stop may drain after the first signal.
	Grace func(C) time.Duration
	// New builds the service.
	New func(C, *slog.Logger) (Service, error)
	// LogToStdout sends the logs to stdout; by default they go to stderr.
	LogToStdout bool
}

// Usage writes the -h text: the usage line, Doc and the environment.
func (p Program[C]) Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [-h]\n\n%s\n\n", p.Name, strings.TrimSpace(p.Doc))
	WriteUsage(w, p.Env)
}

// Main runs p with args (without the program's name): "-h" writes the
// usage to stdout and returns nil; otherwise it loads the configuration
// through getenv, builds the logger, starts the service, and when ctx ends
// (the first SIGTERM or SIGINT, see [SignalContext]) stops it within the
// grace period and returns Stop's error.
func Main[C any](ctx context.Context, p Program[C], args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { p.Usage(stdout) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", p.Name, fs.Args())
	}
	cfg, err := p.Load(getenv)
	if err != nil {
		return err
	}
	logs := stderr
	if p.LogToStdout {
		logs = stdout
	}
	level, format := p.Log(cfg)
	log, err := NewLogger(logs, level, format)
	if err != nil {
		return err
	}
	svc, err := p.New(cfg, log)
	if err != nil {
		return err
	}
	return Run(ctx, svc, p.Grace(cfg), log)
}

// Run starts s, waits for ctx to end, then stops s within grace.
func Run(ctx context.Context, s Service, grace time.Duration, log *slog.Logger) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	return s.Stop(sctx)
}

// SignalContext returns a context that ends at the first SIGTERM or
// SIGINT. The signals' default action is then restored, so that a second
// one ends the process at once, cutting the grace period short.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// MainFunc is the importable body of a binary: it runs with the
// arguments (without the program's name), the environment and the
// standard streams it is given.
type MainFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Exec runs main as the process: with its arguments, environment and
// standard streams, under [SignalContext]. If main fails, Exec writes
// "name: error" to stderr and exits with status 1.
func Exec(name string, main MainFunc) {
	ctx, stop := SignalContext(context.Background())
	err := main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
