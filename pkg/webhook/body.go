package webhook

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// initialBodyBuffer is the most a body buffer holds before the body's bytes
// have arrived. A client that announces 25 MiB and sends one byte holds
// this much, not 25 MiB; the buffer then doubles as bytes arrive. It is
// small because a slow client costs about 30 KB outside the budget anyway
// (goroutine, connection buffers, request): the default budget then holds
// the first buffers of some 16,000 slow connections. Typical deliveries
// (20-30 KB) grow three times, or not at all with a pooled buffer.
const initialBodyBuffer = 4 << 10

// pooledBufferMax bounds the body buffers kept for reuse: a pooled buffer
// is what the next request starts with, even a slow one, so only buffers of
// typical deliveries are kept.
const pooledBufferMax = 64 << 10

// errBodyBudget means that the body buffers of the requests in flight
// already hold the handler's budget.
var errBodyBudget = errors.New("body buffer budget exhausted")

// bodyBudget is a semaphore over the bytes of the body buffers of all
// requests in flight. A buffer is charged before it is allocated or grown,
// so the bound holds for memory actually in use, whatever the clients
// announce in Content-Length.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
	gauge prometheus.Gauge // mirrors used
}

// tryAcquire charges n bytes if they fit under the limit.
func (b *bodyBudget) tryAcquire(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			b.gauge.Add(float64(n))
			return true
		}
	}
}

// release returns n bytes charged by tryAcquire.
func (b *bodyBudget) release(n int64) {
	if n != 0 {
		b.used.Add(-n)
		b.gauge.Sub(float64(n))
	}
}

// body is a request body being read, and the budget bytes its buffer holds.
type body struct {
	buf     []byte
	charged int64
}

// readBody reads at most maxBody bytes into a pooled buffer that grows with
// the bytes that arrive (never past Content-Length), charging the budget
// before every allocation. An oversize body is an *http.MaxBytesError, an
// exhausted budget errBodyBudget, a missed read deadline
// os.ErrDeadlineExceeded. The caller releases the body, also on error.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (*body, error) {
	if r.ContentLength > h.maxBody {
		return nil, &http.MaxBytesError{Limit: h.maxBody}
	}
	want := h.maxBody // the most the buffer can need
	if r.ContentLength >= 0 {
		want = r.ContentLength
	}
	b := h.bufs.Get().(*body)
	b.buf = b.buf[:0]
	if !h.budget.tryAcquire(int64(cap(b.buf))) {
		h.bufs.Put(b)
		return nil, errBodyBudget
	}
	b.charged = int64(cap(b.buf))
	src := http.MaxBytesReader(w, r.Body, h.maxBody)
	for {
		if len(b.buf) == cap(b.buf) {
			if int64(len(b.buf)) >= want {
				// Full at the announced length (net/http usually returns
				// io.EOF with the last bytes): expect EOF, or the
				// MaxBytesError of a chunked body that goes on.
				var probe [1]byte
				for {
					n, err := src.Read(probe[:])
					switch {
					case n > 0: // net/http stops a body at its Content-Length
						return b, errors.New("body longer than its Content-Length")
					case err == io.EOF:
						return b, nil
					case err != nil:
						return b, err
					}
				}
			}
			grown := min(max(2*int64(cap(b.buf)), initialBodyBuffer), want)
			if !h.budget.tryAcquire(grown - int64(cap(b.buf))) {
				return b, errBodyBudget
			}
			b.charged += grown - int64(cap(b.buf))
			buf := make([]byte, len(b.buf), grown)
			copy(buf, b.buf)
			b.buf = buf
		}
		n, err := src.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// release returns a body's budget and keeps its buffer for reuse unless it
// is large.
func (h *Handler) release(b *body) {
	h.budget.release(b.charged)
	b.charged = 0
	if cap(b.buf) > pooledBufferMax {
		b.buf = nil
	}
	h.bufs.Put(b)
}
