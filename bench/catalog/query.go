package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

// lsRun is the part of an `ls --json` run attempt the checks read.
type lsRun struct {
	Repository string `json:"repository"`
	RunID      int64  `json:"run_id"`
	RunAttempt int    `json:"run_attempt"`
	HeadSHA    string `json:"head_sha"`
	Artifacts  []struct {
		ID int64 `json:"id"`
	} `json:"artifacts"`
}

// findRow is the part of a `find --json` row the checks read.
type findRow struct {
	HeadSHA    string `json:"head_sha"`
	ArtifactID int64  `json:"artifact_id"`
}

// archivectl runs the archivectl binary with args and returns its stdout
// and how long it ran; a non-zero exit is an error.
func (b *bench) archivectl(ctx context.Context, args ...string) ([]byte, time.Duration, error) {
	cmd := exec.CommandContext(ctx, b.ctl, args...)
	cmd.Env = b.s3.archivectlEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return nil, d, fmt.Errorf("archivectl %q: %v\n%s", args, err, stderr.Bytes())
	}
	return stdout.Bytes(), d, nil
}

// sha is the head SHA queried in a round: a random attempt's, the same
// for every query of the round.
func (b *bench) sha(round int) string {
	for len(b.shas) <= round {
		b.shas = append(b.shas, b.arch.attempts[b.arch.rng.IntN(len(b.arch.attempts))].WorkflowRun.HeadSHA)
	}
	return b.shas[round]
}

// findCatalogue is `find --sha S --json` over every repository; it must
// return the artifacts of S's attempts.
func (b *bench) findCatalogue(ctx context.Context, round int) (time.Duration, error) {
	sha := b.sha(round)
	out, d, err := b.archivectl(ctx, "find", "--sha", sha, "--json")
	if err != nil {
		return d, err
	}
	var rows []findRow
	if err := json.Unmarshal(out, &rows); err != nil {
		return d, fmt.Errorf("find --json: %w", err)
	}
	for _, r := range rows {
		if r.HeadSHA != sha {
			return d, fmt.Errorf("find --sha %s returned a row of %s", sha, r.HeadSHA)
		}
	}
	if want := b.arch.bySHA[sha]; len(rows) != want {
		return d, fmt.Errorf("find --sha %s: %d rows, want %d", sha, len(rows), want)
	}
	return d, nil
}

// findScan is the answer to find --sha without the catalogue: `ls
// --from-manifests --json` over every repository (one GET per manifest),
// searched for the SHA.
func (b *bench) findScan(ctx context.Context, round int) (time.Duration, error) {
	sha := b.sha(round)
	out, d, err := b.archivectl(ctx, "ls", "--from-manifests", "--json")
	if err != nil {
		return d, err
	}
	runs, err := decodeRuns(out)
	if err != nil {
		return d, err
	}
	if len(runs) != len(b.arch.attempts) {
		return d, fmt.Errorf("ls --from-manifests: %d run attempts, want %d", len(runs), len(b.arch.attempts))
	}
	found := 0
	for _, r := range runs {
		if r.HeadSHA == sha {
			found += len(r.Artifacts)
		}
	}
	if want := b.arch.bySHA[sha]; found != want {
		return d, fmt.Errorf("ls --from-manifests: %d artifacts of %s, want %d", found, sha, want)
	}
	return d, nil
}

// since is the --since of the ls queries: 30 days before the queries
// start, as an RFC 3339 time so that every round and both paths select the
// same runs.
func (b *bench) since() time.Time {
	if b.lsSince.IsZero() {
		b.lsSince = time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Second)
	}
	return b.lsSince
}

func (b *bench) lsCatalogue(ctx context.Context, _ int) (time.Duration, error) { return b.ls(ctx) }

func (b *bench) lsScan(ctx context.Context, _ int) (time.Duration, error) {
	return b.ls(ctx, "--from-manifests")
}

// ls is `ls <big repo> --since <30 days ago> --json`: it must list the big
// repository's attempts of runs created since then.
func (b *bench) ls(ctx context.Context, extra ...string) (time.Duration, error) {
	since := b.since()
	args := append([]string{"ls", b.arch.repos[0], "--since", since.Format(time.RFC3339), "--json"}, extra...)
	out, d, err := b.archivectl(ctx, args...)
	if err != nil {
		return d, err
	}
	runs, err := decodeRuns(out)
	if err != nil {
		return d, err
	}
	got := map[string]int{}
	for _, r := range runs {
		got[strconv.FormatInt(r.RunID, 10)+"/"+strconv.Itoa(r.RunAttempt)] = len(r.Artifacts)
	}
	want := map[string]int{}
	for _, m := range b.arch.attempts {
		if m.Repository.FullName == b.arch.repos[0] && !m.WorkflowRun.CreatedAt.Before(since) {
			want[strconv.FormatInt(m.WorkflowRun.ID, 10)+"/"+strconv.Itoa(m.WorkflowRun.RunAttempt)] = len(m.Artifacts)
		}
	}
	if !maps.Equal(got, want) {
		return d, fmt.Errorf("%q: %d run attempts, want %d (first: %q)", args, len(got), len(want), slices.Sorted(maps.Keys(got))[:min(3, len(got))])
	}
	b.lsRuns = len(got)
	return d, nil
}

func decodeRuns(out []byte) ([]lsRun, error) {
	var runs []lsRun
	if err := json.Unmarshal(out, &runs); err != nil {
		return nil, fmt.Errorf("ls --json: %w", err)
	}
	return runs, nil
}
