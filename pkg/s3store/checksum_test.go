package s3store_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/storetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// recorded is what the recording proxy saw of one request.
type recorded struct {
	method string
	path   string
	query  url.Values
	header http.Header
}

// op names the S3 operation of a request.
func (r recorded) op() string {
	switch {
	case r.method == http.MethodPut && r.query.Has("partNumber"):
		return "UploadPart"
	case r.method == http.MethodPut:
		return "PutObject"
	case r.method == http.MethodPost && r.query.Has("uploads"):
		return "CreateMultipartUpload"
	case r.method == http.MethodPost && r.query.Has("uploadId"):
		return "CompleteMultipartUpload"
	}
	return r.method
}

// recordingProxy is an HTTPS reverse proxy in front of srv that records
// every request's method, query and headers. It serves TLS because the SDK
// switches to aws-chunked trailers only over HTTPS.
type recordingProxy struct {
	URL  string
	pool *x509.CertPool
	mu   sync.Mutex
	reqs []recorded
}

func newRecordingProxy(t *testing.T, srv *testserver.MinIOServer) *recordingProxy {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{}
	// The Director keeps the incoming Host, which the client signed.
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = srv.HTTPClient().Transport
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, recorded{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone()})
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	ts.StartTLS()
	t.Cleanup(ts.Close)
	p.URL = ts.URL
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ts.Certificate())
	return p
}

// awsConfig is srv's SDK configuration pointed at the proxy.
func (p *recordingProxy) awsConfig(srv *testserver.MinIOServer) aws.Config {
	cfg := srv.AWSConfig()
	cfg.BaseEndpoint = aws.String(p.URL)
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		tr.TLSClientConfig = &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	})
	return cfg
}

// take returns the requests recorded since the last take.
func (p *recordingProxy) take() []recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	reqs := p.reqs
	p.reqs = nil
	return reqs
}

// checksumHeaders are the request headers that carry a body checksum.
var checksumHeaders = []string{
	"Content-Md5",
	"X-Amz-Checksum-Crc32", "X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Crc64nvme",
	"X-Amz-Checksum-Sha1", "X-Amz-Checksum-Sha256",
}

// checkBodyChecksum returns what is wrong with a PUT: it must carry
// exactly one checksum header, and no aws-chunked body with a trailer.
func checkBodyChecksum(r recorded) []string {
	var problems []string
	var found []string
	for _, h := range checksumHeaders {
		if vs := r.header.Values(h); len(vs) > 0 {
			found = append(found, h+"="+strings.Join(vs, ","))
		}
	}
	if len(found) != 1 {
		problems = append(problems, "checksum headers "+strings.Join(found, " ")+", want exactly one")
	}
	if v := r.header.Get("X-Amz-Trailer"); v != "" {
		problems = append(problems, "x-amz-trailer: "+v)
	}
	if v := r.header.Get("Content-Encoding"); strings.Contains(v, "aws-chunked") {
		problems = append(problems, "content-encoding: "+v)
	}
	if v := r.header.Get("X-Amz-Content-Sha256"); strings.HasPrefix(v, "STREAMING-") {
		problems = append(problems, "x-amz-content-sha256: "+v)
	}
	if v := r.header.Get("X-Amz-Decoded-Content-Length"); v != "" {
		problems = append(problems, "x-amz-decoded-content-length: "+v)
	}
	return problems
}

func crc32cOf(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))))
}

