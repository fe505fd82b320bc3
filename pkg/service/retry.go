package service

import (
	"context"
	"log/slog"
	"time"
)

// Bounds of [Retry].
const (
	// RetryMin is the first wait between attempts; it doubles up to
	// RetryMax.
	RetryMin = time.Second
	RetryMax = 5 * time.Second
	// AttemptTimeout bounds one attempt.
	AttemptTimeout = 10 * time.Second
)

// Retry calls attempt until it returns nil or ctx ends, and returns the
// number of calls. Each call gets at most AttemptTimeout; between calls it
// waits RetryMin, doubling up to RetryMax, and logs the failure at warn as
// "<what> failed; retrying". When ctx ends it returns the last error (or
// ctx's, before any attempt).
func Retry(ctx context.Context, log *slog.Logger, what string, attempt func(ctx context.Context) error) (int, error) {
	wait := RetryMin
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return n - 1, err
		}
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		err := attempt(actx)
		cancel()
		if err == nil {
			return n, nil
		}
		if ctx.Err() != nil {
			return n, err
		}
		log.Warn(what+" failed; retrying", "err", err, "attempt", n, "retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, err
		case <-t.C:
		}
		wait = min(2*wait, RetryMax)
	}
}
