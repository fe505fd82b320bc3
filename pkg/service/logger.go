package service

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
)

// The log formats of [NewLogger].
const (
	LogJSON = "json"
	LogText = "text"
)

// LogEnv adds ARCHIVER_LOG_LEVEL and ARCHIVER_LOG_FORMAT to e, bound to
// level (default info) and format (default json).
func LogEnv(e *Env, level *slog.Level, format *string) {
	e.Level(level, "ARCHIVER_LOG_LEVEL", slog.LevelInfo, "`debug`, `info`, `warn` or `error`")
	e.Choice(format, "ARCHIVER_LOG_FORMAT", LogJSON, []string{LogJSON, LogText},
		"`json` or `text`: structured `log/slog` logs. Secrets, tokens and bodies are never logged")
}

// CheckLogFormat fails unless format is json or text.
func CheckLogFormat(format string) error {
	if !slices.Contains([]string{LogJSON, LogText}, format) {
		return fmt.Errorf("service: log format %q: want json or text", format)
	}
	return nil
}

// NewLogger returns a logger writing to w at level, as JSON or text. Any
// other format is an error.
func NewLogger(w io.Writer, level slog.Level, format string) (*slog.Logger, error) {
	if err := CheckLogFormat(format); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == LogText {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
