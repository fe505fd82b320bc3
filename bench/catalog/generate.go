package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// The generated archive's owner and its big repository.
const (
	owner   = "octo-bench"
	bigRepo = "monorepo"
)

// generated is the archive the benchmark writes: one manifest per run
// attempt, and what the checks need to know about it.
type generated struct {
	repos     []string // "owner/name"; repos[0] is the big one
	attempts  []*archive.Manifest
	artifacts int
	// bySHA counts the artifacts of the attempts of each head SHA (a
	// re-run shares its run's SHA).
	bySHA map[string]int
	rng   *rand.Rand // picks the queried attempts
}

// workflow is a generated workflow.
type workflow struct{ name, path, event string }

var (
	workflows = []workflow{
		{"CI", ".github/workflows/ci.yml", "push"},
		{"PR checks", ".github/workflows/pr.yml", "pull_request"},
		{"Nightly", ".github/workflows/nightly.yml", "schedule"},
		{"Release", ".github/workflows/release.yml", "push"},
		{"Docs", ".github/workflows/docs.yml", "push"},
	}
	artifactNames = []string{"dist", "coverage-unit", "coverage-e2e", "test-results", "sbom", "logs", "docs-site"}
)

// generate builds o.attempts run attempts over the 365 days before now:
// 80% in the big repository, the rest spread over the small ones; one in
// ten is a re-run (the next attempt) of the repository's previous run.
func generate(o options, now time.Time) *generated {
	rng := rand.New(rand.NewPCG(o.seed, 14))
	g := &generated{repos: []string{owner + "/" + bigRepo}, bySHA: map[string]int{}, rng: rand.New(rand.NewPCG(o.seed, 15))}
	for i := range o.smallRepos {
		g.repos = append(g.repos, owner+"/lib-"+strconv.Itoa(i+1))
	}
	last := map[int]*archive.Manifest{} // each repository's previous attempt
	artifactID := int64(5_000_000_000)
	for i := range o.attempts {
		repo := 0
		if len(g.repos) > 1 && rng.IntN(10) >= 8 {
			repo = 1 + rng.IntN(len(g.repos)-1)
		}
		var run runevent.WorkflowRun
		if prev := last[repo]; prev != nil && rng.IntN(10) == 0 {
			run = prev.WorkflowRun
			run.RunAttempt++
			run.UpdatedAt = run.UpdatedAt.Add(time.Duration(1+rng.IntN(60)) * time.Minute)
		} else {
			w := workflows[rng.IntN(len(workflows))]
			created := now.Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Second)
			run = runevent.WorkflowRun{
				ID: 10_000_000_000 + int64(i), RunAttempt: 1, WorkflowID: int64(100 + len(w.name)), Name: w.name, Path: w.path,
				Event: w.event, HeadBranch: branch(rng), HeadSHA: randomHex(rng, 20), Conclusion: "success", Status: "completed",
				CreatedAt: created, UpdatedAt: created.Add(time.Duration(1+rng.IntN(30)) * time.Minute),
			}
			if w.event == "pull_request" {
				run.PullRequests = []int64{int64(1 + rng.IntN(5000))}
			}
			if rng.IntN(10) == 0 {
				run.Conclusion = "failure"
			}
		}
		m := manifest(rng, g.repos[repo], run, &artifactID)
		last[repo] = m
		g.attempts = append(g.attempts, m)
		g.artifacts += len(m.Artifacts)
		g.bySHA[run.HeadSHA] += len(m.Artifacts)
	}
	return g
}

