package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// patternBody is a download of n deterministic bytes that allocates
// nothing, and counts what it has handed out.
type patternBody struct {
	n, off int64
	read   atomic.Int64
	closed atomic.Bool
}

func (b *patternBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("read after close")
	}
	if b.off == b.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), b.n-b.off, 64<<10)]
	for i := range p {
		p[i] = byte((b.off + int64(i)) * 7 >> 3)
	}
	b.off += int64(len(p))
	b.read.Store(b.off)
	return len(p), nil
}

func (b *patternBody) Close() error { b.closed.Store(true); return nil }

// recordingUpload hashes the parts it is given, in the order given, and
// checks their numbers and sizes. before, if set, runs at the start of each
// WritePart.
type recordingUpload struct {
	t        *testing.T
	partSize int64
	h        io.Writer
	sum      func() []byte
	next     int
	failOnce map[int]bool // part numbers whose first write fails after reading some of it
	writes   int
	before   func(n int) error
}

func (u *recordingUpload) WritePart(ctx context.Context, n int, r io.Reader, size int64) error {
	u.writes++
	if u.before != nil {
		if err := u.before(n); err != nil {
			return err
		}
	}
	if n != u.next+1 {
		u.t.Errorf("part %d written after part %d", n, u.next)
	}
	if _, ok := r.(io.ReadSeeker); !ok {
		u.t.Errorf("part %d: reader %T is not an io.ReadSeeker (a store would copy it)", n, r)
	}
	if u.failOnce[n] {
		delete(u.failOnce, n)
		_, _ = io.CopyN(io.Discard, r, size/2)
		return errors.New("connection reset by peer")
	}
	if size > u.partSize {
		u.t.Errorf("part %d: %d bytes, part size %d", n, size, u.partSize)
	}
	m, err := io.Copy(u.h, r)
	if err != nil || m != size {
		return fmt.Errorf("part %d: read %d of %d: %v", n, m, size, err)
	}
	u.next = n
	return nil
}

func (u *recordingUpload) Complete(context.Context) (ObjectInfo, error) { return ObjectInfo{}, nil }
func (u *recordingUpload) Abort(context.Context) error                  { return nil }

func newPipeTest(t *testing.T, length, partSize int64) (*Archiver, *patternBody, *recordingUpload, **Download) {
	t.Helper()
	a := &Archiver{cfg: Config{MaxResumes: 2}, m: NewMetrics(prometheus.NewRegistry())}
	body := &patternBody{n: length}
	h := sha256.New()
	up := &recordingUpload{t: t, partSize: partSize, h: h, sum: func() []byte { return h.Sum(nil) }}
	dl := &Download{Body: body, Length: length}
	return a, body, up, &dl
}

func wantSum(length int64) []byte {
	h := sha256.New()
	_, _ = io.Copy(h, &patternBody{n: length})
	return h.Sum(nil)
}

