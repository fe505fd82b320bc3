package catalog

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// readConcurrency bounds the catalogue files read at once.
const readConcurrency = 32

// findTries bounds Find's passes: a pass that finds a listed file gone (a
// compaction removed it after writing its replacement) starts again.
const findTries = 3

// minSHAPrefix is the shortest head SHA prefix a Filter accepts.
const minSHAPrefix = 7

// Validate reports a filter that cannot be used: a SHA that is not at
// least 7 hex digits, a malformed glob, Until before Since.
func (f Filter) Validate() error {
	if f.SHA != "" {
		if len(f.SHA) < minSHAPrefix || len(f.SHA) > 64 || strings.Trim(strings.ToLower(f.SHA), "0123456789abcdef") != "" {
			return fmt.Errorf("catalog: sha %q: want at least %d hex digits", f.SHA, minSHAPrefix)
		}
	}
	for name, glob := range map[string]string{"branch": f.Branch, "workflow": f.Workflow, "name": f.Name} {
		if _, err := path.Match(glob, ""); err != nil {
			return fmt.Errorf("catalog: %s pattern %q: %w", name, glob, err)
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return fmt.Errorf("catalog: until %s is before since %s", f.Until, f.Since)
	}
	return nil
}

// matchAttempt reports whether a row's run-level fields match f (every
// filter but Name and PR, which are applied to the newest view of an
// attempt).
func (f Filter) matchAttempt(r *Row) bool {
	switch {
	case f.RunID != 0 && r.RunID != f.RunID:
		return false
	case f.SHA != "" && !strings.HasPrefix(strings.ToLower(r.HeadSHA), strings.ToLower(f.SHA)):
		return false
	case !f.Since.IsZero() && r.RunCreatedAt.Before(f.Since):
		return false
	case !f.Until.IsZero() && r.RunCreatedAt.After(f.Until):
		return false
	case f.Branch != "" && !glob(f.Branch, r.HeadBranch):
		return false
	case f.Workflow != "" && !glob(f.Workflow, r.WorkflowName) && !glob(f.Workflow, r.WorkflowPath) && !glob(f.Workflow, path.Base(r.WorkflowPath)):
		return false
	}
	return true
}

// matchRow applies the filters of one view's rows.
func (f Filter) matchRow(r *Row) bool {
	switch {
	case f.Name != "" && !glob(f.Name, r.ArtifactName):
		return false
	case f.PR != 0 && !slices.Contains(r.PullRequests, f.PR):
		return false
	}
	return true
}

func glob(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

// Find returns the rows that match f, reading only the partitions that can
// hold them (owner, repo, month), from both small JSONL files and Parquet
// files, and keeping one view of each run attempt (the newest archived_at;
// a small file over a Parquet file on a tie). Rows are sorted by
// repository, run id, attempt and artifact id.
//
// Since and Until bound the run's created_at, both inclusive. Files are
// read concurrently (up to 32 at a time), each whole into memory: Parquet
// files are read from memory, skipping the row groups and pages whose
// head_sha statistics (and page index) rule out f.SHA.
func Find(ctx context.Context, st archive.Store, f Filter) ([]Row, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		rows, err := find(ctx, st, f)
		if errors.Is(err, archive.ErrNotFound) && try < findTries {
			continue // compacted meanwhile: its replacement is listed now
		}
		return rows, err
	}
}

func find(ctx context.Context, st archive.Store, f Filter) ([]Row, error) {
	files, err := listFiles(ctx, st, f.Owner, f.Repo, monthRange{from: monthOf(f.Since), to: monthOf(f.Until)})
	if err != nil {
		return nil, err
	}
	views, err := readViews(ctx, st, files, f)
	if err != nil {
		return nil, err
	}
	var out []Row
	for _, v := range views {
		for i := range v.rows {
			if f.matchRow(&v.rows[i]) {
				out = append(out, v.rows[i])
			}
		}
	}
	slices.SortFunc(out, compareRows)
	return out, nil
}

// compareRows orders rows by repository, run id, attempt and artifact id.
func compareRows(a, b Row) int {
	return cmp.Or(
		strings.Compare(a.Repository, b.Repository),
		cmp.Compare(a.RunID, b.RunID),
		cmp.Compare(a.RunAttempt, b.RunAttempt),
		cmp.Compare(a.ArtifactID, b.ArtifactID),
	)
}

func monthOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return Month(t)
}

// monthRange is an inclusive range of "YYYY-MM" months; an empty bound is
// open.
type monthRange struct{ from, to string }

func (r monthRange) contains(month string) bool {
	return (r.from == "" || month >= r.from) && (r.to == "" || month <= r.to)
}

// file is one catalogue file.
type file struct {
	Partition
	Key  string
	ETag string
}

// parquet reports whether the file is a compacted Parquet file.
func (f file) parquet() bool { return strings.HasSuffix(f.Key, parquetExt) }

