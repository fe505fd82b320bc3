package archivectl

import (
	"bytes"
	"flag"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

func TestParseArgsAllowsFlagsAnywhere(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
		out  string
	}{
		{[]string{"octo/app", "--json"}, []string{"octo/app"}, true, ""},
		{[]string{"--json", "octo/app", "1", "-o", "-", "dist"}, []string{"octo/app", "1", "dist"}, true, "-"},
		{[]string{"a", "--", "--json", "-o"}, []string{"a", "--json", "-o"}, false, ""},
		{nil, nil, false, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		o := fs.String("o", "", "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *j != tc.json || *o != tc.out {
			t.Errorf("parseArgs(%q) = %q, json %v, o %q, %v; want %q, %v, %q", tc.args, pos, *j, *o, err, tc.pos, tc.json, tc.out)
		}
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"72h", now.Add(-72 * time.Hour), false},
		{"7d", now.Add(-7 * 24 * time.Hour), false},
		{"2026-01-02", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), false},
		{"2026-01-02T03:04:05+02:00", time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC), false},
		{"-5h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
	} {
		got, err := parseSince(tc.in, now)
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestTableAlignsWithColour: coloured cells carry invisible bytes; the
// columns must still line up once they are stripped.
func TestTableAlignsWithColour(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	tb := newTable(&b, true, func(col int, s string) string {
		if col == 1 {
			return statusColor(s)
		}
		return sgrNone
	}, "NAME", "STATUS", "SIZE")
	tb.row("a", "archived", "1 B")
	tb.row("longer-name", "failed", "10.0 MiB")
	tb.row("x", "unknown", "-")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), sgrGreen+"archived") || !strings.Contains(b.String(), sgrRed+"failed") {
		t.Fatalf("no colours in %q", b.String())
	}
	lines := strings.Split(strings.TrimSpace(sgr.ReplaceAllString(b.String(), "")), "\n")
	col := strings.Index(lines[0], "SIZE")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Fatalf("misaligned:\n%s", strings.Join(lines, "\n"))
		}
	}

	b.Reset()
	tb = newTable(&b, false, func(int, string) string { return sgrRed }, "A")
	tb.row("x")
	tb.flush()
	if strings.Contains(b.String(), "\x1b") {
		t.Fatalf("colours off, yet %q", b.String())
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newProgress(&b, true, "dist.zip", 1000, true)
	p.start, p.now = clock, func() time.Time { return clock.Add(2 * time.Second) }
	p.Write(make([]byte, 500))
	line := b.String()
	for _, want := range []string{"\r", "dist.zip [", "==============>", " 50%", "500 B / 1000 B", "250 B/s"} {
		if !strings.Contains(line, want) {
			t.Fatalf("progress line %q lacks %q", line, want)
		}
	}
	p.Add(500)
	p.Done()
	if !strings.HasSuffix(b.String(), "100%  1000 B / 1000 B  500 B/s\n") {
		t.Fatalf("final line %q", b.String())
	}

	b.Reset()
	off := newProgress(&b, false, "x", 10, false)
	off.Add(5)
	off.Done()
	if b.Len() != 0 {
		t.Fatalf("disabled progress wrote %q", b.String())
	}
}

func TestParseSums(t *testing.T) {
	t.Parallel()
	h1, h2 := strings.Repeat("a", 64), strings.Repeat("B", 64)
	got, err := parseSums("o/r/runs/1/attempt-2", []byte(h1+"  ../artifacts/7/dist.zip\n"+h2+" *../artifacts/8/raw.bin\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["o/r/runs/1/artifacts/7/dist.zip"] != h1 || got["o/r/runs/1/artifacts/8/raw.bin"] != strings.ToLower(h2) {
		t.Fatalf("parseSums = %v", got)
	}
	if _, err := parseSums("d", []byte("nonsense\n")); err == nil {
		t.Fatal("parseSums accepted a malformed line")
	}
}

func TestFailedDeliveries(t *testing.T) {
	t.Parallel()
	at := func(h int) time.Time { return time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC) }
	ds := []ghclient.HookDelivery{ // newest first, as listed
		{ID: 9, GUID: "c", DeliveredAt: at(9), Status: "OK", StatusCode: 202, Event: "workflow_run", Action: "completed", Redelivery: true},
		{ID: 8, GUID: "d", DeliveredAt: at(8), Status: "Invalid HTTP Response: 500", StatusCode: 500, Event: "workflow_run", Action: "completed", Redelivery: true},
		{ID: 7, GUID: "e", DeliveredAt: at(7), StatusCode: 500, Event: "workflow_run", Action: "in_progress"},
		{ID: 6, GUID: "f", DeliveredAt: at(6), StatusCode: 500, Event: "ping"},
		{ID: 5, GUID: "c", DeliveredAt: at(5), StatusCode: 503, Event: "workflow_run", Action: "completed"},
		{ID: 4, GUID: "d", DeliveredAt: at(4), StatusCode: 0, Status: "timed out", Event: "workflow_run", Action: "completed"},
		{ID: 3, GUID: "a", DeliveredAt: at(3), StatusCode: 502, Event: "workflow_run", Action: "completed"},
		{ID: 2, GUID: "b", DeliveredAt: at(2), StatusCode: 200, Status: "OK", Event: "workflow_run", Action: "completed"},
	}
	got := failedDeliveries(ds)
	if len(got) != 2 || got[0].GUID != "a" || got[1].GUID != "d" || got[1].DeliveryID != 8 || got[1].Attempts != 2 || !got[1].FirstAt.Equal(at(4)) {
		t.Fatalf("failedDeliveries = %+v, want a, then d (latest attempt 8, 2 attempts)", got)
	}
}

func TestScopePrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    scope
		want string
	}{
		{scope{}, ""},
		{scope{owner: "octo", repo: "app"}, "octo/app/runs/"},
		{scope{owner: "octo", repo: "app", runID: 1}, "octo/app/runs/1/"},
		{scope{owner: "a b", repo: "..", runID: 10}, "a_b/__/runs/10/"},
	} {
		if got := tc.s.prefix(); got != tc.want {
			t.Errorf("%+v.prefix() = %q, want %q", tc.s, got, tc.want)
		}
	}
}
