package demo_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/demo"
)

func TestDemoArchivesEveryRun(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := demo.Run(t.Context(), demo.Options{Destination: "file://" + dir, Logger: slog.New(slog.DiscardHandler), Timeout: time.Minute}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{`"duplicate":true`, "wrong signature:              401", "acme/gadgets.js", "report.html"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, " archived "); n != 7 {
		t.Errorf("%d artifacts archived, want 7:\n%s", n, s)
	}
	if n := strings.Count(s, " expired "); n != 1 {
		t.Errorf("%d artifacts expired, want 1:\n%s", n, s)
	}
}
