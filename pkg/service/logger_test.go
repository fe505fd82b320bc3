package service_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		format, want string
	}{
		{"json", `"msg":"hello"`},
		{"text", `msg=hello`},
	} {
		var buf bytes.Buffer
		log, err := service.NewLogger(&buf, slog.LevelWarn, tt.format)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hidden")
		log.Warn("hello")
		if got := buf.String(); !strings.Contains(got, tt.want) || strings.Contains(got, "hidden") {
			t.Errorf("%s: logged %q, want %s at warn only", tt.format, got, tt.want)
		}
	}
	if _, err := service.NewLogger(&bytes.Buffer{}, slog.LevelInfo, "yaml"); err == nil {
		t.Error("NewLogger accepted the format yaml")
	}
}

// TestLogEnv: a bad level or format is an error naming the variable, in
// every binary that reads them through LogEnv.
func TestLogEnv(t *testing.T) {
	t.Parallel()
	var level slog.Level
	var format string
	var e service.Env
	service.LogEnv(&e, &level, &format)
	if err := e.Parse(envFrom(nil)); err != nil || level != slog.LevelInfo || format != "json" {
		t.Fatalf("defaults: %v %q %v", level, format, err)
	}
	if err := e.Parse(envFrom(map[string]string{"ARCHIVER_LOG_LEVEL": "Debug", "ARCHIVER_LOG_FORMAT": "TEXT"})); err != nil || level != slog.LevelDebug || format != "text" {
		t.Fatalf("parsed: %v %q %v", level, format, err)
	}
	for name, value := range map[string]string{"ARCHIVER_LOG_LEVEL": "verbose", "ARCHIVER_LOG_FORMAT": "yaml"} {
		if err := e.Parse(envFrom(map[string]string{name: value})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: err = %v, want one naming the variable", name, value, err)
		}
	}
}
