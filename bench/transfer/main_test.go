package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

// TestSmall runs the whole benchmark with one 64 MiB artifact, so that the
// command keeps working: every row must be there and verified.
func TestSmall(t *testing.T) {
	args := []string{
		"-sizes", "64MiB",
		"-minio", testserver.Binary(t, "minio", "ARCHIVER_MINIO_BIN", testserver.MinIOModule),
		"-repo", testserver.RepoRoot(t),
	}
	rclone := true
	if _, err := exec.LookPath("/usr/bin/rclone"); err != nil {
		t.Log("no /usr/bin/rclone: measuring the worker only")
		args, rclone = append(args, "-rclone="), false
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	rows := map[string]string{
		"worker": `(?m)^\| 1 \| 64 MiB \| worker \| default \(16 MiB\) \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \| ok \|$`,
	}
	if rclone {
		rows["rclone"] = `(?m)^\| 1 \| 64 MiB \| rclone \| - \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \| ok \|$`
		rows["ratio"] = `(?m)^\| 1 \| 64 MiB \| default \| [0-9]+ \| [0-9]+ \| [0-9.]+× \|$`
	}
	for name, re := range rows {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no verified %s row in the output:\n%s\nstderr:\n%s", name, out, stderr.String())
		}
	}
}
