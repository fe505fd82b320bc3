package storetest_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/storetest"
)

func TestPatternIsDeterministic(t *testing.T) {
	const size = 1<<20 + 13
	want := storetest.PatternBytes(7, size)
	for _, chunk := range []int{1, 3, 8, 1000, 32 << 10} {
		r := storetest.NewPattern(7, size)
		var got bytes.Buffer
		buf := make([]byte, chunk)
		if _, err := io.CopyBuffer(&got, struct{ io.Reader }{r}, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("reading in chunks of %d gives other bytes", chunk)
		}
	}
	if sum := sha256.Sum256(want); !bytes.Equal(storetest.PatternSHA256(7, size), sum[:]) {
		t.Error("PatternSHA256 differs from the SHA-256 of PatternBytes")
	}
	if bytes.Equal(storetest.PatternBytes(8, 64), want[:64]) {
		t.Error("seeds 7 and 8 give the same bytes")
	}
}

func TestPatternEndless(t *testing.T) {
	n, err := io.CopyN(io.Discard, storetest.NewPattern(1, -1), 10<<20)
	if n != 10<<20 || err != nil {
		t.Fatalf("CopyN from an endless pattern = %d, %v", n, err)
	}
}

func TestPatternAllocatesNothing(t *testing.T) {
	r := storetest.NewPattern(1, -1)
	buf := make([]byte, 32<<10)
	if a := testing.AllocsPerRun(100, func() { _, _ = r.Read(buf) }); a != 0 {
		t.Errorf("Read allocates %v times", a)
	}
}
