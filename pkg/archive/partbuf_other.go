//go:build !unix

package archive

// allocPartBuffers returns n buffers of size bytes on the Go heap (see the
// unix version, which maps them outside it).
func allocPartBuffers(n int, size int64) ([][]byte, func(), error) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, func() {}, nil
}