// listFiles lists the catalogue files of the partitions under owner/repo
// (all when empty) whose month is in months, from both trees at once. In
// each tree it lists only the narrowest prefix that holds them. Files are
// sorted by partition (owner, repo, month), then key.
func listFiles(ctx context.Context, st archive.Store, owner, repo string, months monthRange) ([]file, error) {
	scope := ""
	if owner != "" {
		scope = "owner=" + archive.SafeName(owner) + "/"
		if repo != "" {
			scope += "repo=" + archive.SafeName(repo) + "/"
		}
	}
	roots := [...]string{Prefix, ParquetPrefix}
	var (
		listed [len(roots)][]archive.ObjectInfo
		errs   [len(roots)]error
		wg     sync.WaitGroup
	)
	for i, root := range roots {
		wg.Go(func() {
			listed[i], errs[i] = st.List(ctx, root+scope)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("catalog: list %s: %w", root+scope, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	var files []file
	for _, infos := range listed {
		for _, info := range infos {
			p, ok := parseKey(info.Key)
			if !ok || !months.contains(p.Month) || (repo != "" && p.Repo != archive.SafeName(repo)) {
				continue
			}
			files = append(files, file{Partition: p, Key: info.Key, ETag: info.ETag})
		}
	}
	slices.SortFunc(files, func(a, b file) int {
		return cmp.Or(
			strings.Compare(a.Owner, b.Owner),
			strings.Compare(a.Repo, b.Repo),
			strings.Compare(a.Month, b.Month),
			strings.Compare(a.Key, b.Key),
		)
	})
	return files, nil
}

// parseKey parses a catalogue file's key: a JSONL file
// "_catalog/v1/owner=o/repo=r/month=YYYY-MM/<name>.jsonl" or a Parquet file
// "_catalog/v1-parquet/owner=o/repo=r/month=YYYY-MM/<name>.parquet". The
// partition's counts are those of this one file. Other files (a Parquet
// file under Prefix, which engines reading that tree as JSON would fail
// on) are not the catalogue's.
func parseKey(key string) (Partition, bool) {
	var rest, ext string
	if r, ok := strings.CutPrefix(key, Prefix); ok {
		rest, ext = r, jsonlExt
	} else if r, ok := strings.CutPrefix(key, ParquetPrefix); ok {
		rest, ext = r, parquetExt
	} else {
		return Partition{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || !strings.HasSuffix(parts[3], ext) {
		return Partition{}, false
	}
	owner, ok1 := strings.CutPrefix(parts[0], "owner=")
	repo, ok2 := strings.CutPrefix(parts[1], "repo=")
	month, ok3 := strings.CutPrefix(parts[2], "month=")
	if !ok1 || !ok2 || !ok3 || len(month) != len("2006-01") {
		return Partition{}, false
	}
	p := Partition{Owner: owner, Repo: repo, Month: month}
	if ext == jsonlExt {
		p.SmallFiles = 1
	} else {
		p.ParquetFiles = 1
	}
	return p, true
}

// attemptID identifies a run attempt across the catalogue.
type attemptID struct {
	repository string
	runID      int64
	attempt    int64
}

// view is one file's rows of one run attempt.
type view struct {
	archivedAt time.Time
	small      bool
	key        string
	rows       []Row
}

// newer reports whether v is a better view of its attempt than w: newer,
// or as new and from a small file, or (a tie between like files) from the
// later key.
func (v *view) newer(w *view) bool {
	if c := v.archivedAt.Compare(w.archivedAt); c != 0 {
		return c > 0
	}
	if v.small != w.small {
		return v.small
	}
	return v.key > w.key
}

// readViews reads files concurrently and returns the best view of each
// attempt, keeping only rows whose run-level fields match f.
func readViews(ctx context.Context, st archive.Store, files []file, f Filter) (map[attemptID]*view, error) {
	var shaPrefix []byte
	if f.SHA != "" {
		shaPrefix = []byte(strings.ToLower(f.SHA))
	}
	perFile, err := readFiles(ctx, st, files, shaPrefix)
	if err != nil {
		return nil, err
	}
	views := map[attemptID]*view{}
	for i, rows := range perFile {
		for _, r := range rows {
			if !f.matchAttempt(&r) {
				continue
			}
			addRow(views, files[i], r)
		}
	}
	return views, nil
}

// addRow adds one row of file fl to its attempt's views, replacing a
// worse view of that attempt from another file.
func addRow(views map[attemptID]*view, fl file, r Row) {
	id := attemptID{r.Repository, r.RunID, r.RunAttempt}
	cur := views[id]
	if cur != nil && cur.key == fl.Key {
		cur.rows = append(cur.rows, r)
		cur.archivedAt = maxTime(cur.archivedAt, r.ArchivedAt)
		return
	}
	v := &view{archivedAt: r.ArchivedAt, small: !fl.parquet(), key: fl.Key, rows: []Row{r}}
	if cur == nil || v.newer(cur) {
		views[id] = v
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// readFiles reads the rows of every file, readConcurrency at a time; for
// Parquet files only the row groups that can hold shaPrefix (all when
// nil). It stops at the first error.
func readFiles(ctx context.Context, st archive.Store, files []file, shaPrefix []byte) ([][]Row, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make([][]Row, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(readConcurrency, len(files)) {
		wg.Go(func() {
			for i := range next {
				rows, err := readFile(ctx, st, files[i], shaPrefix)
				if err != nil {
					cancel(err)
					continue
				}
				out[i] = rows
			}
		})
	}
feed:
	for i := range files {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// readFile reads the rows of one catalogue file.
func readFile(ctx context.Context, st archive.Store, f file, shaPrefix []byte) ([]Row, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	b, err := readAll(ctx, st, f.Key)
	if err != nil {
		return nil, fmt.Errorf("catalog: read %s: %w", f.Key, err)
	}
	var rows []Row
	if f.parquet() {
		rows, err = decodeParquet(b, shaPrefix)
	} else {
		rows, err = DecodeJSONL(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: read %s: %w", f.Key, err)
	}
	return rows, nil
}
