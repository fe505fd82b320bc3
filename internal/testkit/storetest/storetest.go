// Package storetest is the conformance suite every archive.Store
// implementation passes: [Run] checks the contract of pkg/archive (round
// trips, create-only writes, multipart uploads, and that no failure leaves a
// partial object) against a real store. It also provides [Pattern], a
// deterministic allocation-free byte stream for large uploads.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// MiB is 1 << 20 bytes.
const MiB = 1 << 20

// PartSize is the size of the non-final parts the suite writes: S3's
// minimum.
const PartSize = 5 * MiB

// IsChecksumMismatch reports whether err says the data did not have the
// SHA-256 announced in PutOptions.SHA256 (errors.Is archive.ErrChecksumMismatch).
func IsChecksumMismatch(err error) bool {
	return errors.Is(err, archive.ErrChecksumMismatch)
}

// Run runs the suite. newStore must return a new, empty store each time it
// is called; it is called once per subtest, and subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) archive.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st archive.Store)
	}{
		{"PutStatOpenRoundTrip", testPutStatOpen},
		{"PutEmpty", testPutEmpty},
		{"PutOverwrite", testPutOverwrite},
		{"PutIfAbsentNew", testPutIfAbsentNew},
		{"PutIfAbsentExisting", testPutIfAbsentExisting},
		{"PutIfAbsentConcurrent", testPutIfAbsentConcurrent},
		{"PutIfMatch", testPutIfMatch},
		{"PutIfMatchConcurrent", testPutIfMatchConcurrent},
		{"PutShortReader", testPutShortReader},
		{"PutLongReader", testPutLongReader},
		{"PutEndlessReader", testPutEndlessReader},
		{"PutFailingReader", testPutFailingReader},
		{"PutCancelledMidStream", testPutCancelledMidStream},
		{"PutCancelledBefore", testPutCancelledBefore},
		{"PutSHA256", testPutSHA256},
		{"PutSHA256Mismatch", testPutSHA256Mismatch},
		{"StatOpenMissing", testStatOpenMissing},
		{"List", testList},
		{"KeysWithSpacesAndUnicode", testUnicodeKeys},
		{"InvalidKeys", testInvalidKeys},
		{"Location", testLocation},
		{"Multipart", testMultipart},
		{"MultipartOneStream", testMultipartOneStream},
		{"MultipartRewriteAfterFailedPart", testMultipartRewrite},
		{"MultipartShortPart", testMultipartShortPart},
		{"MultipartPartNumbers", testMultipartPartNumbers},
		{"MultipartNoParts", testMultipartNoParts},
		{"MultipartSHA256Mismatch", testMultipartSHA256Mismatch},
		{"MultipartAbort", testMultipartAbort},
		{"MultipartCancelled", testMultipartCancelled},
		{"MultipartIfAbsentExisting", testMultipartIfAbsentExisting},
		{"MultipartAbortAfterComplete", testMultipartAbortAfterComplete},
		{"MultipartConcurrentUploads", testMultipartConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// ErrReaderFailed is the error of a [NewFailingReader] reader.
var ErrReaderFailed = errors.New("storetest: reader failed")

// NewFailingReader yields the first n bytes of r, then fails with
// [ErrReaderFailed].
func NewFailingReader(r io.Reader, n int64) io.Reader { return &failingReader{r: r, n: n} }

// failingReader yields n bytes of a reader, then fails.
type failingReader struct {
	r io.Reader
	n int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, ErrReaderFailed
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// cancelReader yields a pattern and calls cancel once after n bytes.
type cancelReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 && c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	return n, err
}

func mustPut(t *testing.T, st archive.Store, key string, data []byte, opts archive.PutOptions) archive.ObjectInfo {
	t.Helper()
	info, err := st.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.ETag == "" {
		t.Fatalf("Put(%q) = %+v, want key %q, size %d and an ETag", key, info, key, len(data))
	}
	return info
}

func mustRead(t *testing.T, st archive.Store, key string) []byte {
	t.Helper()
	rc, err := st.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func mustStat(t *testing.T, st archive.Store, key string) archive.ObjectInfo {
	t.Helper()
	info, err := st.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

func mustList(t *testing.T, st archive.Store, prefix string) []archive.ObjectInfo {
	t.Helper()
	infos, err := st.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

func keys(infos []archive.ObjectInfo) []string {
	ks := make([]string, 0, len(infos))
	for _, i := range infos {
		ks = append(ks, i.Key)
	}
	return ks
}

// assertContent checks that key holds exactly want.
func assertContent(t *testing.T, st archive.Store, key string, want []byte) {
	t.Helper()
	got := mustRead(t, st, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q: %d bytes (sha256 %x), want %d bytes (sha256 %x)",
			key, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
	if info := mustStat(t, st, key); info.Size != int64(len(want)) {
		t.Fatalf("Stat(%q).Size = %d, want %d", key, info.Size, len(want))
	}
}

// assertEmpty checks that the store holds no object at all, and that key is
// not found by Stat and Open.
func assertEmpty(t *testing.T, st archive.Store, key string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	if _, err := st.Stat(ctx, key); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("Stat(%q) error = %v, want ErrNotFound", key, err)
	}
	if rc, err := st.Open(ctx, key); !errors.Is(err, archive.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Open(%q) error = %v, want ErrNotFound", key, err)
	}
	infos, err := st.List(ctx, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(infos) != 0 {
		t.Errorf("List = %q, want no objects", keys(infos))
	}
}

func testMeta() map[string]string {
	return map[string]string{
		archive.MetaSHA256:     "0123456789abcdef",
		archive.MetaArtifactID: "42",
		archive.MetaRunID:      "7",
		archive.MetaRepository: "octo/repo",
		archive.MetaName:       "build output",
	}
}

func testPutStatOpen(t *testing.T, st archive.Store) {
	data := PatternBytes(1, 100_000)
	key := "runs/7/artifact-42.zip"
	opts := archive.PutOptions{ContentType: "application/zip", Metadata: testMeta()}
	put := mustPut(t, st, key, data, opts)
	if put.ContentType != "application/zip" || !maps.Equal(put.Metadata, testMeta()) {
		t.Errorf("Put info = %+v, want content type and metadata %v", put, testMeta())
	}
	stat := mustStat(t, st, key)
	if stat.Key != key || stat.Size != int64(len(data)) || stat.ETag != put.ETag {
		t.Errorf("Stat = %+v, want key %q, size %d, ETag %q", stat, key, len(data), put.ETag)
	}
	if stat.ContentType != "application/zip" {
		t.Errorf("Stat.ContentType = %q, want application/zip", stat.ContentType)
	}
	if !maps.Equal(stat.Metadata, testMeta()) {
		t.Errorf("Stat.Metadata = %v, want %v", stat.Metadata, testMeta())
	}
	assertContent(t, st, key, data)
	infos := mustList(t, st, "")
	if len(infos) != 1 || infos[0].Key != key || infos[0].Size != int64(len(data)) || infos[0].ETag != put.ETag {
		t.Errorf("List = %+v, want one %q of %d bytes with ETag %q", infos, key, len(data), put.ETag)
	}
}

func testPutEmpty(t *testing.T, st archive.Store) {
	empty := sha256.Sum256(nil)
	mustPut(t, st, "empty", nil, archive.PutOptions{SHA256: empty[:]})
	assertContent(t, st, "empty", nil)
	if info := mustStat(t, st, "empty"); info.ContentType == "" {
		t.Errorf("Stat.ContentType is empty, want a default")
	}
}

func testPutOverwrite(t *testing.T, st archive.Store) {
	mustPut(t, st, "k", []byte("first"), archive.PutOptions{ContentType: "text/plain", Metadata: testMeta()})
	mustPut(t, st, "k", []byte("second!"), archive.PutOptions{})
	assertContent(t, st, "k", []byte("second!"))
	info := mustStat(t, st, "k")
	if len(info.Metadata) != 0 || info.ContentType == "text/plain" {
		t.Errorf("Stat after overwrite = %+v, want no metadata and the default content type", info)
	}
}

func testPutIfAbsentNew(t *testing.T, st archive.Store) {
	mustPut(t, st, "a/new", []byte("x"), archive.PutOptions{IfAbsent: true})
	assertContent(t, st, "a/new", []byte("x"))
}

func testPutIfAbsentExisting(t *testing.T, st archive.Store) {
	orig := PatternBytes(2, 3*MiB)
	put := mustPut(t, st, "k", orig, archive.PutOptions{ContentType: "application/zip", Metadata: testMeta()})
	// Large enough that a server may answer before reading the body.
	other := PatternBytes(3, 2*MiB)
	_, err := st.Put(t.Context(), "k", bytes.NewReader(other), int64(len(other)), archive.PutOptions{IfAbsent: true})
	if !errors.Is(err, archive.ErrExists) {
		t.Fatalf("Put(IfAbsent) over an existing key: error = %v, want ErrExists", err)
	}
	assertContent(t, st, "k", orig)
	info := mustStat(t, st, "k")
	if info.ETag != put.ETag || !maps.Equal(info.Metadata, testMeta()) || info.ContentType != "application/zip" {
		t.Errorf("Stat after losing Put = %+v, want the original %+v", info, put)
	}
}

func testPutIfAbsentConcurrent(t *testing.T, st archive.Store) {
	racePut(t, st, "race", 100, 256<<10, archive.PutOptions{IfAbsent: true}, archive.ErrExists)
}

func testPutShortReader(t *testing.T, st archive.Store) {
	data := PatternBytes(4, MiB)
	_, err := st.Put(t.Context(), "short", bytes.NewReader(data), int64(len(data))+1, archive.PutOptions{})
	if err == nil {
		t.Fatal("Put with a reader one byte short succeeded")
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Put with a short reader: error = %v, want one wrapping io.ErrUnexpectedEOF", err)
	}
	assertEmpty(t, st, "short")
}

func testPutLongReader(t *testing.T, st archive.Store) {
	data := PatternBytes(5, MiB)
	_, err := st.Put(t.Context(), "long", bytes.NewReader(data), int64(len(data))-1, archive.PutOptions{})
	if err == nil {
		t.Fatal("Put with a reader one byte long succeeded")
	}
	assertEmpty(t, st, "long")
	// Also with an empty object: the store must still look at the reader.
	if _, err := st.Put(t.Context(), "long", bytes.NewReader([]byte("x")), 0, archive.PutOptions{}); err == nil {
		t.Fatal("Put of size 0 with a 1-byte reader succeeded")
	}
	assertEmpty(t, st, "long")
}

func testPutEndlessReader(t *testing.T, st archive.Store) {
	_, err := st.Put(t.Context(), "endless", NewPattern(6, -1), 2*MiB, archive.PutOptions{})
	if err == nil {
		t.Fatal("Put with an endless reader succeeded")
	}
	assertEmpty(t, st, "endless")
}

func testPutFailingReader(t *testing.T, st archive.Store) {
	r := &failingReader{r: NewPattern(7, -1), n: 3 * MiB}
	_, err := st.Put(t.Context(), "failing", r, 8*MiB, archive.PutOptions{})
	if !errors.Is(err, ErrReaderFailed) {
		t.Fatalf("Put with a failing reader: error = %v, want it to wrap the reader's error", err)
	}
	assertEmpty(t, st, "failing")
}

func testPutCancelledMidStream(t *testing.T, st archive.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &cancelReader{r: NewPattern(8, 8*MiB), n: 2 * MiB, cancel: cancel}
	if _, err := st.Put(ctx, "cancelled", r, 8*MiB, archive.PutOptions{}); err == nil {
		t.Fatal("Put whose ctx was cancelled mid-stream succeeded")
	}
	assertEmpty(t, st, "cancelled")
}

func testPutCancelledBefore(t *testing.T, st archive.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.Put(ctx, "cancelled", bytes.NewReader([]byte("abc")), 3, archive.PutOptions{}); err == nil {
		t.Fatal("Put with a cancelled ctx succeeded")
	}
	assertEmpty(t, st, "cancelled")
}

func testPutSHA256(t *testing.T, st archive.Store) {
	data := PatternBytes(9, 3*MiB)
	sum := sha256.Sum256(data)
	mustPut(t, st, "verified", data, archive.PutOptions{SHA256: sum[:], IfAbsent: true})
	assertContent(t, st, "verified", data)
}

func testPutSHA256Mismatch(t *testing.T, st archive.Store) {
	data := PatternBytes(10, 3*MiB)
	wrong := sha256.Sum256([]byte("something else"))
	_, err := st.Put(t.Context(), "bad", bytes.NewReader(data), int64(len(data)), archive.PutOptions{SHA256: wrong[:]})
	if !IsChecksumMismatch(err) {
		t.Fatalf("Put with a wrong SHA256: error = %v, want a checksum mismatch", err)
	}
	assertEmpty(t, st, "bad")

	// An existing object is not replaced by a bad one.
	mustPut(t, st, "bad", []byte("good"), archive.PutOptions{})
	_, err = st.Put(t.Context(), "bad", bytes.NewReader(data), int64(len(data)), archive.PutOptions{SHA256: wrong[:]})
	if !IsChecksumMismatch(err) {
		t.Fatalf("overwrite with a wrong SHA256: error = %v, want a checksum mismatch", err)
	}
	assertContent(t, st, "bad", []byte("good"))
}

func testStatOpenMissing(t *testing.T, st archive.Store) {
	assertEmpty(t, st, "no/such/key")
	mustPut(t, st, "dir/file", []byte("x"), archive.PutOptions{})
	for _, key := range []string{"dir", "dir/file/below", "dir/fil"} {
		if _, err := st.Stat(t.Context(), key); !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want ErrNotFound", key, err)
		}
	}
}

func testList(t *testing.T, st archive.Store) {
	all := []string{"list/a", "list/b.txt", "list/b/c", "list/b/d", "list/run-1/x", "list/run-10/y", "other/z"}
	etags := map[string]string{}
	for i, k := range all {
		etags[k] = mustPut(t, st, k, PatternBytes(uint64(i), int64(i+1)), archive.PutOptions{}).ETag
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"list/", all[:6]},
		{"list/b", []string{"list/b.txt", "list/b/c", "list/b/d"}},
		{"list/b/", []string{"list/b/c", "list/b/d"}},
		{"list/run-1", []string{"list/run-1/x", "list/run-10/y"}},
		{"list/run-1/", []string{"list/run-1/x"}},
		{"list/a", []string{"list/a"}},
		{"lis", all[:6]},
		{"nothing", nil},
		{"list/nothing/", nil},
	} {
		infos := mustList(t, st, tc.prefix)
		if got := keys(infos); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			continue
		}
		for _, info := range infos {
			i := slices.Index(all, info.Key)
			if info.Size != int64(i+1) || info.ETag != etags[info.Key] {
				t.Errorf("List(%q): %+v, want size %d and ETag %q", tc.prefix, info, i+1, etags[info.Key])
			}
		}
	}
}

func testUnicodeKeys(t *testing.T, st archive.Store) {
	ks := []string{
		"runs/my artifact (1)/build output.zip",
		"ünï/cødé ✓/名前.zip",
		"chars/a+b&c=d%20e;f,g@h$i'j!k~l*m.txt",
		"chars/q?x=1#frag",
	}
	for i, k := range ks {
		data := PatternBytes(uint64(i+20), 1000)
		mustPut(t, st, k, data, archive.PutOptions{Metadata: map[string]string{archive.MetaName: "name " + k}})
		assertContent(t, st, k, data)
		if info := mustStat(t, st, k); info.Key != k {
			t.Errorf("Stat(%q).Key = %q", k, info.Key)
		}
	}
	want := slices.Sorted(slices.Values(ks))
	if got := keys(mustList(t, st, "")); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if got := keys(mustList(t, st, "ünï/")); !slices.Equal(got, []string{ks[1]}) {
		t.Errorf("List(ünï/) = %q, want %q", got, ks[1:2])
	}
}

func testInvalidKeys(t *testing.T, st archive.Store) {
	for _, key := range []string{"", "/abs", "a//b", "a/", "a/./b", "a/../b", "..", ".", "../escape"} {
		if _, err := st.Put(t.Context(), key, bytes.NewReader([]byte("x")), 1, archive.PutOptions{}); err == nil {
			t.Errorf("Put(%q) succeeded, want an invalid-key error", key)
		}
		if _, err := st.CreateUpload(t.Context(), key, archive.PutOptions{}); err == nil {
			t.Errorf("CreateUpload(%q) succeeded, want an invalid-key error", key)
		}
		if _, err := st.Stat(t.Context(), key); err == nil || errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want an invalid-key error", key, err)
		}
	}
	assertEmpty(t, st, "x")
}

func testLocation(t *testing.T, st archive.Store) {
	a, b := st.Location("runs/1/a.zip"), st.Location("runs/1/b.zip")
	if a == "" || a == b {
		t.Errorf("Location gives %q and %q for different keys", a, b)
	}
}

// writeParts writes data as parts of PartSize (the last one shorter).
func writeParts(t *testing.T, up archive.Upload, data []byte) {
	t.Helper()
	for n, off := 1, 0; off < len(data); n++ {
		end := min(off+PartSize, len(data))
		if err := up.WritePart(t.Context(), n, bytes.NewReader(data[off:end]), int64(end-off)); err != nil {
			t.Fatalf("WritePart(%d): %v", n, err)
		}
		off = end
	}
}

func mustCreate(t *testing.T, st archive.Store, key string, opts archive.PutOptions) archive.Upload {
	t.Helper()
	up, err := st.CreateUpload(t.Context(), key, opts)
	if err != nil {
		t.Fatalf("CreateUpload(%q): %v", key, err)
	}
	t.Cleanup(func() { _ = up.Abort(context.Background()) })
	return up
}

func testMultipart(t *testing.T, st archive.Store) {
	data := PatternBytes(30, 2*PartSize+MiB)
	sum := sha256.Sum256(data)
	key := "mp/artifact.zip"
	up := mustCreate(t, st, key, archive.PutOptions{ContentType: "application/zip", Metadata: testMeta(), SHA256: sum[:], IfAbsent: true})
	writeParts(t, up, data)
	if _, err := st.Stat(t.Context(), key); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("Stat before Complete: error = %v, want ErrNotFound", err)
	}
	info, err := up.Complete(t.Context())
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.ETag == "" || info.ContentType != "application/zip" || !maps.Equal(info.Metadata, testMeta()) {
		t.Errorf("Complete = %+v, want key, size %d, ETag, content type and metadata", info, len(data))
	}
	assertContent(t, st, key, data)
	stat := mustStat(t, st, key)
	if stat.ETag != info.ETag || stat.ContentType != "application/zip" || !maps.Equal(stat.Metadata, testMeta()) {
		t.Errorf("Stat = %+v, want ETag %q, content type and metadata as completed", stat, info.ETag)
	}
	if got := keys(mustList(t, st, "")); !slices.Equal(got, []string{key}) {
		t.Errorf("List = %q, want [%q]", got, key)
	}
}

func testMultipartOneStream(t *testing.T, st archive.Store) {
	// One reader cut into parts: WritePart must read exactly size bytes,
	// from a seekable reader (which a store may read twice) as from a
	// plain stream.
	data := PatternBytes(31, 2*PartSize+1000)
	for _, seekable := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(append(slices.Clip(data), "TRAILER"...))
		key := "stream-seekable"
		if !seekable {
			r, key = struct{ io.Reader }{r}, "stream" // hides Seek
		}
		up := mustCreate(t, st, key, archive.PutOptions{})
		sizes := []int64{PartSize, PartSize, 1000}
		for i, size := range sizes {
			if err := up.WritePart(t.Context(), i+1, r, size); err != nil {
				t.Fatalf("%s: WritePart(%d): %v", key, i+1, err)
			}
		}
		if rest, _ := io.ReadAll(r); string(rest) != "TRAILER" {
			t.Errorf("%s: after the parts the reader holds %q, want TRAILER: WritePart read past its size", key, rest)
		}
		if _, err := up.Complete(t.Context()); err != nil {
			t.Fatalf("%s: Complete: %v", key, err)
		}
		assertContent(t, st, key, data)
	}
}

