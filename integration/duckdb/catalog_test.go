package duckdb_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

// duckType is the DuckDB type of a catalogue column of Go type t.
func duckType(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return "TIMESTAMPTZ"
	case t.Kind() == reflect.String:
		return "VARCHAR"
	case t.Kind() == reflect.Int64:
		return "BIGINT"
	case t.Kind() == reflect.Bool:
		return "BOOLEAN"
	case t.Kind() == reflect.Slice:
		return duckType(t.Elem()) + "[]"
	}
	panic("no DuckDB type for " + t.String())
}

// rowColumns are the catalogue's columns (the json tags of catalog.Row) and
// their DuckDB types, in order.
func rowColumns() [][2]string {
	var out [][2]string
	for f := range reflect.TypeFor[catalog.Row]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, [2]string{name, duckType(f.Type)})
	}
	return out
}

// columnsSpec is read_json's columns argument for the catalogue, as in
// docs/querying.md: explicit types, so that a scan whose sample holds only
// empty lists still types them (auto-detection makes them JSON[]).
func columnsSpec() string {
	var b strings.Builder
	b.WriteString("{")
	for i, c := range rowColumns() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: '%s'", c[0], c[1])
	}
	b.WriteString("}")
	return b.String()
}

// jsonlScan and parquetScan read the two kinds of catalogue file of the
// archive at root, each from its own tree (_catalog/v1 and
// _catalog/v1-parquet), with the partition columns owner, repo and month
// taken from the path (as strings: a numeric-looking owner stays a string) and
// the file name, which orders two views of an attempt with the same
// archived_at.
func jsonlScan(root string) string {
	return fmt.Sprintf(`read_json('%s/_catalog/v1/*/*/*/*.jsonl', format = 'newline_delimited',
        hive_partitioning = true, hive_types_autocast = false, filename = true,
        columns = %s)`, root, columnsSpec())
}

func parquetScan(root string) string {
	return fmt.Sprintf(`read_parquet('%s/_catalog/v1-parquet/*/*/*/*.parquet',
        hive_partitioning = true, hive_types_autocast = false, filename = true)`, root)
}

// catalogView is the view of docs/querying.md: both kinds of file, one view
// of each run attempt (the newest archived_at; on a tie the small file,
// then the later file name). Its window is partitioned by the partition
// columns too, so DuckDB pushes filters on owner, repo and month through
// it to the file scans.
func catalogView(root string) string {
	return fmt.Sprintf(`CREATE VIEW catalog AS
SELECT * EXCLUDE (filename) FROM (
    SELECT * FROM %s
    UNION ALL BY NAME
    SELECT * FROM %s
)
QUALIFY dense_rank() OVER (
    PARTITION BY owner, repo, month, run_id, run_attempt
    ORDER BY archived_at DESC, filename LIKE '%%.parquet', filename DESC
) = 1`, jsonlScan(root), parquetScan(root))
}

// openCatalog opens an in-memory DuckDB with the view "catalog" over a's
// catalogue.
func openCatalog(t *testing.T, a *testArchive) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1) // one in-memory database, one session
	if _, err := db.ExecContext(t.Context(), catalogView(a.dir)); err != nil {
		t.Fatalf("create view: %v", err)
	}
	return db
}

// selectWant is the projection scanned into a want.
const selectWant = `SELECT owner, repo, month, repository, run_id, run_attempt, workflow_name, head_branch, head_sha,
    array_to_string(pull_requests, ','), run_created_at, artifact_id, artifact_name, status, key, size, sha256,
    archived_at, deleted_from_github, attestations`

// query runs selectWant FROM from WHERE where, in the order of wantRows.
func query(t *testing.T, db *sql.DB, from, where string) []want {
	t.Helper()
	q := selectWant + " FROM " + from + " WHERE " + where + " ORDER BY repository, run_id, run_attempt, artifact_id"
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatalf("query %s: %v", where, err)
	}
	defer rows.Close()
	var out []want
	for rows.Next() {
		var w want
		if err := rows.Scan(&w.Owner, &w.Repo, &w.Month, &w.Repository, &w.RunID, &w.RunAttempt, &w.Workflow, &w.Branch, &w.SHA,
			&w.PRs, &w.Created, &w.ArtifactID, &w.Name, &w.Status, &w.Key, &w.Size, &w.SHA256,
			&w.ArchivedAt, &w.Deleted, &w.Attestations); err != nil {
			t.Fatalf("scan: %v", err)
		}
		w.Created, w.ArchivedAt = w.Created.UTC(), w.ArchivedAt.UTC()
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query %s: %v", where, err)
	}
	return out
}

