package ghsim_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func TestContentDeterministic(t *testing.T) {
	t.Parallel()
	const size = 3<<20 + 5 // crosses 1 MiB blocks, odd length
	a := readAll(t, ghsim.NewRawContent(1, size))
	b := readAll(t, ghsim.NewRawContent(1, size))
	if len(a) != size {
		t.Fatalf("read %d bytes, want %d", len(a), size)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same seed and size gave different bodies")
	}
	// A fixed digest pins the stream: another process (cmd/ghsim, or an
	// archiver test) computes the same body. Checked against an independent
	// implementation of the formula documented on Content.
	const golden = "bf08625050779f78d0bfcb9958a4a7ab767e590bb27ad2a2be74fbd59d101de9"
	sum := sha256.Sum256(a)
	if got := hex.EncodeToString(sum[:]); got != golden {
		t.Fatalf("sha256 = %s, want %s", got, golden)
	}
	if got := ghsim.NewRawContent(1, size).SHA256(); got != golden {
		t.Fatalf("Content.SHA256 = %s, want %s", got, golden)
	}
	if got := ghsim.NewRawContent(2, size).SHA256(); got == golden {
		t.Fatal("seed 2 has the digest of seed 1")
	}
	if got, want := ghsim.NewRawContent(1, size-1).SHA256(), sha256.Sum256(a[:size-1]); got != hex.EncodeToString(want[:]) {
		t.Fatal("a shorter body is not a prefix of the longer one")
	}
}

// TestContentRandomAccess checks the stream; TestContentZipRandomAccess
// the zip around it.
func TestContentRandomAccess(t *testing.T) {
	t.Parallel()
	const size = 5<<20 + 123
	full := readAll(t, ghsim.NewRawContent(7, size))
	c := ghsim.NewRawContent(7, size)
	for _, off := range []int64{0, 1, 8, 4095, 1 << 20, 1<<20 - 3, 3<<20 + 17, size - 10} {
		buf := make([]byte, 64<<10)
		n, err := c.ReadAt(buf, off)
		want := full[off:min(off+int64(len(buf)), size)]
		if n != len(want) || !bytes.Equal(buf[:n], want) {
			t.Fatalf("ReadAt(%d) gave %d bytes that differ from the sequential read", off, n)
		}
		if n < len(buf) && err != io.EOF {
			t.Fatalf("short ReadAt(%d) err = %v, want io.EOF", off, err)
		}
		// A shifted window differs: a client that resumes at a wrong offset
		// writes wrong bytes and fails its hash.
		if off > 0 && bytes.Equal(buf[:n], full[off-1:off-1+int64(n)]) {
			t.Fatalf("window at %d equals the window at %d", off, off-1)
		}
	}
	if _, err := c.Seek(size-3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if tail := readAll(t, c); !bytes.Equal(tail, full[size-3:]) {
		t.Fatalf("Seek+Read tail = %x, want %x", tail, full[size-3:])
	}
	if pos, err := c.Seek(-10, io.SeekEnd); err != nil || pos != size-10 {
		t.Fatalf("Seek(-10, end) = %d, %v", pos, err)
	}
	if _, err := c.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek to a negative position succeeded")
	}
	var w bytes.Buffer
	if _, err := c.Seek(1<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := c.WriteTo(&w); err != nil || n != size-1<<20 || !bytes.Equal(w.Bytes(), full[1<<20:]) {
		t.Fatalf("WriteTo from 1 MiB: n=%d err=%v equal=%v", n, err, bytes.Equal(w.Bytes(), full[1<<20:]))
	}
}

func TestContentBlocksDiffer(t *testing.T) {
	t.Parallel()
	// Every 1 MiB block is distinct, so a client that repeats or skips a
	// whole block is caught too.
	c := ghsim.NewRawContent(3, 8<<20)
	seen := map[[32]byte]int{}
	buf := make([]byte, 1<<20)
	for i := range 8 {
		if _, err := c.ReadAt(buf, int64(i)<<20); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf)
		if j, dup := seen[sum]; dup {
			t.Fatalf("block %d equals block %d", i, j)
		}
		seen[sum] = i
	}
}
