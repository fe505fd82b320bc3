package archivectl

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

var catalogCommand = &command{
	name:     "catalog",
	synopsis: "rebuild|compact [owner/repo] [flags]",
	summary:  "rebuild the query catalogue from the manifests; compact closed months into Parquet",
	help: `The catalogue (_catalog/v1/ in the destination) holds one row per
artifact per run attempt, in Hive-style partitions
(owner=O/repo=R/month=YYYY-MM, the month of the run's creation) that
"find", "ls" and query engines (DuckDB, Athena, Trino) read. The worker
writes one small JSONL file per run attempt right after its manifest.

rebuild regenerates those files from the manifests: for an archive
written before the catalogue existed, or to repair files the worker
could not write. compact merges a month's small files into one Parquet
file under _catalog/v1-parquet/, in the same partition folders (the
Parquet file is written first; each small file is then removed only if
unchanged), which is what keeps "find" fast on a large archive.

Both write to the destination: use credentials that may put and delete
objects under _catalog/.

Examples:
  archivectl catalog rebuild
  archivectl catalog compact octo-org/app --month 2026-03`,
	env:         []envGroup{envDestination, envOutput},
	subcommands: []*command{catalogRebuildCommand, catalogCompactCommand},
}

var catalogRebuildCommand = &command{
	name:     "catalog rebuild",
	synopsis: "[owner/repo]",
	summary:  "rewrite the catalogue files of every manifest (of one repository, or all)",
	help: `Reads every attempt-N/manifest.json of the repository (or of the whole
destination) and rewrites the run attempt's catalogue file from it.
Prints how many manifests were read and files written. Exit code 1 if
any file could not be written (the others are written).`,
	env: []envGroup{envDestination, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		return func(ctx context.Context, c *cli, args []string) error {
			sc, err := scopeFromArgs(args, 0)
			if err != nil {
				return err
			}
			return c.withStore(ctx, func(st archive.Store) error { return rebuild(ctx, c, st, sc) })
		}
	},
}

// rebuild rebuilds the scope's catalogue and reports the counts; a
// manifest that failed is reported with the first error and exit code 1.
func rebuild(ctx context.Context, c *cli, st archive.Store, sc scope) error {
	res, err := catalog.Rebuild(ctx, st, sc.owner, sc.repo)
	if err != nil && res.Failed == 0 {
		return fmt.Errorf("rebuild the catalogue of %s: %w", sc, err)
	}
	fmt.Fprintf(c.stdout, "%s read, %s written, %d failed\n",
		plural(res.Manifests, "manifest"), plural(res.Written, "catalogue file"), res.Failed)
	if err != nil {
		fmt.Fprintf(c.stderr, "archivectl catalog rebuild: %v; run it again\n", err)
		return errReported
	}
	return nil
}

var catalogCompactCommand = &command{
	name:     "catalog compact",
	synopsis: "[owner/repo] [--month YYYY-MM] [--json]",
	summary:  "merge closed months' small catalogue files into Parquet",
	help: `Merges the small files of each month partition (and any earlier Parquet
files there) into one new Parquet file, then removes what it replaced;
readers see every row throughout. A small file rewritten meanwhile (a
late delivery) is kept and merged next time.

Without --month it compacts every closed month (before the current UTC
month) that has small files or more than one Parquet file; --month compacts that month, closed or not.
Prints one line per partition: rows, files merged and kept, the Parquet
file written.`,
	env: []envGroup{envDestination, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		month := fs.String("month", "", "compact only month `YYYY-MM` (default: every closed month with small files)")
		json := fs.Bool("json", false, "print the results as JSON")
		return func(ctx context.Context, c *cli, args []string) error {
			sc, err := scopeFromArgs(args, 0)
			if err != nil {
				return err
			}
			if *month != "" {
				if _, err := time.Parse("2006-01", *month); err != nil {
					return usagef("--month %q: want YYYY-MM", *month)
				}
			}
			return c.withStore(ctx, func(st archive.Store) error {
				parts, err := catalog.Partitions(ctx, st, sc.owner, sc.repo)
				if err != nil {
					return fmt.Errorf("list the catalogue of %s: %w", sc, err)
				}
				return compact(ctx, c, st, toCompact(parts, *month, c.now()), *json)
			})
		}
	},
}

// toCompact picks the partitions to compact: those of month, or else the
// closed months with small files.
func toCompact(parts []catalog.Partition, month string, now time.Time) []catalog.Partition {
	if month == "" {
		return catalog.ClosedMonths(parts, now)
	}
	var out []catalog.Partition
	for _, p := range parts {
		if p.Month == month {
			out = append(out, p)
		}
	}
	return out
}

// compact compacts parts one after the other and reports each. A failed
// partition is reported and the others are still compacted.
func compact(ctx context.Context, c *cli, st archive.Store, parts []catalog.Partition, asJSON bool) error {
	results := []catalog.CompactResult{}
	failed := 0
	for _, p := range parts {
		res, err := catalog.Compact(ctx, st, p.Owner, p.Repo, p.Month)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed++
			fmt.Fprintf(c.stderr, "archivectl catalog compact: %s/%s %s: %v\n", p.Owner, p.Repo, p.Month, err)
			continue
		}
		results = append(results, res)
	}
	if asJSON {
		if err := writeJSON(c.stdout, results); err != nil {
			return err
		}
	} else if err := compactTable(c, results); err != nil {
		return err
	}
	if failed > 0 {
		fmt.Fprintf(c.stderr, "archivectl catalog compact: %s failed\n", plural(failed, "partition"))
		return errReported
	}
	return nil
}

func compactTable(c *cli, results []catalog.CompactResult) error {
	if len(results) == 0 {
		fmt.Fprintln(c.stderr, "nothing to compact")
		return nil
	}
	t := newTable(c.stdout, c.color, nil, "PARTITION", "ROWS", "MERGED", "KEPT", "PARQUET")
	merged := 0
	for _, r := range results {
		t.row(r.Partition, strconv.Itoa(r.Rows), strconv.Itoa(r.Merged), strconv.Itoa(r.Kept), orDash(r.Key))
		merged += r.Merged
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "%s compacted, %s merged\n", plural(len(results), "partition"), plural(merged, "file"))
	return nil
}