// TestPipePartsOrderAndHash: every byte reaches the upload once, in order,
// in parts of the part size, and the transfer's SHA-256 is the stream's.
func TestPipePartsOrderAndHash(t *testing.T) {
	const partSize, length = 5 << 20, 23<<20 + 12345
	a, _, up, dlp := newPipeTest(t, length, partSize)
	h := sha256.New()
	if err := a.pipeParts(t.Context(), nil, RemoteArtifact{ID: 1}, up, dlp, h, partSize, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	want := wantSum(length)
	if up.next != 5 || !bytes.Equal(up.sum(), want) || !bytes.Equal(h.Sum(nil), want) {
		t.Errorf("parts %d, uploaded sha256 %x, hashed %x; want 5 parts of %x", up.next, up.sum(), h.Sum(nil), want)
	}
}

// TestPipePartsOverlap: the next part is read from the download while the
// previous one uploads. Part 1's upload waits until the download is past
// it; a sequential copy would never get there.
func TestPipePartsOverlap(t *testing.T) {
	const partSize, length = 5 << 20, 20 << 20
	a, body, up, dlp := newPipeTest(t, length, partSize)
	up.before = func(n int) error {
		if n != 1 {
			return nil
		}
		deadline := time.Now().Add(10 * time.Second)
		for body.read.Load() <= partSize+partSize/2 {
			if time.Now().After(deadline) {
				return fmt.Errorf("download at %d while part 1 uploads: not read ahead", body.read.Load())
			}
			runtime.Gosched()
		}
		return nil
	}
	up.failOnce = nil
	if err := a.pipeParts(t.Context(), nil, RemoteArtifact{ID: 1}, up, dlp, sha256.New(), partSize, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if up.next != 4 {
		t.Errorf("%d parts uploaded, want 4", up.next)
	}
}

// TestPipePartsBoundedMemory: a transfer allocates its part buffers once
// (partBuffers of them), whatever the number of parts.
func TestPipePartsBoundedMemory(t *testing.T) {
	const partSize, length = 5 << 20, 100 << 20
	a, _, up, dlp := newPipeTest(t, length, partSize)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := a.pipeParts(t.Context(), nil, RemoteArtifact{ID: 1}, up, dlp, sha256.New(), partSize, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(partBuffers*partSize+partSize/2); got > limit {
		t.Errorf("allocated %d MiB for a %d MiB transfer in %d MiB parts; want at most %d MiB (%d buffers)",
			got>>20, length>>20, partSize>>20, limit>>20, partBuffers)
	}
	if up.next != 20 {
		t.Errorf("%d parts uploaded, want 20", up.next)
	}
}

// TestPipePartsRetriesUploadFromBuffer: a part whose upload fails is
// written again from its buffer; the download is read once.
func TestPipePartsRetriesUploadFromBuffer(t *testing.T) {
	const partSize, length = 5 << 20, 12 << 20
	a, body, up, dlp := newPipeTest(t, length, partSize)
	up.failOnce = map[int]bool{2: true}
	if err := a.pipeParts(t.Context(), nil, RemoteArtifact{ID: 1}, up, dlp, sha256.New(), partSize, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if up.next != 3 || up.writes != 4 || !bytes.Equal(up.sum(), wantSum(length)) || body.read.Load() != length {
		t.Errorf("parts %d in %d writes, download read %d of %d; want 3 parts in 4 writes, read once", up.next, up.writes, body.read.Load(), length)
	}
}

// TestPipePartsUploadFailureStopsDownload: when the upload fails for good,
// the reader stops (its body is closed) and the upload's error is returned.
func TestPipePartsUploadFailureStopsDownload(t *testing.T) {
	const partSize, length = 5 << 20, 50 << 20
	a, body, up, dlp := newPipeTest(t, length, partSize)
	gone := fmt.Errorf("no such upload: %w", ErrUploadGone)
	up.before = func(n int) error {
		if n == 2 {
			return gone
		}
		return nil
	}
	err := a.pipeParts(t.Context(), nil, RemoteArtifact{ID: 1}, up, dlp, sha256.New(), partSize, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrUploadGone) {
		t.Fatalf("pipeParts = %v, want ErrUploadGone", err)
	}
	if got := body.read.Load(); got > (2+partBuffers)*partSize {
		t.Errorf("read %d MiB after the upload failed at part 2, want at most %d MiB", got>>20, (2+partBuffers)*partSize>>20)
	}
}

// TestPipePartsCancel: a cancelled ctx ends both sides with ctx's error.
func TestPipePartsCancel(t *testing.T) {
	const partSize, length = 5 << 20, 50 << 20
	a, _, up, dlp := newPipeTest(t, length, partSize)
	ctx, cancel := context.WithCancel(t.Context())
	var once sync.Once
	up.before = func(n int) error {
		if n == 3 {
			once.Do(cancel)
		}
		return ctx.Err()
	}
	err := a.pipeParts(ctx, nil, RemoteArtifact{ID: 1}, up, dlp, sha256.New(), partSize, slog.New(slog.DiscardHandler))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("pipeParts = %v, want context.Canceled", err)
	}
}
