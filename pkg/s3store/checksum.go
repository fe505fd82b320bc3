package s3store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// MaxBufferedPut is the largest body [Store.Put] reads into memory to
// checksum it when the caller gives no SHA-256; a bigger one becomes a
// multipart upload of parts of this size, so memory stays bounded.
const MaxBufferedPut = 16 << 20

// castagnoli is the CRC32C table: x-amz-checksum-crc32c.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cBase64 renders a CRC32C as the x-amz-checksum-crc32c header
// wants it: base64 of its 4 big-endian bytes.
func crc32cBase64(c uint32) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, c))
}

// crcWriter keeps the CRC32C of one part and the running CRC32C of the
// whole object, fed by the same bytes.
type crcWriter struct{ part, full uint32 }

func (w *crcWriter) Write(p []byte) (int, error) {
	w.part = crc32.Update(w.part, castagnoli, p)
	w.full = crc32.Update(w.full, castagnoli, p)
	return len(p), nil
}

// readFull reads exactly size bytes of r into buf (grown if needed) and
// returns them; with probe it also checks that r then ends. The errors are
// an [archive.ExactReader]'s: a short reader wraps io.ErrUnexpectedEOF, a
// failing one its error, a cancelled ctx ctx.Err().
func readFull(ctx context.Context, r io.Reader, size int64, buf []byte, o archive.ExactOptions) ([]byte, error) {
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	body := archive.NewExactReader(ctx, r, size, o)
	if size == 0 {
		return buf, body.Finish(false)
	}
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// rereadable reads exactly size bytes of r once, into w (the checksums),
// and returns a body that sends the same bytes: r itself from where it
// was, when r can seek (no copy), else a copy in *buf (grown if needed, and
// kept for the next call; nil: a new buffer). The errors are those of
// [readFull]. Fence the body once the request is over.
func rereadable(ctx context.Context, r io.Reader, size int64, buf *[]byte, w io.Writer, o archive.ExactOptions) (*window, error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, fmt.Errorf("seek: %w", err)
		}
		body := archive.NewExactReader(ctx, rs, size, o)
		if size == 0 {
			err = body.Finish(false)
		} else {
			_, err = io.Copy(w, body)
		}
		if err != nil {
			return nil, err
		}
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return nil, fmt.Errorf("seek back: %w", err)
		}
		return &window{rs: rs, start: start, size: size}, nil
	}
	var b []byte
	if buf != nil {
		b = *buf
	}
	b, err := readFull(ctx, r, size, b, o)
	if err != nil {
		return nil, err
	}
	if buf != nil {
		*buf = b
	}
	_, _ = w.Write(b)
	return &window{rs: bytes.NewReader(b), size: size}, nil
}

// errFenced is what a fenced body answers once its request is over.
var errFenced = errors.New("s3store: request body read after the request ended")

// window is the part [start, start+size) of a seekable reader, as a
// seekable request body: the SDK can rewind it to retry, and the HTTP
// client cannot read past the part (it reads once more to check the
// length, which would eat the next part of a shared stream).
//
// Once fence is called every Read and Seek fails: net/http may go on
// reading a body after the request returned, and the bytes under it
// belong to the caller again (a buffer reused for the next part).
type window struct {
	mu     sync.Mutex
	rs     io.ReadSeeker
	start  int64
	size   int64
	off    int64 // within the window
	fenced bool
}

func (w *window) Read(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fenced {
		return 0, errFenced
	}
	if w.off >= w.size {
		return 0, io.EOF
	}
	if rem := w.size - w.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := w.rs.Read(p)
	w.off += int64(n)
	if err == io.EOF && w.off < w.size {
		err = io.ErrUnexpectedEOF // the reader changed under us
	}
	return n, err
}

func (w *window) Seek(offset int64, whence int) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fenced {
		return 0, errFenced
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = w.off + offset
	case io.SeekEnd:
		abs = w.size + offset
	default:
		return 0, errors.New("s3store: seek: invalid whence")
	}
	if abs < 0 || abs > w.size {
		return 0, errors.New("s3store: seek: outside the part")
	}
	if _, err := w.rs.Seek(w.start+abs, io.SeekStart); err != nil {
		return 0, err
	}
	w.off = abs
	return abs, nil
}

// fence ends the window: it leaves the reader just after the part and
// makes later reads fail.
func (w *window) fence() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fenced = true
	_, err := w.rs.Seek(w.start+w.size, io.SeekStart)
	return err
}
