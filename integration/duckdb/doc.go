// Package duckdb proves that the archive's query catalogue (pkg/catalog) is
// readable by a real query engine: its tests build a file:// archive with
// the project's own code (pkg/filestore, archive manifests, catalog.Write
// and catalog.Compact), open DuckDB through github.com/duckdb/duckdb-go/v2
// and answer the questions of docs/querying.md in SQL over the JSONL and
// Parquet files together.
//
// It is a separate Go module, so that the main module never depends on cgo
// or on DuckDB's prebuilt library (about 100 MB). Run it with
//
//	make query-engines
//
// or `cd integration/duckdb && CGO_ENABLED=1 go test -count=1 ./...`. The
// prebuilt library links the JSON and Parquet extensions but not httpfs,
// so the tests read a local archive; docs/querying.md shows the same SQL
// over S3.
package duckdb
