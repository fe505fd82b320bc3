package archive

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ChecksumError reports that the bytes written do not have the SHA-256 the
// caller announced in archive.PutOptions.SHA256. Nothing is left at the key.
// Detect it with errors.As, or through its ChecksumMismatch method (the
// convention internal/testkit/storetest checks for every store).
type ChecksumError struct {
	Key  string // the key of the object
	Want []byte // the expected SHA-256
	// Got is the SHA-256 of the bytes read from the caller's reader. It is
	// nil when the server detected the mismatch (the bytes were damaged on
	// the way, or local verification was off).
	Got []byte
}

func (e *ChecksumError) Error() string {
	if e.Got == nil {
		return fmt.Sprintf("sha256 mismatch: the server rejected the body, want %s", hex.EncodeToString(e.Want))
	}
	return fmt.Sprintf("sha256 mismatch: got %s, want %s", hex.EncodeToString(e.Got), hex.EncodeToString(e.Want))
}

// ChecksumMismatch reports true: the error is a digest mismatch, which is
// permanent for the bytes given.
func (e *ChecksumError) ChecksumMismatch() bool { return true }

// Is makes errors.Is(err, ErrChecksumMismatch) true.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksumMismatch }

// ExactReader yields exactly size bytes of r and fails (sticky) otherwise,
// or when ctx ends. Its checks run before the last bytes are handed over,
// so a body that is too short, too long, fails, or has the wrong SHA-256 is
// never complete.
//
// It is what both stores stream into their writes; build it with
// [NewExactReader].
type ExactReader struct {
	ctx  context.Context
	r    io.Reader
	size int64
	n    int64
	// probe: after size bytes, read once more to make sure r is at EOF (Put).
	// WritePart does not probe: its reader may go on with the next part.
	probe bool
	hash  hash.Hash // nil: no hashing
	want  []byte    // expected SHA-256 of everything hashed; nil: none
	key   string

	err error // first failure, returned by every later Read
	eof bool
}

// ExactOptions are the checks of an [ExactReader].
type ExactOptions struct {
	// Probe: after size bytes, read once more to make sure the source is at
	// EOF (a whole object). Parts do not probe: the source goes on with the
	// next part.
	Probe bool
	// Hash, when set, is fed every byte handed over.
	Hash hash.Hash
	// Want is the expected SHA-256 of everything hashed (nil: none).
	Want []byte
	// Key names the object in a ChecksumError.
	Key string
}

// NewExactReader returns a reader of exactly size bytes of r that fails
// once ctx ends.
func NewExactReader(ctx context.Context, r io.Reader, size int64, o ExactOptions) *ExactReader {
	return &ExactReader{ctx: ctx, r: r, size: size, probe: o.Probe, hash: o.Hash, want: o.Want, key: o.Key}
}

// Err is the first failure, or nil.
func (e *ExactReader) Err() error { return e.err }

func (e *ExactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.eof {
		return 0, io.EOF
	}
	if err := e.ctx.Err(); err != nil {
		return 0, e.fail(err)
	}
	rem := e.size - e.n
	if rem == 0 {
		if err := e.Finish(false); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := e.r.Read(p)
	if n > 0 && e.hash != nil {
		e.hash.Write(p[:n])
	}
	e.n += int64(n)
	if e.n == e.size {
		if ferr := e.Finish(errors.Is(err, io.EOF)); ferr != nil {
			return 0, ferr // withhold the last bytes
		}
		return n, io.EOF
	}
	switch {
	case err == io.EOF:
		return 0, e.fail(fmt.Errorf("body ended after %d of %d bytes: %w", e.n, e.size, io.ErrUnexpectedEOF))
	case err != nil:
		return 0, e.fail(fmt.Errorf("read body: %w", err))
	}
	return n, nil
}

// Finish checks the end of the body: r is at EOF (when probing) and the
// SHA-256 matches (when expected).
func (e *ExactReader) Finish(sawEOF bool) error {
	if e.probe && !sawEOF {
		var b [1]byte
		for tries := 0; ; tries++ {
			m, err := e.r.Read(b[:])
			if m > 0 {
				return e.fail(fmt.Errorf("body longer than %d bytes", e.size))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return e.fail(fmt.Errorf("read body: %w", err))
			}
			if tries == 100 {
				return e.fail(fmt.Errorf("read body: %w", io.ErrNoProgress))
			}
		}
	}
	if e.want != nil {
		if got := e.hash.Sum(nil); !bytes.Equal(got, e.want) {
			return e.fail(&ChecksumError{Key: e.key, Want: e.want, Got: got})
		}
	}
	e.eof = true
	return nil
}

func (e *ExactReader) fail(err error) error {
	e.err = err
	return err
}