// manifest is the manifest of one generated attempt, with 1 to 3
// artifacts (one in twenty expired).
func manifest(rng *rand.Rand, fullName string, run runevent.WorkflowRun, nextID *int64) *archive.Manifest {
	o, name, _ := strings.Cut(fullName, "/")
	l := archive.Layout{Owner: o, Repo: name, RunID: run.ID}
	archivedAt := run.UpdatedAt.Add(time.Duration(5+rng.IntN(300)) * time.Second)
	m := &archive.Manifest{
		SchemaVersion:  archive.ManifestVersion,
		Repository:     runevent.Repository{ID: int64(len(fullName)), Owner: o, Name: name, FullName: fullName},
		InstallationID: 4242,
		WorkflowRun:    run,
		WorkflowName:   run.Name,
		DeliveryID:     randomHex(rng, 16),
		ArchivedAt:     archivedAt,
		Complete:       true,
	}
	for _, k := range rng.Perm(len(artifactNames))[:1+rng.IntN(3)] {
		*nextID++
		created, expires := run.UpdatedAt, run.UpdatedAt.Add(90*24*time.Hour)
		a := archive.ArtifactRecord{ID: *nextID, Name: artifactNames[k], Status: archive.StatusExpired, CreatedAt: &created, ExpiresAt: &expires}
		if rng.IntN(20) != 0 {
			a.Status = archive.StatusArchived
			a.Key = l.ArtifactPrefix(a.ID) + a.Name + ".zip"
			a.Size = 1024 + rng.Int64N(50<<20)
			a.SizeInBytes = a.Size
			a.SHA256 = randomHex(rng, 32)
			digest := "sha256:" + a.SHA256
			a.GitHubDigest = &digest
			a.ContentType = "application/zip"
			a.FileName = a.Name + ".zip"
			a.ETag = `"` + randomHex(rng, 16) + `"`
		}
		m.Artifacts = append(m.Artifacts, a)
	}
	return m
}

func branch(rng *rand.Rand) string {
	switch n := rng.IntN(10); {
	case n < 5:
		return "main"
	case n < 6:
		return "release/1." + strconv.Itoa(rng.IntN(20))
	default:
		return "feature/change-" + strconv.Itoa(rng.IntN(100000))
	}
}

func randomHex(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return hex.EncodeToString(b)
}

// write puts every attempt's manifest and catalogue file, o.writers at a
// time.
func (b *bench) write(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan *archive.Manifest)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range b.opt.writers {
		wg.Go(func() {
			for m := range next {
				if err := b.writeAttempt(ctx, m); err != nil {
					cancel(err)
					return
				}
				if n := done.Add(1); n%int64(max(len(b.arch.attempts)/10, 1)) == 0 {
					b.log.Printf("  %d/%d attempts written", n, len(b.arch.attempts))
				}
			}
		})
	}
	for _, m := range b.arch.attempts {
		select {
		case next <- m:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// writeAttempt puts one attempt's manifest.json and its catalogue file: the
// bytes catalog.Write would write, with its options.
func (b *bench) writeAttempt(ctx context.Context, m *archive.Manifest) error {
	body, err := m.Encode()
	if err != nil {
		return err
	}
	if err := b.put(ctx, manifestKey(m), body, "application/json"); err != nil {
		return err
	}
	rows, err := catalog.EncodeJSONL(catalog.Rows(m))
	if err != nil {
		return err
	}
	return b.put(ctx, catalogKey(m), rows, catalog.ContentTypeJSONL)
}

func (b *bench) put(ctx context.Context, key string, body []byte, contentType string) error {
	_, err := b.store.Put(ctx, key, bytes.NewReader(body), int64(len(body)), archive.PutOptions{Kind: archive.KindRecord, ContentType: contentType})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func manifestKey(m *archive.Manifest) string {
	return archive.Layout{Owner: m.Repository.Owner, Repo: m.Repository.Name, RunID: m.WorkflowRun.ID}.ManifestKey(m.WorkflowRun.RunAttempt)
}

func catalogKey(m *archive.Manifest) string {
	return catalog.AttemptKey(m.Repository.Owner, m.Repository.Name, catalog.Month(m.WorkflowRun.CreatedAt), m.WorkflowRun.ID, m.WorkflowRun.RunAttempt)
}

// checkDirectPuts runs catalog.Write over a sample of the attempts: the
// file it writes must be the one the generator put (same ETag: MinIO's is
// the MD5 of the bytes).
func (b *bench) checkDirectPuts(ctx context.Context) error {
	for range 20 {
		m := b.arch.attempts[b.arch.rng.IntN(len(b.arch.attempts))]
		key := catalogKey(m)
		before, err := b.store.Stat(ctx, key)
		if err != nil {
			return err
		}
		if err := catalog.Write(ctx, b.store, manifestKey(m)); err != nil {
			return err
		}
		after, err := b.store.Stat(ctx, key)
		if err != nil {
			return err
		}
		if before.ETag != after.ETag {
			return fmt.Errorf("catalog.Write rewrote %s with other bytes (ETag %s, was %s): the generator does not write what it writes", key, after.ETag, before.ETag)
		}
	}
	b.log.Printf("catalog.Write over 20 sampled attempts wrote the same bytes as the generator")
	return nil
}
