package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeService records its lifecycle.
type fakeService struct {
	startErr, stopErr error
	started           chan struct{}
	stopDeadline      time.Duration // the time Stop's ctx had left
	stopped           int
}

func (f *fakeService) Start(context.Context) error {
	if f.startErr == nil {
		close(f.started)
	}
	return f.startErr
}

func (f *fakeService) Stop(ctx context.Context) error {
	f.stopped++
	if d, ok := ctx.Deadline(); ok {
		f.stopDeadline = time.Until(d)
	}
	return f.stopErr
}

type fakeConfig struct {
	Grace  time.Duration
	Level  slog.Level
	Format string
}

func program(svc *fakeService, newErr error) service.Program[fakeConfig] {
	var cfg fakeConfig
	var e service.Env
	e.Duration(&cfg.Grace, "FAKE_GRACE", 30*time.Second, "drain time")
	service.LogEnv(&e, &cfg.Level, &cfg.Format)
	return service.Program[fakeConfig]{
		Name: "fake",
		Doc:  "Does nothing, gracefully.",
		Env:  &e,
		Load: func(getenv func(string) string) (fakeConfig, error) {
			err := e.Parse(getenv)
			return cfg, err
		},
		Log:   func(c fakeConfig) (slog.Level, string) { return c.Level, c.Format },
		Grace: func(c fakeConfig) time.Duration { return c.Grace },
		New: func(fakeConfig, *slog.Logger) (service.Service, error) {
			if newErr != nil {
				return nil, newErr
			}
			return svc, nil
		},
	}
}

func TestMainHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if err := service.Main(t.Context(), program(nil, errors.New("built")), []string{"-h"}, envFrom(nil), &stdout, &stderr); err != nil {
		t.Fatalf("-h: %v", err)
	}
	want := "Usage: fake [-h]\n\nDoes nothing, gracefully.\n\nEnvironment:\n  FAKE_GRACE (default 30s)\n"
	if !strings.HasPrefix(stdout.String(), want) || !strings.Contains(stdout.String(), "ARCHIVER_LOG_FORMAT") || stderr.Len() > 0 {
		t.Fatalf("-h wrote\n%s\nand to stderr %q; want it to start with\n%s", stdout.String(), stderr.String(), want)
	}
}

func TestMainErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		args   []string
		env    map[string]string
		newErr error
		svc    *fakeService
		want   string
	}{
		{"unknown flag", []string{"-x"}, nil, nil, nil, "flag provided but not defined"},
		{"argument", []string{"extra"}, nil, nil, nil, `fake: unexpected arguments ["extra"]`},
		{"bad variable", nil, map[string]string{"FAKE_GRACE": "soon"}, nil, nil, `FAKE_GRACE="soon": not a duration`},
		{"bad log level", nil, map[string]string{"ARCHIVER_LOG_LEVEL": "loud"}, nil, nil, "ARCHIVER_LOG_LEVEL"},
		{"build", nil, nil, errors.New("no store"), nil, "no store"},
		{"start", nil, nil, nil, &fakeService{startErr: errors.New("no nats"), started: make(chan struct{})}, "no nats"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := service.Main(t.Context(), program(tt.svc, tt.newErr), tt.args, envFrom(tt.env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.svc != nil && tt.svc.stopped != 0 {
				t.Error("Stop called after a failed Start")
			}
		})
	}
}

// TestMainRunsUntilCtxEnds: the service starts, and stops when ctx ends,
// with the grace period; Main returns Stop's error.
func TestMainRunsUntilCtxEnds(t *testing.T) {
	t.Parallel()
	for _, toStdout := range []bool{false, true} {
		svc := &fakeService{started: make(chan struct{}), stopErr: errors.New("drained late")}
		p := program(svc, nil)
		p.LogToStdout = toStdout
		ctx, cancel := context.WithCancel(t.Context())
		var stdout, stderr bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- service.Main(ctx, p, nil, envFrom(map[string]string{"FAKE_GRACE": "7s", "ARCHIVER_LOG_FORMAT": "text"}), &stdout, &stderr)
		}()
		<-svc.started
		select {
		case err := <-done:
			t.Fatalf("Main returned before ctx ended: %v", err)
		default:
		}
		cancel()
		if err := <-done; err == nil || err.Error() != "drained late" {
			t.Fatalf("Main = %v, want Stop's error", err)
		}
		if svc.stopped != 1 || svc.stopDeadline <= 6*time.Second || svc.stopDeadline > 7*time.Second {
			t.Errorf("Stop called %d times with %s left, want once with the 7s grace", svc.stopped, svc.stopDeadline)
		}
		logs, other := stderr.String(), stdout.String()
		if toStdout {
			logs, other = other, logs
		}
		if !strings.Contains(logs, "msg=\"shutting down\" grace=7s") || other != "" {
			t.Errorf("LogToStdout=%v: logs %q, other stream %q", toStdout, logs, other)
		}
	}
}

// TestSignalContext: the first SIGTERM ends the context.
func TestSignalContext(t *testing.T) {
	ctx, stop := service.SignalContext(t.Context())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not end the context")
	}
}
