package archivectl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// Exit codes scripts can trust.
const (
	ExitOK      = 0 // success; for verify: no problem found
	ExitFailure = 1 // an operation failed or a problem was found
	ExitUsage   = 2 // bad flags or arguments, missing configuration
)

// command is one subcommand.
type command struct {
	name     string
	synopsis string // arguments after the name, for the usage line
	summary  string // one line for "archivectl -h"
	help     string // paragraph(s) for "archivectl NAME -h"
	env      []envGroup
	// flags declares the command's flags on fs and returns the function
	// that runs it with the positional arguments.
	flags func(fs *flag.FlagSet) func(ctx context.Context, c *cli, args []string) error
	// subcommands, when set, replace flags: the first argument names one
	// (its name is "<command> <subcommand>").
	subcommands []*command
}

// commands is the command table; a new subcommand is one more entry.
var commands = []*command{lsCommand, findCommand, getCommand, restoreCommand, verifyCommand, backfillCommand, redeliverCommand, dlqCommand, catalogCommand}

// cli is one invocation's environment.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// errTTY: stderr is a terminal (progress bars); color: stdout is a
	// terminal and NO_COLOR is unset.
	errTTY bool
	color  bool
	log    *slog.Logger
	now    func() time.Time
	// wait sleeps for d or until ctx ends; rate-limit waits go through it.
	wait func(ctx context.Context, d time.Duration) error
	// envErr: a variable of the Output group does not parse (its default
	// is used until the command reports it).
	envErr error
}

// Main runs archivectl with args (without the program name) and returns
// the exit code. stdin is read only by "dlq purge" (its confirmation).
func Main(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{
		getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr,
		errTTY: isTerminal(stderr),
		now:    time.Now,
		wait:   archive.Sleep,
	}
	// A bad value is reported when a command runs; help is still shown.
	out, err := c.parse(envOutput)
	c.envErr = err
	c.color = isTerminal(stdout) && out.noColor == "" && out.term != "dumb"
	// Diagnostic logs of the stores and clients: text on stderr.
	c.log, _ = service.NewLogger(stderr, out.logLevel, service.LogText) // a valid format
	if len(args) == 0 {
		topUsage(stderr)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			if cmd := lookup(args[1]); cmd != nil {
				if cmd.subcommands != nil {
					cmd.usage(stdout, nil)
				} else {
					fs := flagSet(cmd, io.Discard)
					cmd.flags(fs)
					cmd.usage(stdout, fs)
				}
				return ExitOK
			}
		}
		topUsage(stdout)
		return ExitOK
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "archivectl: unknown command %q\n\n", args[0])
		topUsage(stderr)
		return ExitUsage
	}
	return c.run(ctx, cmd, args[1:])
}

func lookup(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

// run parses the command's flags (anywhere among its arguments) and runs
// it, mapping the outcome to an exit code.
func (c *cli) run(ctx context.Context, cmd *command, args []string) int {
	if cmd.subcommands != nil {
		return c.runSub(ctx, cmd, args)
	}
	fs := flagSet(cmd, c.stderr)
	fn := cmd.flags(fs)
	pos, err := parseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		cmd.usage(c.stdout, fs)
		return ExitOK
	case err != nil:
		// The flag package has printed what was wrong.
		fmt.Fprintf(c.stderr, "Run 'archivectl %s -h' for usage.\n", cmd.name)
		return ExitUsage
	case c.envErr != nil:
		return c.exit(cmd.name, c.envErr)
	}
	return c.exit(cmd.name, fn(ctx, c, pos))
}

// runSub dispatches to the subcommand named by args[0].
func (c *cli) runSub(ctx context.Context, cmd *command, args []string) int {
	if len(args) == 0 {
		cmd.usage(c.stderr, nil)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		cmd.usage(c.stdout, nil)
		return ExitOK
	}
	for _, sub := range cmd.subcommands {
		if sub.name == cmd.name+" "+args[0] {
			return c.run(ctx, sub, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "archivectl %s: unknown subcommand %q\nRun 'archivectl %s -h' for usage.\n", cmd.name, args[0], cmd.name)
	return ExitUsage
}

// exit reports err and returns its exit code.
func (c *cli) exit(name string, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "archivectl %s: %s\nRun 'archivectl %s -h' for usage.\n", name, ue.msg, strings.Fields(name)[0])
		return ExitUsage
	case errors.Is(err, errReported):
		return ExitFailure
	default:
		fmt.Fprintf(c.stderr, "archivectl %s: %v\n", name, err)
		return ExitFailure
	}
}

// usageError is a bad invocation: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errReported: the command found problems and has already said so
// (exit code 1, nothing more to print).
var errReported = errors.New("problems reported")

func flagSet(cmd *command, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("archivectl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {} // -h prints the help on stdout, errors a hint on stderr
	return fs
}

// parseArgs parses flags that may appear before, between or after the
// positional arguments ("ls octo/repo --json"); "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (cmd *command) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: archivectl %s %s\n\n%s\n", cmd.name, cmd.synopsis, strings.TrimSpace(cmd.help))
	if len(cmd.subcommands) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, sub := range cmd.subcommands {
			fmt.Fprintf(w, "  archivectl %s %s\n      %s\n", sub.name, sub.synopsis, sub.summary)
		}
		fmt.Fprintf(w, "\nRun 'archivectl %s COMMAND -h' for a command's flags.\n", cmd.name)
	}
	var hasFlags bool
	if fs != nil {
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	}
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	writeEnv(w, cmd.env)
}

func topUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: archivectl COMMAND [flags] [arguments]\n\n")
	fmt.Fprintf(w, "Operate the artifact archive: list, fetch and audit archived GitHub Actions\nartifacts, backfill what was missed, recover webhook deliveries, and replay\ndead-lettered events.\n\nCommands:\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nRun 'archivectl COMMAND -h' for a command's flags and environment.\n")
	fmt.Fprintf(w, "Exit codes: 0 ok, 1 failure or problem found, 2 usage error.\n")
	writeEnv(w, envGroups())
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
