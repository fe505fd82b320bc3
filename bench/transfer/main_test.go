package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

// TestSmall runs the whole benchmark with one 64 MiB artifact on both
// backends, so that the command keeps working: every row must be there and
// verified, with the medians and the ratios.
func TestSmall(t *testing.T) {
	args := []string{
		"-sizes", "64MiB",
		"-backend", "both",
		"-minio", testserver.Binary(t, "minio", "ARCHIVER_MINIO_BIN", testserver.MinIOModule),
		"-versitygw", testserver.Binary(t, "versitygw", "ARCHIVER_VERSITYGW_BIN", testserver.VersityGWModule),
		"-repo", testserver.RepoRoot(t),
	}
	rclone := true
	if _, err := exec.LookPath("/usr/bin/rclone"); err != nil {
		t.Log("no /usr/bin/rclone: measuring the worker and the bare PutObject only")
		args, rclone = append(args, "-rclone="), false
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	rows := map[string]string{}
	for _, backend := range []string{"minio", "versitygw"} {
		rows[backend+" worker"] = `(?m)^\| ` + backend + ` \| 1 \| 64 MiB \| worker \| default \([0-9]+ MiB\) \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \| ok \|$`
		rows[backend+" bare"] = `(?m)^\| ` + backend + ` \| 1 \| 64 MiB \| bare \| - \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \| ok \|$`
		rows[backend+" median"] = `(?m)^\| ` + backend + ` \| 64 MiB \| worker \| default \| 1 \| [0-9]+ \| [0-9]+–[0-9]+ \| [0-9.]+ \| [0-9.]+ \|$`
		ratio := `[0-9.]+× \([0-9.]+\)`
		rcloneRatio := `-`
		if rclone {
			rows[backend+" rclone"] = `(?m)^\| ` + backend + ` \| 1 \| 64 MiB \| rclone \| - \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \| ok \|$`
			rcloneRatio = ratio
		}
		rows[backend+" ratio"] = `(?m)^\| ` + backend + ` \| 64 MiB \| worker \| default \| ` + ratio + ` \| ` + rcloneRatio + ` \|$`
	}
	for name, re := range rows {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no verified %s row in the output:\n%s\nstderr:\n%s", name, out, stderr.String())
		}
	}
}
