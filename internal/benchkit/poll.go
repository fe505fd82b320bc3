package benchkit

import (
	"context"
	"time"
)

// Poll calls f every gap until it reports done, returns an error, or
// timeout passes (ctx's error, context.DeadlineExceeded on timeout).
func Poll(ctx context.Context, timeout, gap time.Duration, f func() (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if !Sleep(ctx, gap) {
			return ctx.Err()
		}
	}
}

// Sleep waits for d, or less if ctx ends first: it reports whether the
// whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
