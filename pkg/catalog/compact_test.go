package catalog_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

// TestFindPruning: Find lists only the owner/repo it asks for and opens
// no file of a month outside Since/Until.
func TestFindPruning(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		for _, r := range fixture() {
			archiveRun(t, st, r)
		}
		spy := &spyStore{store: st}
		rows := find(t, spy, catalog.Filter{Owner: "octo", Repo: "app", Since: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC)})
		if got, want := attempts(rows), "octo/app#2.1/dist octo/app#2.2/dist octo/app#2.2/sbom"; got != want {
			t.Errorf("Find = %s, want %s", got, want)
		}
		opened, listed := spy.reset()
		slices.Sort(listed)
		if want := []string{"_catalog/v1-parquet/owner=octo/repo=app/", "_catalog/v1/owner=octo/repo=app/"}; !slices.Equal(listed, want) {
			t.Errorf("listed %q, want %q", listed, want)
		}
		slices.Sort(opened)
		if want := []string{"_catalog/v1/owner=octo/repo=app/month=2025-03/2-1.jsonl", "_catalog/v1/owner=octo/repo=app/month=2025-03/2-2.jsonl"}; !slices.Equal(opened, want) {
			t.Errorf("opened %q, want only %q", opened, want)
		}

		find(t, spy, catalog.Filter{Owner: "other", SHA: "ddddddd"})
		opened, listed = spy.reset()
		slices.Sort(listed)
		if want := []string{"_catalog/v1-parquet/owner=other/", "_catalog/v1/owner=other/"}; !slices.Equal(listed, want) {
			t.Errorf("listed %q, want %q", listed, want)
		}
		for _, k := range opened {
			if !strings.HasPrefix(k, "_catalog/v1/owner=other/") && !strings.HasPrefix(k, "_catalog/v1-parquet/owner=other/") {
				t.Errorf("opened %s outside owner=other", k)
			}
		}

		// Since alone: months before it are not read.
		find(t, spy, catalog.Filter{Since: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)})
		opened, _ = spy.reset()
		if want := []string{"_catalog/v1/owner=octo/repo=app/month=2025-04/3-1.jsonl"}; !slices.Equal(opened, want) {
			t.Errorf("opened %q, want only %q", opened, want)
		}
	})
}

// TestCompact: a closed month becomes one Parquet file with the same rows;
// Find reads Parquet and small files together, keeping the newest view of
// each attempt; a small file rewritten while compacting is kept.
func TestCompact(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		runs := fixture()
		for _, r := range runs {
			archiveRun(t, st, r)
		}
		before := find(t, st, catalog.Filter{})

		parts, err := catalog.Partitions(t.Context(), st, "", "")
		if err != nil {
			t.Fatal(err)
		}
		wantParts := []catalog.Partition{
			{Owner: "octo", Repo: "app", Month: "2025-02", SmallFiles: 1},
			{Owner: "octo", Repo: "app", Month: "2025-03", SmallFiles: 2},
			{Owner: "octo", Repo: "app", Month: "2025-04", SmallFiles: 1},
			{Owner: "octo", Repo: "lib", Month: "2025-03", SmallFiles: 1},
			{Owner: "other", Repo: "app", Month: "2025-03", SmallFiles: 1},
		}
		if !reflect.DeepEqual(parts, wantParts) {
			t.Fatalf("Partitions = %+v\nwant %+v", parts, wantParts)
		}
		closed := catalog.ClosedMonths(parts, time.Date(2025, 4, 20, 0, 0, 0, 0, time.UTC))
		if len(closed) != 4 || slices.ContainsFunc(closed, func(p catalog.Partition) bool { return p.Month == "2025-04" }) {
			t.Errorf("ClosedMonths = %+v, want every partition but April's", closed)
		}

		res, err := catalog.Compact(t.Context(), st, "octo", "app", "2025-03")
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows != 3 || res.Merged != 2 || res.Kept != 0 || res.Partition != catalog.PartitionPrefix("octo", "app", "2025-03") || !strings.HasPrefix(res.Key, catalog.ParquetPartitionPrefix("octo", "app", "2025-03")+"compacted-") || !strings.HasSuffix(res.Key, ".parquet") {
			t.Errorf("Compact = %+v", res)
		}
		keys := catalogKeys(t, st)
		if slices.Contains(keys, catalog.AttemptKey("octo", "app", "2025-03", 2, 1)) || !slices.Contains(keys, res.Key) {
			t.Errorf("after compacting, the catalogue holds %q", keys)
		}
		// Each tree holds one format: an engine's table at Prefix (JSON)
		// or ParquetPrefix (Parquet) never meets the other.
		for root, ext := range map[string]string{catalog.Prefix: ".jsonl", catalog.ParquetPrefix: ".parquet"} {
			infos, err := st.List(t.Context(), root)
			if err != nil || len(infos) == 0 {
				t.Fatalf("list %s: %d files, %v", root, len(infos), err)
			}
			for _, i := range infos {
				if !strings.HasSuffix(i.Key, ext) {
					t.Errorf("%s holds %s, want only %s files", root, i.Key, ext)
				}
			}
		}
		info, err := st.Stat(t.Context(), res.Key)
		if err != nil || info.ContentType != catalog.ContentTypeParquet {
			t.Errorf("parquet file: %+v, %v", info, err)
		}
		if after := find(t, st, catalog.Filter{}); !reflect.DeepEqual(after, before) {
			t.Errorf("rows changed by compacting:\n got %+v\nwant %+v", after, before)
		}

		// A later delivery of run 2 attempt 2 rewrites its small file: the
		// newer view wins over the Parquet one.
		r := runs[2]
		r.artifacts = append(r.artifacts, "late")
		r.archivedAt = r.created.Add(time.Hour)
		archiveRun(t, st, r)
		if got, want := attempts(find(t, st, catalog.Filter{RunID: 2})), "octo/app#2.1/dist octo/app#2.2/dist octo/app#2.2/sbom octo/app#2.2/late"; got != want {
			t.Errorf("after a newer small file: %s, want %s", got, want)
		}

		// Compact again; while it runs (after it wrote its Parquet file,
		// before it removes the files it read), attempt 2 is rewritten once
		// more: that small file must be kept.
		r.artifacts = append(r.artifacts, "later")
		r.archivedAt = r.created.Add(2 * time.Hour)
		spy := &spyStore{store: st}
		rewrote := false
		spy.beforeSta = func(key string) {
			if rewrote || !strings.HasSuffix(key, "/2-2.jsonl") {
				return
			}
			rewrote = true
			archiveRun(t, st, r)
		}
		res, err = catalog.Compact(t.Context(), spy, "octo", "app", "2025-03")
		if err != nil {
			t.Fatal(err)
		}
		if !rewrote || res.Kept != 1 || res.Merged != 1 || res.Rows != 4 {
			t.Errorf("Compact with a concurrent rewrite = %+v (rewrote %v), want 1 kept, 1 merged, 4 rows", res, rewrote)
		}
		keys = catalogKeys(t, st)
		if !slices.Contains(keys, catalog.AttemptKey("octo", "app", "2025-03", 2, 2)) {
			t.Errorf("the rewritten small file is gone: %q", keys)
		}
		if got, want := attempts(find(t, st, catalog.Filter{RunID: 2})), "octo/app#2.1/dist octo/app#2.2/dist octo/app#2.2/sbom octo/app#2.2/late octo/app#2.2/later"; got != want {
			t.Errorf("after the concurrent rewrite: %s, want %s", got, want)
		}

		// A third compaction merges the kept file and the Parquet file.
		res, err = catalog.Compact(t.Context(), st, "octo", "app", "2025-03")
		if err != nil || res.Merged != 2 || res.Kept != 0 || res.Rows != 5 {
			t.Errorf("third Compact = %+v, %v", res, err)
		}
		parts, err = catalog.Partitions(t.Context(), st, "octo", "app")
		if err != nil {
			t.Fatal(err)
		}
		if want := (catalog.Partition{Owner: "octo", Repo: "app", Month: "2025-03", ParquetFiles: 1}); !slices.Contains(parts, want) {
			t.Errorf("Partitions = %+v, want %+v among them", parts, want)
		}
		// Nothing left to do.
		if res, err := catalog.Compact(t.Context(), st, "octo", "app", "2025-03"); err != nil || res.Key != "" {
			t.Errorf("fourth Compact = %+v, %v; want nothing done", res, err)
		}
		// A SHA lookup over a mix of Parquet and small files.
		if got, want := attempts(find(t, st, catalog.Filter{SHA: "bbbbbbb222"})), "octo/app#2.1/dist octo/app#2.2/dist octo/app#2.2/sbom octo/app#2.2/late octo/app#2.2/later"; got != want {
			t.Errorf("SHA lookup: %s, want %s", got, want)
		}
		if got, want := attempts(find(t, st, catalog.Filter{Name: "dist"})), "octo/app#1.1/dist octo/app#2.1/dist octo/app#2.2/dist other/app#5.1/dist"; got != want {
			t.Errorf("name lookup: %s, want %s", got, want)
		}
	})
}

