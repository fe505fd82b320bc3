package service_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

func TestRetry(t *testing.T) {
	t.Parallel()
	var calls []time.Time
	start := time.Now()
	n, err := service.Retry(t.Context(), slog.New(slog.DiscardHandler), "testing", func(ctx context.Context) error {
		calls = append(calls, time.Now())
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > service.AttemptTimeout {
			t.Errorf("attempt without a deadline within AttemptTimeout")
		}
		if len(calls) < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("Retry = %d, %v; want 2, nil", n, err)
	}
	if wait := calls[1].Sub(calls[0]); wait < service.RetryMin {
		t.Errorf("retried after %s, want at least %s", wait, service.RetryMin)
	}
	if time.Since(start) > service.RetryMin+5*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}

// TestRetryEndsWithCtx: cancelling ctx during the wait ends Retry at once
// with the last error.
func TestRetryEndsWithCtx(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	failed := errors.New("nats: no responders")
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		n, err = service.Retry(ctx, slog.New(slog.DiscardHandler), "testing", func(context.Context) error {
			cancel()
			return failed
		})
	}()
	select {
	case <-done:
	case <-time.After(service.RetryMin / 2):
		t.Fatal("Retry did not return when ctx ended")
	}
	if n != 1 || !errors.Is(err, failed) {
		t.Fatalf("Retry = %d, %v; want 1, the attempt's error", n, err)
	}
	if n, err := service.Retry(ctx, slog.New(slog.DiscardHandler), "testing", func(context.Context) error { return nil }); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Retry after ctx ended = %d, %v; want 0, context.Canceled", n, err)
	}
}