func testMultipartRewrite(t *testing.T, st archive.Store) {
	data := PatternBytes(32, 2*PartSize+MiB)
	sum := sha256.Sum256(data)
	up := mustCreate(t, st, "rewrite", archive.PutOptions{SHA256: sum[:]})
	ctx := t.Context()
	if err := up.WritePart(ctx, 1, bytes.NewReader(data[:PartSize]), PartSize); err != nil {
		t.Fatalf("WritePart(1): %v", err)
	}
	// Part 2 fails half-way; so does a second attempt with other bytes.
	bad := &failingReader{r: bytes.NewReader(data[PartSize : 2*PartSize]), n: 3 * MiB}
	if err := up.WritePart(ctx, 2, bad, PartSize); !errors.Is(err, ErrReaderFailed) {
		t.Fatalf("WritePart(2) with a failing reader: error = %v, want the reader's error", err)
	}
	bad = &failingReader{r: NewPattern(99, -1), n: MiB}
	if err := up.WritePart(ctx, 2, bad, PartSize); !errors.Is(err, ErrReaderFailed) {
		t.Fatalf("WritePart(2) with a failing reader: error = %v, want the reader's error", err)
	}
	if err := up.WritePart(ctx, 2, bytes.NewReader(data[PartSize:2*PartSize]), PartSize); err != nil {
		t.Fatalf("WritePart(2) again: %v", err)
	}
	// Part 3 written with wrong bytes, then replaced.
	if err := up.WritePart(ctx, 3, NewPattern(98, MiB), MiB); err != nil {
		t.Fatalf("WritePart(3): %v", err)
	}
	if err := up.WritePart(ctx, 3, bytes.NewReader(data[2*PartSize:]), MiB); err != nil {
		t.Fatalf("WritePart(3) again: %v", err)
	}
	if _, err := up.Complete(ctx); err != nil {
		t.Fatalf("Complete (SHA-256 over the rewritten parts): %v", err)
	}
	assertContent(t, st, "rewrite", data)
}

