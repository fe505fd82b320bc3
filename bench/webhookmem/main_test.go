package main

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

// TestSmall runs the whole benchmark with 50 slow connections for two
// seconds, so that the command keeps working: the row must be there, with
// every valid delivery answered 202.
func TestSmall(t *testing.T) {
	args := []string{
		"-conns", "50", "-hold", "2s", "-label", "small",
		"-repo", testserver.RepoRoot(t),
		"-nats-bin", testserver.Binary(t, "nats-server", "ARCHIVER_NATS_BIN", testserver.NATSServerModule),
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	row := regexp.MustCompile(`(?m)^\| small \| 50 \(\d+\) \| [0-9.]+ \| \d+ \| [-\d]+ \| (\d+) \| \d+ \| (\d+) \| (\d+) \| 0 \| [0-9.]+ ms \| [0-9.]+ ms \| [^|]+ \| completed \|$`)
	m := row.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no completed row in the output:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if m[2] != m[3] || m[2] == "0" {
		t.Errorf("valid deliveries sent %s, 202 %s: want all of them, and some", m[2], m[3])
	}
}
