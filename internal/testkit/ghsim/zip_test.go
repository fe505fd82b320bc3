package ghsim_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

const mib = 1 << 20

// openZip opens a body with archive/zip and reads every entry (which checks
// its CRC-32), failing the test on any error. It returns the reader and the
// entries' contents.
func openZip(t *testing.T, r io.ReaderAt, size int64) (*zip.Reader, [][]byte) {
	t.Helper()
	zr, err := zip.NewReader(r, size)
	if err != nil {
		t.Fatalf("zip.NewReader(%d bytes): %v", size, err)
	}
	var contents [][]byte
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s: %v", f.Name, err)
		}
		b, err := io.ReadAll(rc) // archive/zip checks the CRC-32 at EOF
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		contents = append(contents, b)
	}
	return zr, contents
}

// rebuild writes, with archive/zip's Writer, the archive Content promises
// (see its doc) for entries of the given names and contents, CRCs computed
// directly: an independent implementation of the layout.
func rebuild(t *testing.T, names []string, contents [][]byte, comment string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, data := range contents {
		n := int64(len(data))
		fh := &zip.FileHeader{
			Name:           names[i],
			Method:         zip.Store,
			CreatorVersion: 3<<8 | 20,
			ReaderVersion:  20,
			//lint:ignore SA1019 the raw DOS date, as the simulator writes it: Modified would add an extended-timestamp field
			ModifiedDate:       (2025-1980)<<9 | 1<<5 | 1,
			CRC32:              crc32.ChecksumIEEE(data),
			CompressedSize64:   uint64(n),
			UncompressedSize64: uint64(n),
			ExternalAttrs:      0o100644 << 16,
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.SetComment(comment); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestContentZip(t *testing.T) {
	t.Parallel()
	name := regexp.MustCompile(`^file-[0-9]+\.bin$`)
	for _, tc := range []struct {
		size    int64
		entries int
	}{
		{ghsim.MinZipSize, 0},          // the end record alone
		{100, 0},                       // padded with the comment
		{ghsim.MinZipEntrySize - 1, 0}, // the largest empty archive
		{ghsim.MinZipEntrySize, 1},     // one empty entry
		{500, 1},
		{mib + 200, 1}, // the last entry runs past 1 MiB
		{mib + 300, 2}, // a second entry of a few bytes
		{5*mib + 1, 5}, // just over archivetest.PartSize
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			t.Parallel()
			const seed = 5
			body := readAll(t, ghsim.NewContent(seed, tc.size))
			if int64(len(body)) != tc.size {
				t.Fatalf("body of %d bytes, want %d", len(body), tc.size)
			}
			zr, contents := openZip(t, bytes.NewReader(body), tc.size)
			if len(zr.File) != tc.entries {
				t.Fatalf("%d entries, want %d", len(zr.File), tc.entries)
			}
			// The entries hold the stream, 1 MiB each but the last.
			var names []string
			var all []byte
			for i, f := range zr.File {
				if want := fmt.Sprintf("file-%0*d.bin", len(zr.File[len(zr.File)-1].Name)-9, i+1); f.Name != want ||
					!name.MatchString(f.Name) || f.Method != zip.Store || f.Mode() != 0o644 {
					t.Fatalf("entry %d: %q method %d mode %v", i, f.Name, f.Method, f.Mode())
				}
				n := int64(len(contents[i]))
				if i < len(zr.File)-1 && n != mib || n > mib+200 {
					t.Fatalf("entry %d holds %d bytes", i, n)
				}
				names = append(names, f.Name)
				all = append(all, contents[i]...)
			}
			if want := readAll(t, ghsim.NewRawContent(seed, int64(len(all)))); !bytes.Equal(all, want) {
				t.Fatal("the entries are not the generated stream")
			}
			if want := rebuild(t, names, contents, zr.Comment); !bytes.Equal(body, want) {
				t.Fatalf("body differs from archive/zip's writing of the same entries (%d vs %d bytes)", len(body), len(want))
			}
			if tc.entries == 0 && !regexp.MustCompile(`^[0-9a-f]*$`).MatchString(zr.Comment) {
				t.Fatalf("comment %q is not hex digits", zr.Comment)
			}
		})
	}
}

func TestContentTooSmallForZip(t *testing.T) {
	t.Parallel()
	for size := range int64(ghsim.MinZipSize) {
		body := readAll(t, ghsim.NewContent(5, size))
		if !bytes.Equal(body, readAll(t, ghsim.NewRawContent(5, size))) {
			t.Fatalf("%d bytes: not the plain stream", size)
		}
		if _, err := zip.NewReader(bytes.NewReader(body), size); !errors.Is(err, zip.ErrFormat) {
			t.Fatalf("%d bytes: zip.NewReader err = %v, want zip.ErrFormat", size, err)
		}
	}
}

func TestContentZipGolden(t *testing.T) {
	t.Parallel()
	// Pins the zip format, as TestContentDeterministic pins the stream:
	// another process computes the same digest. TestContentZip checks the
	// format against archive/zip's writer.
	const golden = "c666e0230f480293b16c66a8982fe0f6f11bfcb124fd636782699a08af75642e"
	sum := sha256.Sum256(readAll(t, ghsim.NewContent(1, 3<<20+5)))
	if got := hex.EncodeToString(sum[:]); got != golden {
		t.Fatalf("sha256 = %s, want %s", got, golden)
	}
	if got := ghsim.NewContent(1, 3<<20+5).SHA256(); got != golden {
		t.Fatalf("Content.SHA256 = %s, want %s", got, golden)
	}
}

func TestContentZipRandomAccess(t *testing.T) {
	t.Parallel()
	const size = 3*mib + 777
	full := readAll(t, ghsim.NewContent(9, size))
	zr, err := zip.NewReader(bytes.NewReader(full), size)
	if err != nil {
		t.Fatal(err)
	}
	// Windows at every boundary (headers, data, central directory, end
	// record) and at random offsets.
	offs := []int64{0, 1, size - 1, size - 22, size - 23}
	for _, f := range zr.File {
		data, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, data-1, data, data+int64(f.UncompressedSize64)-1, data+int64(f.UncompressedSize64))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		offs = append(offs, rng.Int64N(size))
	}
	c := ghsim.NewContent(9, size)
	for _, off := range offs {
		for _, n := range []int64{1, 29, 4096, 100_003} {
			buf := make([]byte, n)
			got, err := c.ReadAt(buf, off)
			want := full[off:min(off+n, size)]
			if got != len(want) || !bytes.Equal(buf[:got], want) {
				t.Fatalf("ReadAt(%d bytes at %d) = %d bytes that differ from the full body's slice", n, off, got)
			}
			if got < len(buf) && err != io.EOF {
				t.Fatalf("short ReadAt at %d: err = %v, want io.EOF", off, err)
			}
		}
	}
}

