package archivectl

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// scope selects part of the archive: one repository, one run, or all.
type scope struct {
	owner, repo string // both "" for the whole destination
	runID       int64  // 0 for every run
}

// parseRepo splits "owner/repo".
func parseRepo(s string) (owner, repo string, err error) {
	owner, repo, ok := strings.Cut(s, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return "", "", usagef("repository %q: want owner/repo", s)
	}
	return owner, repo, nil
}

// prefix is the narrowest key prefix that holds the scope's manifests.
func (s scope) prefix() string {
	if s.owner == "" {
		return ""
	}
	l := archive.Layout{Owner: s.owner, Repo: s.repo, RunID: s.runID}
	if s.runID != 0 {
		return l.RunPrefix()
	}
	// RunPrefix is "<owner>/<repo>/runs/<run_id>/": drop the run id.
	l.RunID = 1
	return strings.TrimSuffix(l.RunPrefix(), "1/")
}

// manifestKey matches "<owner>/<repo>/runs/<run_id>/attempt-<n>/manifest.json".
var manifestKey = regexp.MustCompile(`^[^/]+/[^/]+/runs/([0-9]+)/attempt-([0-9]+)/manifest\.json$`)

// entry is one manifest of the archive, or why it could not be read.
type entry struct {
	Key      string
	RunID    int64
	Attempt  int
	Manifest *archive.Manifest
	Err      error
}

// repoName is the manifest's repository, or the key's first two segments.
func (e *entry) repoName() string {
	if e.Manifest != nil && e.Manifest.Repository.FullName != "" {
		return e.Manifest.Repository.FullName
	}
	if e.Manifest != nil && e.Manifest.Repository.Owner != "" {
		return e.Manifest.Repository.Owner + "/" + e.Manifest.Repository.Name
	}
	parts := strings.SplitN(e.Key, "/", 3)
	return parts[0] + "/" + parts[1]
}

// readers bounds the manifests read at once.
const readers = 8

// loadManifests lists the scope's manifests and reads them, readers at a
// time. A manifest that cannot be read or decoded is returned with Err set;
// only a failed listing is an error. Entries are sorted by repository, run
// and attempt.
func loadManifests(ctx context.Context, st archive.Store, sc scope) ([]entry, error) {
	objs, err := st.List(ctx, sc.prefix())
	if err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	var out []entry
	for _, o := range objs {
		m := manifestKey.FindStringSubmatch(o.Key)
		if m == nil {
			continue
		}
		run, _ := strconv.ParseInt(m[1], 10, 64)
		attempt, _ := strconv.Atoi(m[2])
		if sc.runID != 0 && run != sc.runID {
			continue
		}
		out = append(out, entry{Key: o.Key, RunID: run, Attempt: attempt})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, readers)
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i].Manifest, out[i].Err = readManifest(ctx, st, out[i].Key)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b entry) int {
		return cmp.Or(strings.Compare(a.repoName(), b.repoName()), cmp.Compare(a.RunID, b.RunID), cmp.Compare(a.Attempt, b.Attempt), strings.Compare(a.Key, b.Key))
	})
	return out, nil
}

// maxManifest bounds a manifest read (a run with thousands of artifacts is
// a few MB).
const maxManifest = 64 << 20

func readManifest(ctx context.Context, st archive.Store, key string) (*archive.Manifest, error) {
	b, err := readSmall(ctx, st, key, maxManifest)
	if err != nil {
		return nil, err
	}
	m, err := archive.DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return m, nil
}

// readSmall reads a whole object of at most limit bytes.
func readSmall(ctx context.Context, st archive.Store, key string, limit int64) ([]byte, error) {
	rc, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", key, limit)
	}
	return b, nil
}

// parseSince reads a --since point in time (see parseTime).
func parseSince(s string, now time.Time) (time.Time, error) { return parseTime("--since", s, now) }

// parseTime reads the point in time of flag name: a duration back from now
// ("72h", "90m", "7d"), a date ("2026-01-02", UTC midnight) or an RFC 3339
// time. "" is the zero time.
func parseTime(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("%s %q: want a duration (72h, 7d), a date (2026-01-02) or an RFC 3339 time", name, s)
}

// scopeFromArgs reads the optional owner/repo argument of ls and verify.
func scopeFromArgs(args []string, runID int64) (scope, error) {
	sc := scope{runID: runID}
	switch len(args) {
	case 0:
	case 1:
		var err error
		if sc.owner, sc.repo, err = parseRepo(args[0]); err != nil {
			return scope{}, err
		}
	default:
		return scope{}, usagef("want at most one owner/repo, got %q", args)
	}
	return sc, nil
}

// withStore opens the destination, runs fn with it and closes it.
func (c *cli) withStore(ctx context.Context, fn func(st archive.Store) error) error {
	st, closeStore, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	return fn(st)
}
