package catalog

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// manyRows returns n rows of n/3 attempts with distinct head SHAs.
func manyRows(n int) []Row {
	created := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]Row, n)
	for i := range rows {
		run := int64(i / 3)
		rows[i] = Row{
			Repository: "octo/app", RunID: run, RunAttempt: 1, HeadSHA: fmt.Sprintf("%08x%032x", uint32(run*2654435761), run),
			PullRequests: []int64{}, RunCreatedAt: created.Add(time.Duration(run) * time.Second), RunUpdatedAt: created,
			ArtifactID: int64(i), ArtifactName: fmt.Sprint("a", i%3), Status: "archived", ArchivedAt: created,
			PredicateTypes: []string{}, ManifestKey: fmt.Sprintf("octo/app/runs/%d/attempt-1/manifest.json", run),
		}
		if i%2 == 0 {
			rows[i].PullRequests = []int64{run, run + 1}
			rows[i].PredicateTypes = []string{"https://slsa.dev/provenance/v1"}
		}
	}
	return rows
}

// TestParquetSchema: the columns engines see have the JSONL files' names,
// times are TIMESTAMP(MICROS, UTC) and lists are LISTs.
func TestParquetSchema(t *testing.T) {
	b, err := EncodeParquet(manyRows(3))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	rt := reflect.TypeFor[Row]()
	fields := f.Schema().Fields()
	if len(fields) != rt.NumField() {
		t.Fatalf("%d columns, want %d", len(fields), rt.NumField())
	}
	for i, fld := range fields {
		if want := rt.Field(i).Tag.Get("json"); fld.Name() != want {
			t.Errorf("column %d is %q, want %q", i, fld.Name(), want)
		}
		lt := fld.Type().LogicalType()
		switch fld.Name() {
		case "run_created_at", "run_updated_at", "archived_at":
			if lt == nil || lt.String() != "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)" {
				t.Errorf("%s: logical type %v, want TIMESTAMP(MICROS, UTC)", fld.Name(), lt)
			}
		case "pull_requests", "predicate_types":
			if lt == nil || lt.String() != "LIST" {
				t.Errorf("%s: logical type %v, want LIST", fld.Name(), lt)
			}
		}
	}
	if got := f.Metadata().RowGroups[0].Columns[0].MetaData.Codec; got != format.Zstd {
		t.Errorf("codec %v, want zstd", got)
	}
}

// TestParquetRoundTripAndPruning: rows come back equal; a SHA lookup reads
// only the pages (of the row groups) whose head_sha range can hold it.
func TestParquetRoundTripAndPruning(t *testing.T) {
	rows := manyRows(3 * RowGroupRows)
	b, err := EncodeParquet(rows)
	if err != nil {
		t.Fatal(err)
	}
	all, err := DecodeParquet(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(rows) {
		t.Fatalf("decoded %d rows, want %d", len(all), len(rows))
	}
	byID := map[int64]Row{}
	for _, r := range all {
		byID[r.ArtifactID] = r
	}
	for _, want := range rows {
		if got := byID[want.ArtifactID]; !reflect.DeepEqual(got, want) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", want.ArtifactID, got, want)
		}
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].HeadSHA > all[i].HeadSHA {
			t.Fatalf("rows not sorted by head_sha at %d", i)
		}
	}
	sha := rows[4000].HeadSHA
	some, err := decodeParquet(b, []byte(sha[:12]))
	if err != nil {
		t.Fatal(err)
	}
	if len(some) == 0 || len(some) > RowGroupRows/8 {
		t.Errorf("SHA lookup read %d rows, want the rows of a few pages (far fewer than a group's %d)", len(some), RowGroupRows)
	}
	found := 0
	for _, r := range some {
		if r.HeadSHA == sha {
			found++
		}
	}
	if found != 3 {
		t.Errorf("SHA lookup found %d rows with the SHA, want 3", found)
	}
	none, err := decodeParquet(b, []byte("ffffffffff"))
	if err != nil || len(none) != 0 {
		t.Errorf("lookup of a SHA above every group read %d rows (%v), want 0", len(none), err)
	}
}

// TestParquetPagePruningKeepsEveryMatch: within one row group, a lookup of
// each SHA prefix (short and full, at page edges too) returns every row
// with that prefix, and fewer rows than the group.
func TestParquetPagePruningKeepsEveryMatch(t *testing.T) {
	rows := manyRows(9000) // one row group, three rows per SHA
	b, err := EncodeParquet(rows)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, r := range rows {
		want[r.HeadSHA]++
	}
	for i := 0; i < len(rows); i += 97 {
		sha := rows[i].HeadSHA
		for _, prefix := range []string{sha[:7], sha[:12], sha} {
			got, err := decodeParquet(b, []byte(prefix))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, r := range got {
				if r.HeadSHA == sha {
					n++
				}
			}
			if n != want[sha] || len(got) >= len(rows) {
				t.Fatalf("lookup %s: %d of %d rows with the SHA among %d read (of %d)", prefix, n, want[sha], len(got), len(rows))
			}
		}
	}
}
