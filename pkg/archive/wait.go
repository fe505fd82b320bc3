package archive

import (
	"context"
	"time"
)

// waitInline sleeps through a short rate limit and reports whether the
// caller should retry. It waits at least one second, even for a retry time
// in the past (clock skew, Retry-After: 0).
func (a *Archiver) waitInline(ctx context.Context, err error) bool {
	o, at := Classify(err)
	if o != OutcomeRetryAfter {
		return false
	}
	d := max(at.Sub(a.cfg.Now()), time.Second)
	if d > a.cfg.MaxInlineWait {
		return false
	}
	a.log.Warn("github rate limit, waiting", "wait", d, "err", err)
	return Sleep(ctx, d) == nil
}

// Sleep waits for d or until ctx ends, and returns ctx's error if it ended
// first. A d of zero or less returns at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
