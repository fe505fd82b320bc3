//go:build unix

package archive

import (
	"fmt"
	"syscall"
)

// allocPartBuffers returns n buffers of size bytes for one multipart
// transfer, and the function that frees them. They are mapped outside the
// Go heap: the garbage collector sizes its heap goal to twice the live
// heap, so buffers on the heap would let about as much garbage pile up
// again before a collection (peak RSS measured 48 MiB against 40 MiB with
// 2 × 8 MiB parts, see docs/benchmarks.md). free must be called only once
// no reader of the buffers is left: after every WritePart returned (the
// stores read a part only within WritePart).
func allocPartBuffers(n int, size int64) ([][]byte, func(), error) {
	bufs := make([][]byte, 0, n)
	free := func() {
		for _, b := range bufs {
			_ = syscall.Munmap(b)
		}
	}
	for range n {
		b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			free()
			return nil, nil, fmt.Errorf("archive: map a %d-byte part buffer: %w", size, err)
		}
		bufs = append(bufs, b)
	}
	return bufs, free, nil
}