// TestCompactNeedsDelete: a store that cannot delete is refused before
// anything is written.
func TestCompactNeedsDelete(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		archiveRun(t, st, fixture()[0])
		type plain struct{ archive.Store }
		if _, err := catalog.Compact(t.Context(), plain{st}, "octo", "app", "2025-02"); err == nil || !strings.Contains(err.Error(), "cannot delete") {
			t.Errorf("Compact on a store without Delete = %v", err)
		}
		if keys := catalogKeys(t, st); len(keys) != 1 {
			t.Errorf("catalogue after a refused compaction: %q", keys)
		}
	})
}

// TestRebuild: after the catalogue is deleted, Rebuild regenerates it from
// the manifests.
func TestRebuild(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		for _, r := range fixture() {
			archiveRun(t, st, r)
		}
		before := find(t, st, catalog.Filter{})
		for _, k := range catalogKeys(t, st) {
			if err := st.Delete(t.Context(), k); err != nil {
				t.Fatal(err)
			}
		}
		if rows := find(t, st, catalog.Filter{}); len(rows) != 0 {
			t.Fatalf("%d rows after deleting the catalogue", len(rows))
		}
		res, err := catalog.Rebuild(t.Context(), st, "octo", "app")
		if err != nil || res != (catalog.RebuildResult{Manifests: 4, Written: 4}) {
			t.Errorf("Rebuild(octo/app) = %+v, %v", res, err)
		}
		res, err = catalog.Rebuild(t.Context(), st, "", "")
		if err != nil || res != (catalog.RebuildResult{Manifests: 6, Written: 6}) {
			t.Errorf("Rebuild(all) = %+v, %v", res, err)
		}
		if after := find(t, st, catalog.Filter{}); !reflect.DeepEqual(after, before) {
			t.Errorf("rebuilt rows differ:\n got %+v\nwant %+v", after, before)
		}
		// A broken manifest is counted, the others still written.
		key := "octo/app/runs/9/attempt-1/manifest.json"
		if _, err := st.Put(t.Context(), key, strings.NewReader("{"), 1, archive.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err = catalog.Rebuild(t.Context(), st, "octo", "")
		if err == nil || res != (catalog.RebuildResult{Manifests: 6, Written: 5, Failed: 1}) {
			t.Errorf("Rebuild with a broken manifest = %+v, %v", res, err)
		}
	})
}
