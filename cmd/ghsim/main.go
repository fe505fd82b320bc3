// Command ghsim runs the GitHub simulator of package ghsim as a separate
// process, for process-mode integration tests and the demo. It loads a
// scenario (repositories, runs, artifacts, tokens, App key: see
// ghsim.Scenario), prints the API base URL on the first line of stdout and
// serves until SIGINT or SIGTERM.
//
//	ghsim -scenario scenario.json -state-file state.json
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "ghsim:", err)
		os.Exit(1)
	}
}

// run parses the flags (defaults from getenv), starts the simulator, prints
// its API URL to stdout and serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ghsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", getenv("GHSIM_SCENARIO"), "scenario JSON `file` (env GHSIM_SCENARIO; default: empty simulator)")
	apiAddr := fs.String("api-addr", cmp.Or(getenv("GHSIM_API_ADDR"), "127.0.0.1:0"), "API listen `address` (env GHSIM_API_ADDR)")
	blobAddr := fs.String("blob-addr", cmp.Or(getenv("GHSIM_BLOB_ADDR"), "127.0.0.1:0"), "blob host listen `address` (env GHSIM_BLOB_ADDR)")
	blobHost := fs.String("blob-host", cmp.Or(getenv("GHSIM_BLOB_HOST"), "localhost"), "host `name` in blob URLs; must differ from the API host (env GHSIM_BLOB_HOST)")
	stateFile := fs.String("state-file", getenv("GHSIM_STATE_FILE"), "write the state JSON (URLs, assigned ids) to this `file` once serving (env GHSIM_STATE_FILE)")
	admin := fs.Bool("admin", true, "serve the control API under /_ghsim/ (stats, faults, payloads)")
	verbose := fs.Bool("v", false, "log every request")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ghsim [flags]\n\nServes a simulated GitHub Actions artifact API and blob host; prints the API URL.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sc ghsim.Scenario
	if *scenario != "" {
		var err error
		if sc, err = ghsim.LoadScenario(*scenario); err != nil {
			return err
		}
	}
	opts, err := sc.Options()
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts.APIAddr, opts.BlobAddr, opts.BlobHost, opts.Admin = *apiAddr, *blobAddr, *blobHost, *admin
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := ghsim.New(opts)
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.Load(sc)
	if err != nil {
		return err
	}
	if *stateFile != "" {
		if err := writeState(*stateFile, st); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, s.URL())
	<-ctx.Done()
	return s.Close()
}

// writeState writes st as JSON atomically (a reader never sees half a file).
func writeState(path string, st ghsim.State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ghsim-state-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	return nil
}
