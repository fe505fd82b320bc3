package catalog

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// ContentTypeParquet is the content type of compacted catalogue files.
const ContentTypeParquet = "application/vnd.apache.parquet"

// RowGroupRows is the number of rows per Parquet row group: large enough
// for engines (DuckDB wants a few thousand at least), small enough that
// the head_sha statistics of a group prune most of a file.
const RowGroupRows = 16384

// EncodeParquet renders rows as one zstd-compressed Parquet file, sorted
// by head_sha, then repository, run id, attempt and artifact id, so that
// each row group's head_sha min/max statistics let readers skip groups.
// Times are TIMESTAMP(MICROS, UTC) and the list columns are LISTs, with
// the same column names as the JSONL files.
func EncodeParquet(rows []Row) ([]byte, error) {
	sorted := slices.Clone(rows)
	for i := range sorted {
		sorted[i].normalize()
	}
	slices.SortFunc(sorted, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.HeadSHA, b.HeadSHA), compareRows(a, b))
	})
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[Row](&buf,
		parquet.Compression(&parquet.Zstd),
		parquet.MaxRowsPerRowGroup(RowGroupRows),
		parquet.CreatedBy("artifact-archiver", "catalog", "v1"),
	)
	if _, err := w.Write(sorted); err != nil {
		return nil, fmt.Errorf("catalog: encode parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("catalog: encode parquet: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeParquet reads every row of a Parquet file written by
// [EncodeParquet].
func DecodeParquet(data []byte) ([]Row, error) {
	return decodeParquet(data, nil)
}

// decodeParquet reads the rows of the row groups whose head_sha range can
// hold a SHA with prefix shaPrefix (all when empty).
func decodeParquet(data []byte, shaPrefix []byte) ([]Row, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("catalog: open parquet: %w", err)
	}
	shaCol := -1
	if len(shaPrefix) > 0 {
		if leaf, ok := f.Schema().Lookup("head_sha"); ok {
			shaCol = leaf.ColumnIndex
		}
	}
	var rows []Row
	for i, rg := range f.RowGroups() {
		if shaCol >= 0 && !groupMayHoldPrefix(f, i, shaCol, shaPrefix) {
			continue
		}
		r := parquet.NewGenericRowGroupReader[Row](rg)
		start := len(rows)
		rows = slices.Grow(rows, int(rg.NumRows()))[:start+int(rg.NumRows())]
		n, err := r.Read(rows[start:])
		r.Close()
		rows = rows[:start+n]
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("catalog: read parquet row group %d: %w", i, err)
		}
		if n != int(rg.NumRows()) {
			return nil, fmt.Errorf("catalog: read parquet row group %d: %d of %d rows", i, n, rg.NumRows())
		}
	}
	for i := range rows {
		rows[i].normalize()
	}
	return rows, nil
}

// groupMayHoldPrefix reports whether row group i of f can hold a value of
// column col starting with prefix, from the chunk's min/max statistics
// (true when it has none). Statistics may be truncated; comparing on the
// shorter length keeps the answer conservative.
func groupMayHoldPrefix(f *parquet.File, i, col int, prefix []byte) bool {
	md := f.Metadata()
	if i >= len(md.RowGroups) || col >= len(md.RowGroups[i].Columns) {
		return true
	}
	st := md.RowGroups[i].Columns[col].MetaData.Statistics
	lo, hi := orBytes(st.MinValue, st.Min), orBytes(st.MaxValue, st.Max)
	if lo == nil || hi == nil {
		return true
	}
	return comparePrefix(prefix, lo) >= 0 && comparePrefix(prefix, hi) <= 0
}

// comparePrefix compares p and v on their common length.
func comparePrefix(p, v []byte) int {
	n := min(len(p), len(v))
	return bytes.Compare(p[:n], v[:n])
}

// orBytes returns a unless it is nil, else b.
func orBytes(a, b []byte) []byte {
	if a != nil {
		return a
	}
	return b
}