func assertRows(t *testing.T, got, wantRows []want) {
	t.Helper()
	if reflect.DeepEqual(got, wantRows) {
		return
	}
	t.Errorf("got %d rows, want %d", len(got), len(wantRows))
	for i := range max(len(got), len(wantRows)) {
		switch {
		case i >= len(got):
			t.Errorf("missing %+v", wantRows[i])
		case i >= len(wantRows):
			t.Errorf("extra   %+v", got[i])
		case got[i] != wantRows[i]:
			t.Errorf("row %d:\n got  %+v\n want %+v", i, got[i], wantRows[i])
		}
	}
}

func inMonth(m *archive.Manifest, month time.Month) bool {
	c := m.WorkflowRun.CreatedAt.UTC()
	return c.Year() == 2025 && c.Month() == month
}

// TestQuestions answers the questions of issue 14 (and docs/querying.md)
// in SQL over the JSONL and Parquet files together.
func TestQuestions(t *testing.T) {
	a := setup(t)
	db := openCatalog(t, a)
	springFrom, springTo := day(time.March, 1, 0, 0), day(time.June, 1, 0, 0)
	for _, tc := range []struct {
		question string
		where    string
		match    func(*archive.Manifest, archive.ArtifactRecord) bool
		rows     int // the fixture's count, a check on the fixture itself
	}{{
		question: "What did commit abc123 build?",
		where:    "head_sha LIKE 'abc123%'",
		match: func(m *archive.Manifest, _ archive.ArtifactRecord) bool {
			return strings.HasPrefix(m.WorkflowRun.HeadSHA, "abc123")
		},
		rows: 2 + 2 + 2 + 1 + 3, // CI push and its re-run, the PR, the fork, the May release
	}, {
		question: "Which release artifacts came from branch release/2.1 last spring?",
		where: `workflow_name = 'Release' AND head_branch = 'release/2.1'
            AND month BETWEEN '2025-03' AND '2025-05'
            AND run_created_at >= TIMESTAMPTZ '2025-03-01 00:00:00+00'
            AND run_created_at <  TIMESTAMPTZ '2025-06-01 00:00:00+00'`,
		match: func(m *archive.Manifest, _ archive.ArtifactRecord) bool {
			c := m.WorkflowRun.CreatedAt
			return m.WorkflowName == "Release" && m.WorkflowRun.HeadBranch == "release/2.1" && !c.Before(springFrom) && c.Before(springTo)
		},
		rows: 6 * 3, // March 1 00:00, March 18, April 22 (two attempts), May 6, May 31 23:59
	}, {
		question: "Every coverage artifact of the nightly workflow in March",
		where:    "owner = 'octo-org' AND repo = 'app' AND month = '2025-03' AND workflow_name = 'Nightly' AND artifact_name = 'coverage'",
		match: func(m *archive.Manifest, ar archive.ArtifactRecord) bool {
			return m.Repository.FullName == "octo-org/app" && inMonth(m, time.March) && m.WorkflowName == "Nightly" && ar.Name == "coverage"
		},
		rows: 8, // every fourth night from March 2 but the empty March 10, and March 31 23:50
	}, {
		question: "Which runs built pull request 42?",
		where:    "list_contains(pull_requests, 42)",
		match: func(m *archive.Manifest, _ archive.ArtifactRecord) bool {
			return slices.Contains(m.WorkflowRun.PullRequests, 42)
		},
		rows: 2,
	}} {
		t.Run(tc.question, func(t *testing.T) {
			wantRows := a.wantRows(tc.match)
			if len(wantRows) != tc.rows {
				t.Fatalf("fixture: %d rows match, want %d", len(wantRows), tc.rows)
			}
			assertRows(t, query(t, db, "catalog", tc.where), wantRows)
		})
	}
}

// TestCatalogueDeduplicates reads the whole catalogue through the view and
// expects exactly the rows of the manifests as stored now, although the
// files hold two views of three attempts: a March nightly updated after
// its month was compacted (the small file is newer), an April release
// catalogued again unchanged (the same view in a small file and in
// Parquet), and an April run whose small file is older than its Parquet
// view.
func TestCatalogueDeduplicates(t *testing.T) {
	a := setup(t)
	db := openCatalog(t, a)

	var dupAttempts int
	err := db.QueryRowContext(t.Context(), fmt.Sprintf(`SELECT count(*) FROM (
        SELECT repository, run_id, run_attempt FROM (
            SELECT * FROM %s UNION ALL BY NAME SELECT * FROM %s)
        GROUP BY ALL HAVING count(DISTINCT filename) > 1)`, jsonlScan(a.dir), parquetScan(a.dir))).Scan(&dupAttempts)
	if err != nil {
		t.Fatalf("count duplicates: %v", err)
	}
	if dupAttempts != 3 {
		t.Fatalf("attempts in two files: %d, want 3 (the fixture's duplicates)", dupAttempts)
	}

	all := a.wantRows(func(*archive.Manifest, archive.ArtifactRecord) bool { return true })
	assertRows(t, query(t, db, "catalog", "true"), all)

	// The newer view won, in the small file and in the Parquet file.
	var deleted int
	if err := db.QueryRowContext(t.Context(),
		"SELECT count(*) FROM catalog WHERE deleted_from_github").Scan(&deleted); err != nil {
		t.Fatalf("query: %v", err)
	}
	if deleted != 2 {
		t.Errorf("rows deleted from GitHub: %d, want 2", deleted)
	}
}

