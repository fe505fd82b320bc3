package main

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestLoadgenSmoke runs both phases briefly against an embedded JetStream
// and the in-process webhook: every delivery is accepted and stored (run
// fails otherwise), and the report has both rates and the ratio.
func TestLoadgenSmoke(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-c", "4", "-d", "400ms", "-warmup", "100ms"}, &out, io.Discard); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out.String())
	}
	report := out.String()
	for _, re := range []string{
		`raw JetStream sync publish:\s+(\d+)/s`,
		`webhook deliveries \(202 after ack\):\s+(\d+)/s`,
		`stream holds (\d+) messages for (\d+) deliveries`,
		`ratio webhook/raw = \d+\.\d\d`,
	} {
		m := regexp.MustCompile(re).FindStringSubmatch(report)
		if m == nil {
			t.Fatalf("report lacks %s:\n%s", re, report)
		}
		if len(m) > 1 {
			if n, _ := strconv.Atoi(m[1]); n == 0 {
				t.Errorf("zero in %q", m[0])
			}
		}
	}
	if regexp.MustCompile(`errors map`).MatchString(report) {
		t.Errorf("errors during the run:\n%s", report)
	}
}

func TestLoadgenFlags(t *testing.T) {
	for _, args := range [][]string{{"-c", "0"}, {"-mode", "x"}, {"-client", "curl"}, {"-url", "http://x/webhook"}, {"-d", "0s"}} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
	if err := run(t.Context(), []string{"-h"}, io.Discard, io.Discard); err != nil {
		t.Errorf("-h: %v", err)
	}
}
