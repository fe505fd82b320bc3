package ghsim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
)

// blockSize is the length of the pseudo-random base block that every
// artifact body is derived from. It is a multiple of 8.
const blockSize = 1 << 20

// baseBlock is computed once and never written again: an immutable table,
// like the CRC tables of the standard library.
var baseBlock = sync.OnceValue(func() *[blockSize]byte {
	var b [blockSize]byte
	x := uint64(0x6768_7369_6d5f_7631) // "ghsim_v1": the content format version
	for i := 0; i < blockSize; i += 8 {
		x = splitmix64(x)
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	return &b
})

// splitmix64 is one step of the SplitMix64 generator: a cheap, well-mixed
// 64-bit permutation.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// blockMask is the 64-bit word XORed over every word of block blk of the
// body generated from seed.
func blockMask(seed, blk int64) uint64 {
	return splitmix64(splitmix64(uint64(seed)) ^ splitmix64(uint64(blk)+0x5bd1e995))
}

// Content is the deterministic body of a simulated artifact: size bytes
// computed from (seed, offset), so multi-GiB bodies need neither disk nor
// RAM, and any byte comes without the bytes before it (Range requests,
// resumed downloads). The same seed and size always give the same bytes, in
// every process.
//
// The bytes come from a generated stream: byte p is base[p mod 1 MiB] XOR
// byte (p mod 8) of a 64-bit mask mixed from the seed and the 1 MiB block
// index p / 1 MiB, where base is a fixed pseudo-random block. A different
// seed or a shifted offset gives different bytes. NewRawContent serves the
// stream itself; NewContent wraps it in a zip archive, as GitHub serves
// artifacts:
//
//   - the archive holds stored (uncompressed) entries file-1.bin,
//     file-2.bin, ... (numbers zero-padded to one width), with correct
//     CRC-32s; every entry holds 1 MiB of the stream, the next MiB after
//     the previous entry's, but the last, which holds the rest (up to 1 MiB
//     plus about a hundred bytes), then the central directory and the end
//     record. Bodies of 4 GiB - 1 and more are zip64.
//   - a body of MinZipSize (22) up to MinZipEntrySize (118) bytes is an
//     archive with no entry, padded with its comment (hex digits of the
//     stream): archive/zip opens it, unzip warns "zipfile is empty".
//   - a body shorter than MinZipSize is no zip: it is the stream itself.
//
// Either way the body has exactly size bytes: what an artifact's Size
// promises.
//
// Content implements io.Reader, io.ReaderAt, io.Seeker and io.WriterTo.
// ReadAt is safe for concurrent use; Read, Seek and WriteTo share an offset
// and are not.
type Content struct {
	seed int64
	size int64
	off  int64
	zip  *zipLayout // nil: the stream itself
}

var (
	_ io.ReadSeeker = (*Content)(nil)
	_ io.ReaderAt   = (*Content)(nil)
	_ io.WriterTo   = (*Content)(nil)
)

// NewContent returns the body of an artifact of size bytes generated from
// seed: a zip archive (see Content), positioned at offset 0.
func NewContent(seed, size int64) *Content {
	size = max(size, 0)
	return &Content{seed: seed, size: size, zip: newZipLayout(size)}
}

// NewRawContent returns the body of an artifact uploaded with
// "archive: false" (ArtifactSpec.Raw): size bytes of the stream generated
// from seed, with no zip around them, positioned at offset 0.
func NewRawContent(seed, size int64) *Content {
	return &Content{seed: seed, size: max(size, 0)}
}

// Size returns the length of the body.
func (c *Content) Size() int64 { return c.size }

// Read implements io.Reader.
func (c *Content) Read(p []byte) (int, error) {
	n, err := c.ReadAt(p, c.off)
	c.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt implements io.ReaderAt.
func (c *Content) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("ghsim: read content: negative offset")
	}
	if off >= c.size {
		return 0, io.EOF
	}
	n := len(p)
	if rest := c.size - off; int64(n) > rest {
		n = int(rest)
	}
	if c.zip != nil {
		c.zip.fill(p[:n], c.seed, off)
	} else {
		fill(p[:n], c.seed, off)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Seek implements io.Seeker.
func (c *Content) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = c.off + offset
	case io.SeekEnd:
		abs = c.size + offset
	default:
		return 0, fmt.Errorf("ghsim: seek content: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, errors.New("ghsim: seek content: negative position")
	}
	c.off = abs
	return abs, nil
}

// WriteTo implements io.WriterTo: it writes the rest of the body from the
// current offset, 256 KiB at a time.
func (c *Content) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for c.off < c.size {
		n, _ := c.ReadAt(buf, c.off)
		m, err := w.Write(buf[:n])
		c.off += int64(m)
		total += int64(m)
		if err != nil {
			return total, err
		}
		if m < n {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

// SHA256 hashes the whole body (independently of the current offset) and
// returns the lowercase hex digest. It takes about a second per GiB.
func (c *Content) SHA256() string {
	h := sha256.New()
	whole := &Content{seed: c.seed, size: c.size, zip: c.zip}
	if _, err := whole.WriteTo(h); err != nil {
		panic("ghsim: hash content: " + err.Error()) // hash.Hash never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fill writes the bytes of the stream generated from seed at
// [off, off+len(dst)) into dst.
func fill(dst []byte, seed, off int64) {
	base := baseBlock()
	for len(dst) > 0 {
		blk, in := off/blockSize, int(off%blockSize)
		n := min(len(dst), blockSize-in)
		xorMask(dst[:n], base[in:in+n], blockMask(seed, blk), in%8)
		dst, off = dst[n:], off+int64(n)
	}
}

// xorMask sets dst[i] = src[i] ^ byte k of m, where k = (phase+i) mod 8 and
// m is read as little-endian: the aligned middle goes a word (4 words) at a
// time.
func xorMask(dst, src []byte, m uint64, phase int) {
	src = src[:len(dst)]
	i := 0
	for ; i < len(dst) && (phase+i)%8 != 0; i++ {
		dst[i] = src[i] ^ byte(m>>(8*((phase+i)%8)))
	}
	for ; i+32 <= len(dst); i += 32 {
		d, s := dst[i:i+32], src[i:i+32]
		binary.LittleEndian.PutUint64(d[0:], binary.LittleEndian.Uint64(s[0:])^m)
		binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:])^m)
		binary.LittleEndian.PutUint64(d[16:], binary.LittleEndian.Uint64(s[16:])^m)
		binary.LittleEndian.PutUint64(d[24:], binary.LittleEndian.Uint64(s[24:])^m)
	}
	for ; i+8 <= len(dst); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^m)
	}
	for ; i < len(dst); i++ {
		dst[i] = src[i] ^ byte(m>>(8*((phase+i)%8)))
	}
}
