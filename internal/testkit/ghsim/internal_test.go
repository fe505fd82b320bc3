package ghsim

import (
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

// naiveByte is the documented content formula, one byte at a time.
func naiveByte(seed, p int64) byte {
	m := blockMask(seed, p/blockSize)
	return baseBlock()[p%blockSize] ^ byte(m>>(8*(p%8)))
}

func TestFillMatchesFormula(t *testing.T) {
	t.Parallel()
	// Odd offsets and lengths that cross a block boundary exercise the
	// unaligned head, the 4-word loop, the word loop and the tail.
	for _, tc := range []struct{ off, n int64 }{
		{0, 1}, {3, 5}, {7, 70}, {1, 33}, {blockSize - 13, 40}, {blockSize - 1, 2},
		{5*blockSize + 3, 2*blockSize + 9}, {1 << 33, 100},
	} {
		buf := make([]byte, tc.n)
		fill(buf, 99, tc.off)
		for i, b := range buf {
			if want := naiveByte(99, tc.off+int64(i)); b != want {
				t.Fatalf("fill(off=%d) byte %d = %#x, want %#x", tc.off, i, b, want)
			}
		}
	}
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	const size = 1000
	for _, tc := range []struct {
		h          string
		start, end int64
		kind       rangeKind
	}{
		{"bytes=0-", 0, 999, rangeOK},
		{"bytes=100-", 100, 999, rangeOK},
		{"bytes=100-199", 100, 199, rangeOK},
		{"bytes=990-5000", 990, 999, rangeOK},
		{"bytes=-10", 990, 999, rangeOK},
		{"bytes=-5000", 0, 999, rangeOK},
		{"bytes=999-999", 999, 999, rangeOK},
		{"bytes=1000-", 1000, 0, rangeUnsatisfiable},
		{"bytes=2000-3000", 2000, 0, rangeUnsatisfiable},
		{"bytes=-0", 1000, 0, rangeUnsatisfiable},
		{"bytes=0-1,5-6", 0, 0, rangeIgnored},
		{"bytes=5-1", 0, 0, rangeIgnored},
		{"items=0-1", 0, 0, rangeIgnored},
		{"bytes=x-", 0, 0, rangeIgnored},
		{"bytes=10", 0, 0, rangeIgnored},
	} {
		start, end, kind := parseRange(tc.h, size)
		if kind != tc.kind || (kind == rangeOK && (start != tc.start || end != tc.end)) {
			t.Errorf("parseRange(%q) = %d, %d, %d; want %d, %d, %d", tc.h, start, end, kind, tc.start, tc.end, tc.kind)
		}
	}
	if _, _, kind := parseRange("bytes=0-", 0); kind != rangeUnsatisfiable {
		t.Errorf("range on an empty body: kind %d, want unsatisfiable", kind)
	}
}

func TestLinkHeader(t *testing.T) {
	t.Parallel()
	const base = "http://h/repositories/1/actions/artifacts"
	for _, tc := range []struct {
		query      string
		page, last int
		want       string
	}{
		{"", 1, 1, ""},
		{"per_page=100", 1, 3, `<http://h/repositories/1/actions/artifacts?per_page=100&page=2>; rel="next", <http://h/repositories/1/actions/artifacts?per_page=100&page=3>; rel="last"`},
		{"per_page=100&page=2", 2, 3, `<http://h/repositories/1/actions/artifacts?per_page=100&page=1>; rel="prev", <http://h/repositories/1/actions/artifacts?per_page=100&page=3>; rel="next", <http://h/repositories/1/actions/artifacts?per_page=100&page=3>; rel="last", <http://h/repositories/1/actions/artifacts?per_page=100&page=1>; rel="first"`},
		{"page=3&name=a%20b", 3, 3, `<http://h/repositories/1/actions/artifacts?page=2&name=a%20b>; rel="prev", <http://h/repositories/1/actions/artifacts?page=1&name=a%20b>; rel="first"`},
		{"page=9", 9, 3, `<http://h/repositories/1/actions/artifacts?page=3>; rel="prev", <http://h/repositories/1/actions/artifacts?page=1>; rel="first"`},
	} {
		if got := linkHeader(base, tc.query, tc.page, tc.last); got != tc.want {
			t.Errorf("linkHeader(%q, %d, %d) =\n%s\nwant\n%s", tc.query, tc.page, tc.last, got, tc.want)
		}
	}
}

func TestFaultCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		route Route
		f     Fault
		ok    bool
	}{
		{RouteList, ServerError(502), true},
		{RouteBlob, ServerError(503), true},
		{RouteList, ServerError(404), false},
		{RouteGet, SecondaryLimit(429, time.Second), true},
		{RouteToken, SecondaryLimit(403, time.Second), true},
		{RouteGet, SecondaryLimit(500, time.Second), false},
		{RouteBlob, SecondaryLimit(429, time.Second), false},
		{RouteBlob, ResetAfter(0), true},
		{RouteList, ResetAfter(10), false},
		{RouteBlob, Throttle(0), false},
		{RouteBlob, Throttle(1), true},
		{RouteZip, ExpiredURL(), true},
		{RouteBlob, ExpiredURL(), false},
		{Route("nope"), ServerError(500), false},
		{RouteGet, Fault{Kind: "nope"}, false},
	} {
		err := tc.f.check(tc.route)
		if (err == nil) != tc.ok {
			t.Errorf("check(%s, %+v) = %v, want ok=%v", tc.route, tc.f, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "ghsim: inject fault: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
	if got := SecondaryLimit(429, 1500*time.Millisecond).RetryAfterSeconds; got != 2 {
		t.Errorf("Retry-After of 1.5 s = %d s, want 2 (rounded up)", got)
	}
}

func TestBlockPrefixCRC(t *testing.T) {
	t.Parallel()
	buf := make([]byte, blockSize)
	for _, seed := range []int64{0, 1, -7, 1 << 40} {
		for _, blk := range []int64{0, 1, 4096, 1 << 30} {
			fill(buf, seed, blk*blockSize)
			for _, n := range []int64{0, 1, 7, 8, crcStep - 1, crcStep, crcStep + 1, 3*crcStep + 5, blockSize - 1, blockSize} {
				if got, want := blockPrefixCRC(seed, blk, n), crc32.ChecksumIEEE(buf[:n]); got != want {
					t.Fatalf("seed %d block %d: CRC of %d bytes = %08x, want %08x", seed, blk, n, got, want)
				}
			}
		}
	}
}

func BenchmarkContentReadAt(b *testing.B) {
	b.Run("zip", func(b *testing.B) { benchmarkReadAt(b, NewContent(42, 1<<40)) })
	b.Run("raw", func(b *testing.B) { benchmarkReadAt(b, NewRawContent(42, 1<<40)) })
}

// benchmarkReadAt reads 1 MiB windows, unaligned, along c.
func benchmarkReadAt(b *testing.B, c *Content) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	var off int64
	for b.Loop() {
		if _, err := c.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
		off += int64(len(buf)) + 3 // unaligned on purpose
	}
}