// filesRead sums the "Total Files Read" of every scan of an EXPLAIN
// ANALYZE of q.
func filesRead(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN ANALYZE "+q)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatalf("scan plan: %v", err)
		}
		plan.WriteString(v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("explain: %v", err)
	}
	found := regexp.MustCompile(`Total Files Read:\s*(\d+)`).FindAllStringSubmatch(plan.String(), -1)
	if len(found) != 2 {
		t.Fatalf("plan has %d file scans, want 2 (JSONL and Parquet):\n%s", len(found), plan.String())
	}
	n := 0
	for _, f := range found {
		c, _ := strconv.Atoi(f[1])
		n += c
	}
	return n
}

// catalogueFiles counts the catalogue's files on disk whose partition
// folder matches the glob (relative to each tree: _catalog/v1 for JSONL,
// _catalog/v1-parquet for Parquet).
func catalogueFiles(t *testing.T, a *testArchive, glob string) int {
	t.Helper()
	n := 0
	for tree, ext := range map[string]string{"v1": ".jsonl", "v1-parquet": ".parquet"} {
		files, err := filepath.Glob(filepath.Join(a.dir, "_catalog", tree, glob, "*"+ext))
		if err != nil {
			t.Fatalf("glob: %v", err)
		}
		n += len(files)
	}
	return n
}

// TestPartitionPruning checks that a filter on owner, repo and month, even
// through the view's dedupe window, reads only the files of the matching
// partitions.
func TestPartitionPruning(t *testing.T) {
	a := setup(t)
	db := openCatalog(t, a)
	total := catalogueFiles(t, a, "*/*/*")
	for _, tc := range []struct {
		where string
		glob  string
	}{
		{"owner = 'octo-org' AND repo = 'app' AND month = '2025-03'", "owner=octo-org/repo=app/month=2025-03"},
		{"owner = 'octo-org' AND repo = 'app' AND month = '2025-06'", "owner=octo-org/repo=app/month=2025-06"},
		{"repo = 'lib'", "*/repo=lib/*"},
		{"month BETWEEN '2025-03' AND '2025-04'", "*/*/month=2025-0[34]"},
	} {
		t.Run(tc.where, func(t *testing.T) {
			want := catalogueFiles(t, a, tc.glob)
			if want == 0 || want >= total {
				t.Fatalf("fixture: %d of %d files in %s", want, total, tc.glob)
			}
			if got := filesRead(t, db, "SELECT * FROM catalog WHERE "+tc.where); got != want {
				t.Errorf("files read: %d, want %d of %d", got, want, total)
			}
		})
	}
	if got := filesRead(t, db, "SELECT * FROM catalog WHERE head_sha LIKE 'abc123%'"); got != total {
		t.Errorf("files read without a partition filter: %d, want all %d", got, total)
	}
}

