package catalog

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// remover is a store that can delete objects (both stores of the archive
// can). Deleting a missing key succeeds.
type remover interface {
	Delete(ctx context.Context, key string) error
}

// Compact merges one month partition (its small files and any earlier
// Parquet files) into one new Parquet file, then removes the files it
// replaced, each only if unchanged since it was read. Readers see every
// row at every moment (perhaps twice, which Find resolves).
//
// The new file is "compacted-<UTC time>-<random>.parquet" in the
// partition's folder under [ParquetPrefix] (CompactResult.Key), created
// only if absent; CompactResult.Partition is the JSONL folder. A small file rewritten while compacting (a later delivery of
// its attempt) has a new ETag and is kept (CompactResult.Kept): it is the
// newer view, and the next compaction merges it. A partition with no
// small file and at most one Parquet file is left as is. The store must
// be able to delete (pkg/s3store and pkg/filestore can).
func Compact(ctx context.Context, st archive.Store, owner, repo, month string) (CompactResult, error) {
	for try := 1; ; try++ {
		res, err := compact(ctx, st, owner, repo, month)
		if errors.Is(err, archive.ErrNotFound) && res.Key == "" && try < findTries {
			continue // a listed file was compacted away meanwhile: list again
		}
		return res, err
	}
}

func compact(ctx context.Context, st archive.Store, owner, repo, month string) (CompactResult, error) {
	res := CompactResult{Partition: PartitionPrefix(owner, repo, month)}
	rm, ok := st.(remover)
	if !ok {
		return res, fmt.Errorf("catalog: compact %s: store %T cannot delete objects", res.Partition, st)
	}
	if _, err := time.Parse("2006-01", month); err != nil {
		return res, fmt.Errorf("catalog: compact %s: month %q: want YYYY-MM", res.Partition, month)
	}
	files, err := listFiles(ctx, st, owner, repo, monthRange{from: month, to: month})
	if err != nil {
		return res, err
	}
	small := 0
	for _, f := range files {
		if !f.parquet() {
			small++
		}
	}
	if small == 0 && len(files) <= 1 {
		return res, nil
	}
	perFile, err := readFiles(ctx, st, files, nil)
	if err != nil {
		return res, fmt.Errorf("catalog: compact %s: %w", res.Partition, err)
	}
	views := map[attemptID]*view{}
	for i, rows := range perFile {
		for _, r := range rows {
			addRow(views, files[i], r)
		}
	}
	var rows []Row
	for _, v := range views {
		rows = append(rows, v.rows...)
	}
	body, err := EncodeParquet(rows)
	if err != nil {
		return res, err
	}
	key := ParquetPartitionPrefix(owner, repo, month) + "compacted-" + time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + strings.ToLower(rand.Text()[:10]) + parquetExt
	opts := archive.PutOptions{Kind: archive.KindRecord, ContentType: ContentTypeParquet, IfAbsent: true}
	if _, err := st.Put(ctx, key, bytes.NewReader(body), int64(len(body)), opts); err != nil {
		return res, fmt.Errorf("catalog: compact %s: write %s: %w", res.Partition, key, err)
	}
	res.Key, res.Rows = key, len(rows)
	for _, f := range files {
		kept, err := removeIfUnchanged(ctx, st, rm, f)
		if err != nil {
			return res, fmt.Errorf("catalog: compact %s: %w", res.Partition, err)
		}
		if kept {
			res.Kept++
		} else {
			res.Merged++
		}
	}
	return res, nil
}

// removeIfUnchanged deletes f unless its ETag changed since it was listed
// (then it reports kept). A file already gone counts as removed.
func removeIfUnchanged(ctx context.Context, st archive.Store, rm remover, f file) (kept bool, err error) {
	info, err := st.Stat(ctx, f.Key)
	switch {
	case errors.Is(err, archive.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("stat %s: %w", f.Key, err)
	case info.ETag != f.ETag:
		return true, nil
	}
	if err := rm.Delete(ctx, f.Key); err != nil {
		return false, fmt.Errorf("delete %s: %w", f.Key, err)
	}
	return false, nil
}

// Partitions lists the partitions under owner/repo (all when empty) in
// both trees, sorted by owner, repo and month, with their file counts.
func Partitions(ctx context.Context, st archive.Store, owner, repo string) ([]Partition, error) {
	files, err := listFiles(ctx, st, owner, repo, monthRange{})
	if err != nil {
		return nil, err
	}
	var parts []Partition
	for _, f := range files {
		p := f.Partition
		if n := len(parts); n > 0 && parts[n-1].Owner == p.Owner && parts[n-1].Repo == p.Repo && parts[n-1].Month == p.Month {
			parts[n-1].SmallFiles += p.SmallFiles
			parts[n-1].ParquetFiles += p.ParquetFiles
			continue
		}
		parts = append(parts, p)
	}
	return parts, nil // listFiles sorts by owner, repo, month
}

// ClosedMonths returns the partitions worth compacting at time now: those
// of months before now's UTC month with a small file or more than one
// Parquet file. Owner and repo in a Partition are as in the keys (already
// safe names), and can be passed to [Compact] as they are.
func ClosedMonths(parts []Partition, now time.Time) []Partition {
	current := Month(now)
	return slices.DeleteFunc(slices.Clone(parts), func(p Partition) bool {
		return p.Month >= current || (p.SmallFiles == 0 && p.ParquetFiles <= 1)
	})
}