// headChecksum returns the stored CRC32C and checksum type of key.
func headChecksum(t *testing.T, st *s3store.Store, key string) (string, types.ChecksumType) {
	t.Helper()
	out, err := st.Client().HeadObject(t.Context(), &s3.HeadObjectInput{
		Bucket: aws.String(st.Bucket()), Key: aws.String(st.ObjectKey(key)), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		t.Fatalf("HeadObject(%s): %v", key, err)
	}
	return aws.ToString(out.ChecksumCRC32C), out.ChecksumType
}

// TestEveryWriteCarriesAChecksum runs the writes of an archive flow through
// a recording proxy: every PutObject and UploadPart carries exactly one
// precomputed checksum header and no trailer, multipart uploads are
// full-object CRC32C, and the server keeps the CRC32C of the bytes.
func TestEveryWriteCarriesAChecksum(t *testing.T) {
	srv := testserver.MinIO(t)
	proxy := newRecordingProxy(t, srv)
	st, err := s3store.New(t.Context(), s3store.Config{
		Bucket:               srv.NewBucket(t, ""),
		Prefix:               "github",
		AWS:                  proxy.awsConfig(srv),
		ForcePathStyle:       true,
		ArtifactStorageClass: "REDUCED_REDUNDANCY",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	proxy.take()

	// The negative control: the SDK's defaults over HTTPS send the
	// checksum as an aws-chunked trailer, which the checks must catch.
	if _, err := st.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(st.Bucket()), Key: aws.String("control"), Body: strings.NewReader("sdk defaults"),
	}); err != nil {
		t.Fatal(err)
	}
	if reqs := proxy.take(); len(reqs) != 1 || len(checkBodyChecksum(reqs[0])) == 0 {
		t.Fatalf("the SDK's default PutObject passed the checks (%d requests): they cannot fail", len(reqs))
	}

	objects := map[string][]byte{} // key -> content, for the stored CRC32C
	stream := false                // Put from a reader that cannot seek
	put := func(key string, data []byte, opts archive.PutOptions) archive.ObjectInfo {
		t.Helper()
		var r io.Reader = bytes.NewReader(data)
		if stream {
			r = struct{ io.Reader }{r}
		}
		info, err := st.Put(ctx, key, r, int64(len(data)), opts)
		if err != nil {
			t.Fatalf("Put(%s): %v", key, err)
		}
		objects[key] = data
		return info
	}
	// An artifact with GitHub's digest: streamed with its SHA-256.
	zip := storetest.PatternBytes(1, 3*MiB)
	sum := sha256.Sum256(zip)
	put("runs/1/a/a.zip", zip, archive.PutOptions{Kind: archive.KindArtifact, SHA256: sum[:], IfAbsent: true})
	// A legacy artifact without one: buffered, CRC32C.
	put("runs/1/b/b.zip", storetest.PatternBytes(2, 2*MiB), archive.PutOptions{Kind: archive.KindArtifact, IfAbsent: true})
	// An empty artifact.
	put("runs/1/c/empty", nil, archive.PutOptions{Kind: archive.KindArtifact, IfAbsent: true})
	// A digest-less artifact too big for memory: parts inside Put.
	stream = true
	put("runs/1/d/big.zip", storetest.PatternBytes(3, 2*s3store.MaxBufferedPut+MiB), archive.PutOptions{Kind: archive.KindArtifact, IfAbsent: true})
	stream = false
	// The manifest, created then merged.
	v1 := put("runs/1/manifest.json", []byte(`{"artifacts":1}`), archive.PutOptions{ContentType: "application/json", IfAbsent: true})
	put("runs/1/manifest.json", []byte(`{"artifacts":4}`), archive.PutOptions{ContentType: "application/json", IfMatch: v1.ETag})
	put("runs/1/SHA256SUMS", []byte("abc  a.zip\n"), archive.PutOptions{})
	// A lease, rewritten; from streams, like the big artifact.
	stream = true
	put("_leases/1", []byte(`{"owner":"w1"}`), archive.PutOptions{Kind: archive.KindTransient})
	put("_leases/1", []byte(`{"owner":"w1","renewed":1}`), archive.PutOptions{Kind: archive.KindTransient})

	// A streamed artifact in 3 parts, from a seekable buffer and from a
	// stream, with part 2 written twice (wrong bytes first).
	data := storetest.PatternBytes(4, 2*storetest.PartSize+MiB)
	up, err := st.CreateUpload(ctx, "runs/1/e/e.zip", archive.PutOptions{Kind: archive.KindArtifact, IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort(ctx)
	p1, p2, p3 := data[:storetest.PartSize], data[storetest.PartSize:2*storetest.PartSize], data[2*storetest.PartSize:]
	steps := []struct {
		n    int
		body []byte
		seek bool
	}{{1, p1, true}, {2, storetest.PatternBytes(5, storetest.PartSize), true}, {2, p2, false}, {3, p3, true}}
	for _, s := range steps {
		var r io.Reader = bytes.NewReader(s.body)
		if !s.seek {
			r = struct{ io.Reader }{r} // hides Seek
		}
		if err := up.WritePart(ctx, s.n, r, int64(len(s.body))); err != nil {
			t.Fatalf("WritePart(%d): %v", s.n, err)
		}
	}
	if _, err := up.Complete(ctx); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	objects["runs/1/e/e.zip"] = data

	counts := map[string]int{}
	for _, r := range proxy.take() {
		op := r.op()
		counts[op]++
		// Artifacts (under a folder of their own) go to their class.
		artifact := strings.Count(r.path, "/") == 6 && strings.Contains(r.path, "/runs/") // /bucket/github/runs/1/a/a.zip
		if class := r.header.Get("X-Amz-Storage-Class"); (op == "PutObject" || op == "CreateMultipartUpload") &&
			(artifact && class != "REDUCED_REDUNDANCY" || !artifact && class != "") {
			t.Errorf("%s %s: storage class %q, want REDUCED_REDUNDANCY for artifacts only", op, r.path, class)
		}
		switch op {
		case "PutObject", "UploadPart":
			for _, p := range checkBodyChecksum(r) {
				t.Errorf("%s %v: %s", op, r.query, p)
			}
		case "CreateMultipartUpload":
			if a, ty := r.header.Get("X-Amz-Checksum-Algorithm"), r.header.Get("X-Amz-Checksum-Type"); a != "CRC32C" || ty != "FULL_OBJECT" {
				t.Errorf("CreateMultipartUpload: checksum algorithm %q, type %q; want CRC32C FULL_OBJECT", a, ty)
			}
		case "CompleteMultipartUpload":
			if ty, c := r.header.Get("X-Amz-Checksum-Type"), r.header.Get("X-Amz-Checksum-Crc32c"); ty != "FULL_OBJECT" || c == "" {
				t.Errorf("CompleteMultipartUpload: checksum type %q, crc32c %q; want FULL_OBJECT and a value", ty, c)
			}
		}
	}
	// 9 Puts, one of them 3 parts; 4 parts (one rewritten) of the upload.
	if want := map[string]int{"PutObject": 8, "UploadPart": 7, "CreateMultipartUpload": 2, "CompleteMultipartUpload": 2}; counts["PutObject"] != want["PutObject"] ||
		counts["UploadPart"] != want["UploadPart"] || counts["CreateMultipartUpload"] != want["CreateMultipartUpload"] ||
		counts["CompleteMultipartUpload"] != want["CompleteMultipartUpload"] {
		t.Errorf("requests %v, want %v", counts, want)
	}

	for key, data := range objects {
		got, typ := headChecksum(t, st, key)
		if got != crc32cOf(data) && !(key == "runs/1/a/a.zip" && got == "") {
			t.Errorf("%s: stored CRC32C %q (type %s), want %q, the CRC32C of its %d bytes", key, got, typ, crc32cOf(data), len(data))
		}
	}
	for _, key := range []string{"runs/1/d/big.zip", "runs/1/e/e.zip"} {
		if _, typ := headChecksum(t, st, key); typ != types.ChecksumTypeFullObject {
			t.Errorf("%s: checksum type %q, want FULL_OBJECT", key, typ)
		}
		assertContentSHA256(t, st, key, objects[key])
	}
}

func assertContentSHA256(t *testing.T, st archive.Store, key string, want []byte) {
	t.Helper()
	sum := sha256.Sum256(want)
	if got := readSHA256(t, st, key); !bytes.Equal(got, sum[:]) {
		t.Errorf("%s: content sha256 %x, want %x", key, got, sum)
	}
}

// TestPutBeyondMemory: a Put without a SHA-256 too big to buffer (parts
// inside) keeps Put's contract: exact length, create-only and conditional
// replace, nothing left behind on failure.
func TestPutBeyondMemory(t *testing.T) {
	srv := testserver.MinIO(t)
	st := newStore(t, srv, "big")
	ctx := t.Context()
	const size = 2*s3store.MaxBufferedPut + MiB
	data := storetest.PatternBytes(7, size)
	noUploads := func(key string) {
		t.Helper()
		if got := listUploads(t, st, st.ObjectKey(key)); len(got) != 0 {
			t.Errorf("%s: uploads left %q, want none", key, got)
		}
	}
	absent := func(key string) {
		t.Helper()
		if _, err := st.Stat(ctx, key); !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Stat(%s) = %v, want ErrNotFound", key, err)
		}
		noUploads(key)
	}

	for _, tc := range []struct {
		name string
		r    io.Reader
		want error
	}{
		{"short", bytes.NewReader(data[:size-1]), io.ErrUnexpectedEOF},
		{"long", bytes.NewReader(append(slices.Clip(data), 'x')), nil},
		{"failing", storetest.NewFailingReader(bytes.NewReader(data), s3store.MaxBufferedPut+MiB), storetest.ErrReaderFailed},
	} {
		_, err := st.Put(ctx, tc.name, tc.r, size, archive.PutOptions{})
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Put with a %s reader: %v, want an error wrapping %v", tc.name, err, tc.want)
		}
		absent(tc.name)
	}

	if _, err := st.Put(ctx, "m", bytes.NewReader(data), size, archive.PutOptions{IfMatch: "0123abcd"}); !errors.Is(err, archive.ErrConflict) {
		t.Errorf("Put(IfMatch) of a missing key: %v, want ErrConflict", err)
	}
	absent("m")
	v1, err := st.Put(ctx, "m", bytes.NewReader(data), size, archive.PutOptions{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "m", bytes.NewReader(data), size, archive.PutOptions{IfAbsent: true}); !errors.Is(err, archive.ErrExists) {
		t.Errorf("Put(IfAbsent) over an existing key: %v, want ErrExists", err)
	}
	data2 := storetest.PatternBytes(8, size)
	v2, err := st.Put(ctx, "m", bytes.NewReader(data2), size, archive.PutOptions{IfMatch: v1.ETag})
	if err != nil {
		t.Fatalf("Put(IfMatch) with the current ETag: %v", err)
	}
	if _, err := st.Put(ctx, "m", bytes.NewReader(data), size, archive.PutOptions{IfMatch: v1.ETag}); !errors.Is(err, archive.ErrConflict) {
		t.Errorf("Put(IfMatch) with a stale ETag: %v, want ErrConflict", err)
	}
	noUploads("m")
	if info, err := st.Stat(ctx, "m"); err != nil || info.ETag != v2.ETag || info.Size != size {
		t.Errorf("Stat = %+v, %v; want the second version %s", info, err, v2.ETag)
	}
	assertContentSHA256(t, st, "m", data2)
	if got, _ := headChecksum(t, st, "m"); got != crc32cOf(data2) {
		t.Errorf("stored CRC32C %s, want %s", got, crc32cOf(data2))
	}
}