// TestColumnTypes checks that the JSONL and Parquet files have the same
// columns with the same types, that auto-detection (without columns =)
// reads timestamps as TIMESTAMPTZ and lists as lists, and that
// docs/querying.md documents every column with the type used here.
func TestColumnTypes(t *testing.T) {
	a := setup(t)
	db := openCatalog(t, a)
	describe := func(scan string) map[string]string {
		t.Helper()
		rows, err := db.QueryContext(t.Context(), "SELECT column_name, column_type FROM (DESCRIBE SELECT * EXCLUDE (filename) FROM "+scan+")")
		if err != nil {
			t.Fatalf("describe %s: %v", scan, err)
		}
		defer rows.Close()
		types := map[string]string{}
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				t.Fatalf("scan: %v", err)
			}
			types[name] = typ
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("describe: %v", err)
		}
		return types
	}
	jsonTypes, parquetTypes := describe(jsonlScan(a.dir)), describe(parquetScan(a.dir))
	auto := describe(fmt.Sprintf("read_json('%s/_catalog/v1/*/*/*/*.jsonl', format = 'newline_delimited', hive_partitioning = true, filename = true)", a.dir))

	want := map[string]string{"owner": "VARCHAR", "repo": "VARCHAR", "month": "VARCHAR"}
	for _, c := range rowColumns() {
		want[c[0]] = strings.ReplaceAll(c[1], "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
	}
	if !reflect.DeepEqual(jsonTypes, want) {
		t.Errorf("JSONL columns:\n got  %v\n want %v", jsonTypes, want)
	}
	if !reflect.DeepEqual(parquetTypes, want) {
		t.Errorf("Parquet columns:\n got  %v\n want %v", parquetTypes, want)
	}
	for _, c := range []string{"run_created_at", "run_updated_at", "archived_at"} {
		if auto[c] != "TIMESTAMP WITH TIME ZONE" {
			t.Errorf("auto-detected %s: %s, want TIMESTAMP WITH TIME ZONE", c, auto[c])
		}
	}
	for _, c := range []string{"pull_requests", "predicate_types"} {
		if !strings.HasSuffix(auto[c], "[]") {
			t.Errorf("auto-detected %s: %s, want a list", c, auto[c])
		}
	}

	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "querying.md"))
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	for _, c := range rowColumns() {
		if !strings.Contains(string(doc), "| `"+c[0]+"` |") {
			t.Errorf("docs/querying.md: no table row for column %s", c[0])
		}
		if !strings.Contains(string(doc), c[0]+": '"+c[1]+"'") {
			t.Errorf("docs/querying.md: columns spec lacks %s: '%s'", c[0], c[1])
		}
	}
}

// TestJSONLFiles checks that DuckDB reads the small files by their .jsonl
// suffix with format = 'newline_delimited': one row per line, every file.
func TestJSONLFiles(t *testing.T) {
	a := setup(t)
	db := openCatalog(t, a)
	files, err := filepath.Glob(filepath.Join(a.dir, "_catalog", "v1", "*", "*", "*", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("glob: %d files, %v", len(files), err)
	}
	lines := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		lines += strings.Count(string(b), "\n")
	}
	var rows, nfiles int
	q := fmt.Sprintf("SELECT count(*), count(DISTINCT filename) FROM read_json('%s/_catalog/v1/*/*/*/*.jsonl', format = 'newline_delimited', filename = true)", a.dir)
	if err := db.QueryRowContext(t.Context(), q).Scan(&rows, &nfiles); err != nil {
		t.Fatalf("read_json: %v", err)
	}
	if rows != lines || nfiles != len(files) {
		t.Errorf("read_json: %d rows from %d files, want %d from %d", rows, nfiles, lines, len(files))
	}
}

// TestOneFormatPerTree reads each tree as Athena and Trino do (every file
// under the table's location whatever its suffix, but names starting with
// "." or "_", such as the file store's metadata sidecars): the JSONL tree
// holds only JSON Lines and the Parquet tree only Parquet files, so each
// reads whole, with the same rows as the suffix globs of the view.
func TestOneFormatPerTree(t *testing.T) {
	a := setup(t)
	db := openCatalog(t, a)
	count := func(scan string) (rows, files int) {
		t.Helper()
		q := "SELECT count(*), count(DISTINCT filename) FROM " + scan
		if err := db.QueryRowContext(t.Context(), q).Scan(&rows, &files); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return rows, files
	}
	for _, tc := range []struct{ tree, read, bySuffix string }{
		{"v1", "read_json(%s, format = 'newline_delimited', filename = true, columns = " + columnsSpec() + ")", jsonlScan(a.dir)},
		{"v1-parquet", "read_parquet(%s, filename = true)", parquetScan(a.dir)},
	} {
		files := tableFiles(t, filepath.Join(a.dir, "_catalog", tc.tree))
		rows, read := count(fmt.Sprintf(tc.read, files))
		wantRows, wantFiles := count(tc.bySuffix)
		if rows != wantRows || read != wantFiles || wantFiles == 0 {
			t.Errorf("%s, every file: %d rows from %d files, want %d from %d (>0)", tc.tree, rows, read, wantRows, wantFiles)
		}
	}
}

// tableFiles lists, as a DuckDB list literal, the files an Athena table at
// dir reads: every file below it but those whose name starts with "." or
// "_".
func tableFiles(t *testing.T, dir string) string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") {
			return err
		}
		files = append(files, "'"+p+"'")
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("walk %s: %d files, %v", dir, len(files), err)
	}
	return "[" + strings.Join(files, ", ") + "]"
}