func testMultipartShortPart(t *testing.T, st archive.Store) {
	data := PatternBytes(33, PartSize+MiB)
	up := mustCreate(t, st, "short", archive.PutOptions{})
	if err := up.WritePart(t.Context(), 1, bytes.NewReader(data[:PartSize-1]), PartSize); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("WritePart with a short reader: error = %v, want io.ErrUnexpectedEOF", err)
	}
	writeParts(t, up, data)
	if _, err := up.Complete(t.Context()); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	assertContent(t, st, "short", data)
}

func testMultipartPartNumbers(t *testing.T, st archive.Store) {
	up := mustCreate(t, st, "numbers", archive.PutOptions{})
	for _, n := range []int{0, -1, 2} {
		if err := up.WritePart(t.Context(), n, bytes.NewReader([]byte("x")), 1); err == nil {
			t.Errorf("WritePart(%d) as the first part succeeded", n)
		}
	}
	if err := up.Abort(t.Context()); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := up.WritePart(t.Context(), 1, bytes.NewReader([]byte("x")), 1); err == nil {
		t.Error("WritePart after Abort succeeded")
	}
	assertEmpty(t, st, "numbers")
}

func testMultipartNoParts(t *testing.T, st archive.Store) {
	up := mustCreate(t, st, "noparts", archive.PutOptions{})
	if _, err := up.Complete(t.Context()); err == nil {
		t.Fatal("Complete without parts succeeded")
	}
	if err := up.Abort(t.Context()); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	assertEmpty(t, st, "noparts")
}

