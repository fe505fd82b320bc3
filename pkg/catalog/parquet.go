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

// pageBufferSize bounds a column page (before encoding): small enough
// that a head_sha page holds a few hundred rows, so that the page index
// prunes within a row group too.
const pageBufferSize = 16 << 10

// EncodeParquet renders rows as one zstd-compressed Parquet file, sorted
// by head_sha, then repository, run id, attempt and artifact id, so that
// each row group's head_sha min/max statistics, and those of each page in
// the page index, let readers skip groups and pages.
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
		parquet.PageBufferSize(pageBufferSize),
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
// hold a SHA with prefix shaPrefix (all when empty), and in those only the
// rows of the pages whose range can hold it: the rows returned are a
// superset of those with that prefix.
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
		first, end := int64(0), rg.NumRows()
		if shaCol >= 0 {
			first, end = pagesMayHoldPrefix(rg, shaCol, shaPrefix)
		}
		if first >= end {
			continue
		}
		var err error
		if rows, err = readRowRange(rows, rg, first, end); err != nil {
			return nil, fmt.Errorf("catalog: read parquet row group %d: %w", i, err)
		}
	}
	for i := range rows {
		rows[i].normalize()
	}
	return rows, nil
}

// readRowRange appends rows [first, end) of rg to rows.
func readRowRange(rows []Row, rg parquet.RowGroup, first, end int64) ([]Row, error) {
	r := parquet.NewGenericRowGroupReader[Row](rg)
	defer r.Close()
	if first > 0 {
		if err := r.SeekToRow(first); err != nil {
			return rows, fmt.Errorf("seek to row %d: %w", first, err)
		}
	}
	want := int(end - first)
	start := len(rows)
	rows = slices.Grow(rows, want)[:start+want]
	n := 0
	for n < want {
		m, err := r.Read(rows[start+n:])
		n += m
		if errors.Is(err, io.EOF) || (err == nil && m == 0) {
			break
		}
		if err != nil {
			return rows[:start+n], err
		}
	}
	if n != want {
		return rows[:start+n], fmt.Errorf("rows %d to %d: read %d", first, end, n)
	}
	return rows, nil
}

// pagesMayHoldPrefix returns the rows [first, end) of rg spanned by the
// pages of column col whose min/max in the page index can hold a value
// starting with prefix: the whole group when it has no page index, an
// empty range when no page can.
func pagesMayHoldPrefix(rg parquet.RowGroup, col int, prefix []byte) (first, end int64) {
	all := rg.NumRows()
	chunks := rg.ColumnChunks()
	if col >= len(chunks) {
		return 0, all
	}
	ci, err1 := chunks[col].ColumnIndex()
	oi, err2 := chunks[col].OffsetIndex()
	if err1 != nil || err2 != nil || ci.NumPages() != oi.NumPages() || ci.NumPages() == 0 {
		return 0, all
	}
	first, end = all, 0
	for p := range ci.NumPages() {
		lo, hi := ci.MinValue(p), ci.MaxValue(p)
		if !ci.NullPage(p) && (comparePrefix(prefix, lo.ByteArray()) < 0 || comparePrefix(prefix, hi.ByteArray()) > 0) {
			continue
		}
		pageEnd := all
		if p+1 < oi.NumPages() {
			pageEnd = oi.FirstRowIndex(p + 1)
		}
		first, end = min(first, oi.FirstRowIndex(p)), max(end, pageEnd)
	}
	return first, end
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
