package archivectl

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a one-line progress bar on a terminal (stderr), redrawn
// at most every redrawEvery. A disabled progress (stderr is not a
// terminal) counts but draws nothing. It is safe for concurrent use, and
// is an io.Writer that counts the bytes written to it (for
// io.MultiWriter).
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	enabled bool
	label   string
	total   int64
	bytes   bool // count bytes (sizes and a rate) rather than items
	done    int64
	start   time.Time
	drawn   time.Time
	now     func() time.Time
}

const (
	redrawEvery = 100 * time.Millisecond
	barWidth    = 28
)

func newProgress(w io.Writer, enabled bool, label string, total int64, bytes bool) *progress {
	return &progress{w: w, enabled: enabled, label: label, total: total, bytes: bytes, start: time.Now(), now: time.Now}
}

// Add counts n more units and redraws when due.
func (p *progress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if !p.enabled {
		return
	}
	if now := p.now(); now.Sub(p.drawn) >= redrawEvery {
		p.drawn = now
		p.draw(now)
	}
}

// Write counts len(b) bytes.
func (p *progress) Write(b []byte) (int, error) {
	p.Add(int64(len(b)))
	return len(b), nil
}

// Done draws the final state and ends the line.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.enabled {
		return
	}
	p.draw(p.now())
	io.WriteString(p.w, "\n")
	p.enabled = false
}

// draw renders "\r<label> [=====>    ]  45%  12.3 MiB / 27.0 MiB  5.1 MiB/s".
func (p *progress) draw(now time.Time) {
	fmt.Fprint(p.w, "\r\x1b[2K", p.line(now))
}

func (p *progress) line(now time.Time) string {
	var b strings.Builder
	b.WriteString(p.label)
	b.WriteString(" [")
	frac := 0.0
	if p.total > 0 {
		frac = min(float64(p.done)/float64(p.total), 1)
	}
	full := int(frac * barWidth)
	b.WriteString(strings.Repeat("=", full))
	if full < barWidth {
		b.WriteString(">")
		b.WriteString(strings.Repeat(" ", barWidth-full-1))
	}
	fmt.Fprintf(&b, "] %3.0f%%  ", frac*100)
	if p.bytes {
		fmt.Fprintf(&b, "%s / %s", humanBytes(p.done), humanBytes(p.total))
		if secs := now.Sub(p.start).Seconds(); secs > 0.2 {
			fmt.Fprintf(&b, "  %s/s", humanBytes(int64(float64(p.done)/secs)))
		}
	} else {
		fmt.Fprintf(&b, "%d / %d", p.done, p.total)
	}
	return b.String()
}