func testMultipartSHA256Mismatch(t *testing.T, st archive.Store) {
	data := PatternBytes(34, PartSize+MiB)
	wrong := sha256.Sum256([]byte("not it"))
	up := mustCreate(t, st, "bad", archive.PutOptions{SHA256: wrong[:]})
	writeParts(t, up, data)
	if _, err := up.Complete(t.Context()); !IsChecksumMismatch(err) {
		t.Fatalf("Complete with a wrong SHA256: error = %v, want a checksum mismatch", err)
	}
	if err := up.Abort(t.Context()); err != nil {
		t.Fatalf("Abort after the mismatch: %v", err)
	}
	assertEmpty(t, st, "bad")
}

func testMultipartAbort(t *testing.T, st archive.Store) {
	data := PatternBytes(35, PartSize+MiB)
	up := mustCreate(t, st, "aborted", archive.PutOptions{})
	writeParts(t, up, data)
	if err := up.Abort(t.Context()); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	assertEmpty(t, st, "aborted")
	if err := up.Abort(t.Context()); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if _, err := up.Complete(t.Context()); err == nil {
		t.Fatal("Complete after Abort succeeded")
	}
	assertEmpty(t, st, "aborted")
}

func testMultipartCancelled(t *testing.T, st archive.Store) {
	up := mustCreate(t, st, "cancelled", archive.PutOptions{})
	if err := up.WritePart(t.Context(), 1, NewPattern(36, PartSize), PartSize); err != nil {
		t.Fatalf("WritePart(1): %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &cancelReader{r: NewPattern(37, PartSize), n: MiB, cancel: cancel}
	if err := up.WritePart(ctx, 2, r, PartSize); err == nil {
		t.Fatal("WritePart whose ctx was cancelled mid-part succeeded")
	}
	// Abort must clean up with the cancelled ctx.
	if err := up.Abort(ctx); err != nil {
		t.Fatalf("Abort with a cancelled ctx: %v", err)
	}
	assertEmpty(t, st, "cancelled")
}

func testMultipartIfAbsentExisting(t *testing.T, st archive.Store) {
	orig := []byte("original")
	put := mustPut(t, st, "taken", orig, archive.PutOptions{Metadata: testMeta()})
	up := mustCreate(t, st, "taken", archive.PutOptions{IfAbsent: true})
	writeParts(t, up, PatternBytes(38, PartSize+MiB))
	if _, err := up.Complete(t.Context()); !errors.Is(err, archive.ErrExists) {
		t.Fatalf("Complete(IfAbsent) over an existing key: error = %v, want ErrExists", err)
	}
	if err := up.Abort(t.Context()); err != nil {
		t.Fatalf("Abort after ErrExists: %v", err)
	}
	assertContent(t, st, "taken", orig)
	if info := mustStat(t, st, "taken"); info.ETag != put.ETag || !maps.Equal(info.Metadata, testMeta()) {
		t.Errorf("Stat = %+v, want the original %+v", info, put)
	}
}

func testMultipartAbortAfterComplete(t *testing.T, st archive.Store) {
	data := PatternBytes(39, MiB)
	up := mustCreate(t, st, "done", archive.PutOptions{})
	writeParts(t, up, data)
	if _, err := up.Complete(t.Context()); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := up.Abort(t.Context()); err != nil { // as a deferred Abort would
		t.Fatalf("Abort after Complete: %v", err)
	}
	assertContent(t, st, "done", data)
}

func testMultipartConcurrent(t *testing.T, st archive.Store) {
	// A live upload of another worker at the same key...
	data := PatternBytes(41, PartSize+MiB)
	live := mustCreate(t, st, "same", archive.PutOptions{IfAbsent: true})
	if err := live.WritePart(t.Context(), 1, bytes.NewReader(data[:PartSize]), PartSize); err != nil {
		t.Fatalf("live WritePart 1: %v", err)
	}
	// ...survives a second CreateUpload at the key.
	second := mustCreate(t, st, "same", archive.PutOptions{IfAbsent: true})
	if err := second.WritePart(t.Context(), 1, NewPattern(40, PartSize), PartSize); err != nil {
		t.Fatalf("second WritePart 1: %v", err)
	}
	if err := live.WritePart(t.Context(), 2, bytes.NewReader(data[PartSize:]), MiB); err != nil {
		t.Fatalf("live WritePart 2 after a second CreateUpload at its key: %v", err)
	}
	if _, err := live.Complete(t.Context()); err != nil {
		t.Fatalf("live Complete after a second CreateUpload at its key: %v", err)
	}
	// The second one can only lose now: its upload is gone, or its
	// create-only Complete finds the object.
	werr := second.WritePart(t.Context(), 2, NewPattern(42, MiB), MiB)
	if werr != nil && !errors.Is(werr, archive.ErrUploadGone) {
		t.Errorf("second WritePart after the key completed: %v, want nil or ErrUploadGone", werr)
	}
	if werr == nil {
		if _, err := second.Complete(t.Context()); !errors.Is(err, archive.ErrExists) && !errors.Is(err, archive.ErrUploadGone) {
			t.Errorf("second Complete: %v, want ErrExists or ErrUploadGone", err)
		}
	}
	if err := second.Abort(t.Context()); err != nil {
		t.Errorf("Abort of the losing upload: %v", err)
	}
	assertContent(t, st, "same", data)
	if got := keys(mustList(t, st, "")); !slices.Equal(got, []string{"same"}) {
		t.Errorf("List = %q, want [same]", got)
	}
}

func testPutIfMatch(t *testing.T, st archive.Store) {
	if _, err := st.Put(t.Context(), "m", bytes.NewReader([]byte("x")), 1, archive.PutOptions{IfMatch: "0123abcd"}); !errors.Is(err, archive.ErrConflict) {
		t.Fatalf("Put(IfMatch) of a missing key: %v, want ErrConflict", err)
	}
	assertEmpty(t, st, "m")
	v1 := mustPut(t, st, "m", []byte("one"), archive.PutOptions{IfAbsent: true})
	if got := mustStat(t, st, "m").ETag; got != v1.ETag {
		t.Fatalf("Stat ETag %q, Put returned %q", got, v1.ETag)
	}
	v2 := mustPut(t, st, "m", []byte("two"), archive.PutOptions{IfMatch: v1.ETag})
	if v2.ETag == v1.ETag {
		t.Fatalf("ETag unchanged after a replace: %q", v2.ETag)
	}
	if _, err := st.Put(t.Context(), "m", bytes.NewReader([]byte("three")), 5, archive.PutOptions{IfMatch: v1.ETag}); !errors.Is(err, archive.ErrConflict) {
		t.Fatalf("Put(IfMatch) with a stale ETag: %v, want ErrConflict", err)
	}
	assertContent(t, st, "m", []byte("two"))
	if _, err := st.Put(t.Context(), "m", bytes.NewReader([]byte("x")), 1, archive.PutOptions{IfAbsent: true, IfMatch: v2.ETag}); err == nil {
		t.Error("Put with both IfAbsent and IfMatch succeeded")
	}
}

func testPutIfMatchConcurrent(t *testing.T, st archive.Store) {
	base := mustPut(t, st, "cas", []byte("base"), archive.PutOptions{})
	racePut(t, st, "cas", 200, 64<<10, archive.PutOptions{IfMatch: base.ETag}, archive.ErrConflict)
}

// racePut has four writers put different content at key at once with the
// same conditional opts: exactly one must win, the others must fail with
// lose, and the key must hold the winner's content. Writer i writes
// PatternBytes(seed+i, size).
func racePut(t *testing.T, st archive.Store, key string, seed uint64, size int64, opts archive.PutOptions, lose error) {
	t.Helper()
	const writers = 4
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			data := PatternBytes(seed+uint64(i), size)
			_, errs[i] = st.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), opts)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner == -1:
			winner = i
		case err == nil:
			t.Errorf("writers %d and %d both won the conditional write", winner, i)
		case !errors.Is(err, lose):
			t.Errorf("writer %d: error = %v, want nil or %v", i, err, lose)
		}
	}
	if winner == -1 {
		t.Fatalf("no writer won the conditional write: %v", errs)
	}
	assertContent(t, st, key, PatternBytes(seed+uint64(winner), size))
}
