package archivectl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// SGR colours. Each code is exactly 5 bytes, and so is sgrReset: with
// colours on every cell carries the same 10 invisible bytes, so tabwriter
// (which counts bytes) still aligns the columns.
const (
	sgrRed    = "\x1b[31m"
	sgrGreen  = "\x1b[32m"
	sgrYellow = "\x1b[33m"
	sgrNone   = "\x1b[39m"
	sgrReset  = "\x1b[39m"
)

// table writes aligned columns with text/tabwriter, colouring cells
// through paint when colours are on.
type table struct {
	tw    *tabwriter.Writer
	color bool
	// paint returns the colour of the cell of column col holding s
	// (sgrNone for none); nil colours nothing.
	paint func(col int, s string) string
}

func newTable(w io.Writer, color bool, paint func(col int, s string) string, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0), color: color, paint: paint}
	t.write(header, false)
	return t
}

func (t *table) row(cells ...string) { t.write(cells, true) }

func (t *table) write(cells []string, paint bool) {
	for i, s := range cells {
		s = strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
		if t.color {
			c := sgrNone
			if paint && t.paint != nil {
				c = t.paint(i, s)
			}
			s = c + s + sgrReset
		}
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, s)
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// statusColor colours archive statuses and run conclusions.
func statusColor(s string) string {
	switch s {
	case "archived", "success", "OK", "ok", "enqueued", "redelivered", "replayed":
		return sgrGreen
	case "expired", "cancelled", "skipped", "neutral", "duplicate", "would enqueue", "would redeliver", "would replay":
		return sgrYellow
	case "failed", "failure", "timed_out", "startup_failure", "error":
		return sgrRed
	}
	return sgrNone
}

// humanBytes renders n in IEC units: "512 B", "1.5 KiB", "12.3 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// shortTime renders t for tables, in UTC: "2026-01-02 15:04:05".
func shortTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateTime)
}

// plural renders "1 problem", "2 problems".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncateText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
