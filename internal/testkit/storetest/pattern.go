package storetest

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
)

// Pattern is a deterministic stream of pseudo-random bytes: byte i of the
// stream with a given seed is always the same, whatever the read sizes. It
// allocates nothing, so it can feed gigabytes to a store while the test
// measures the store's allocations.
type Pattern struct {
	seed uint64
	pos  int64
	size int64 // -1: endless
}

// NewPattern returns size bytes of the stream seed; size < 0 never ends.
func NewPattern(seed uint64, size int64) *Pattern {
	return &Pattern{seed: seed, size: size}
}

// Read fills p with the next bytes of the stream.
func (r *Pattern) Read(p []byte) (int, error) {
	if r.size >= 0 {
		if r.pos >= r.size {
			return 0, io.EOF
		}
		if rem := r.size - r.pos; int64(len(p)) > rem {
			p = p[:rem]
		}
	}
	n := 0
	for n < len(p) {
		word := uint64(r.pos+int64(n)) / 8
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], splitmix(r.seed^word*0x9e3779b97f4a7c15))
		off := int(uint64(r.pos+int64(n)) % 8)
		n += copy(p[n:], buf[off:])
	}
	r.pos += int64(n)
	return n, nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// PatternBytes returns the first size bytes of the stream seed.
func PatternBytes(seed uint64, size int64) []byte {
	b := make([]byte, size)
	_, _ = io.ReadFull(NewPattern(seed, size), b)
	return b
}

// PatternSHA256 returns the SHA-256 of the first size bytes of the stream
// seed, without holding them in memory.
func PatternSHA256(seed uint64, size int64) []byte {
	h := sha256.New()
	_, _ = io.Copy(h, NewPattern(seed, size))
	return h.Sum(nil)
}