// TestContentZip64 opens multi-GiB bodies through ReadAt: only the central
// directory and the entries read are generated.
func TestContentZip64(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size  int64
		zip64 bool
	}{
		{1<<32 - 2, false}, // the largest classic zip
		{1<<32 - 1, true},
		{4 << 30, true},
		{5<<30 + 123, true},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			t.Parallel()
			c := ghsim.NewContent(int64(tc.size), tc.size)
			zr, err := zip.NewReader(c, tc.size)
			if err != nil {
				t.Fatalf("zip.NewReader: %v", err)
			}
			// The zip64 end records sit before the end record.
			tail := make([]byte, 98)
			if _, err := c.ReadAt(tail, tc.size-98); err != nil {
				t.Fatal(err)
			}
			if got := bytes.HasPrefix(tail, []byte("PK\x06\x06")); got != tc.zip64 {
				t.Fatalf("zip64 end record present: %v, want %v", got, tc.zip64)
			}
			n := len(zr.File)
			if want := int(tc.size >> 20); n < want-1 || n > want+1 {
				t.Fatalf("%d entries, want about %d", n, want)
			}
			// Headers and entries add up to the size.
			total, record, end := int64(0), int64(46), int64(22)
			if tc.zip64 {
				record, end = 46+12, 22+56+20
			}
			for _, f := range zr.File {
				total += 30 + int64(len(f.Name)) + int64(f.UncompressedSize64) + record + int64(len(f.Name))
			}
			if total+end != tc.size {
				t.Fatalf("entries and headers add up to %d bytes, want %d", total+end, tc.size)
			}
			last := zr.File[n-1]
			// Read the first, a middle and the last entries: archive/zip
			// checks their CRC-32s.
			for _, f := range []*zip.File{zr.File[0], zr.File[n/2], zr.File[n-2], last} {
				rc, err := f.Open()
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || int64(len(got)) != int64(f.UncompressedSize64) {
					t.Fatalf("read %s: %d bytes, %v", f.Name, len(got), err)
				}
			}
			if want := fmt.Sprintf("file-%04d.bin", n); last.Name != want {
				t.Fatalf("last entry %q, want %q", last.Name, want)
			}
		})
	}
}
