package catalog

import "testing"

// TestParseKey: each tree holds one format; anything else under the
// catalogue's roots is not a catalogue file.
func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want Partition
		ok   bool
	}{
		{"_catalog/v1/owner=o/repo=r/month=2025-03/1-1.jsonl", Partition{Owner: "o", Repo: "r", Month: "2025-03", SmallFiles: 1}, true},
		{"_catalog/v1-parquet/owner=o/repo=r/month=2025-03/compacted-x.parquet", Partition{Owner: "o", Repo: "r", Month: "2025-03", ParquetFiles: 1}, true},
		{"_catalog/v1/owner=o/repo=r/month=2025-03/compacted-x.parquet", Partition{}, false},
		{"_catalog/v1-parquet/owner=o/repo=r/month=2025-03/1-1.jsonl", Partition{}, false},
		{"_catalog/v1/owner=o/repo=r/month=2025/1-1.jsonl", Partition{}, false},
		{"_catalog/v1/owner=o/repo=r/1-1.jsonl", Partition{}, false},
		{"_catalog/v2/owner=o/repo=r/month=2025-03/1-1.jsonl", Partition{}, false},
		{"o/r/runs/1/attempt-1/manifest.json", Partition{}, false},
	} {
		got, ok := parseKey(tc.key)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseKey(%q) = %+v, %v; want %+v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}
