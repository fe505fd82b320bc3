package archive

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinels callers branch on.
var (
	// ErrGone: the artifact no longer exists at GitHub (expired, deleted,
	// 404 on get or 404/410 on download). It is recorded as "expired".
	ErrGone = errors.New("artifact gone at github")
	// ErrDigestMismatch: the bytes streamed do not hash to GitHub's digest.
	// The upload was aborted; the artifact is retried.
	ErrDigestMismatch = errors.New("sha256 does not match github digest")
	// ErrSizeMismatch: the stream ended before or after Content-Length.
	ErrSizeMismatch = errors.New("byte count does not match content-length")
	// ErrIncomplete: some artifacts of the run could not be archived on this
	// attempt. The manifest was not written (or, on the final attempt, was
	// written with "failed" entries).
	ErrIncomplete = errors.New("run not completely archived")
	// ErrBadRedirect: GitHub redirected the download somewhere the archiver
	// refuses to go (not https, credentials in the URL, host not allowed, a
	// non-public address after DNS resolution), or an API response
	// redirected to another host (which would receive the token).
	ErrBadRedirect = errors.New("refused download redirect")
	// ErrStalled: a download delivered no byte for the stall timeout. It is
	// a transient transfer error, retried with backoff, never a shutdown:
	// downloaders must return it instead of a context error.
	ErrStalled = errors.New("download stalled")
)

// PermanentError marks a failure that no retry can fix (the repository is
// gone, the event is malformed, the credentials lack access). The worker
// dead-letters such jobs at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a [PermanentError].
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError says GitHub asked us to wait (a primary or secondary rate
// limit) until At.
type RetryAfterError struct {
	At  time.Time
	Err error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("rate limited until %s: %v", e.At.UTC().Format(time.RFC3339), e.Err)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Outcome classifies an error for retry decisions. It is the one place that
// decides "retryable or permanent".
type Outcome int

const (
	// OutcomeOK: no error.
	OutcomeOK Outcome = iota
	// OutcomeRetry: a transient failure; retry with backoff.
	OutcomeRetry
	// OutcomeRetryAfter: rate limited; retry after the returned time.
	OutcomeRetryAfter
	// OutcomePermanent: no retry can succeed; dead-letter.
	OutcomePermanent
	// OutcomeCanceled: the work was interrupted (shutdown); hand it back.
	OutcomeCanceled
)

// Classify maps err to an [Outcome] and, for OutcomeRetryAfter, the time to
// wait for.
func Classify(err error) (Outcome, time.Time) {
	var ra *RetryAfterError
	var pe *PermanentError
	switch {
	case err == nil:
		return OutcomeOK, time.Time{}
	case errors.As(err, &pe):
		return OutcomePermanent, time.Time{}
	case errors.As(err, &ra):
		return OutcomeRetryAfter, ra.At
	case errors.Is(err, ErrStalled):
		return OutcomeRetry, time.Time{}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeCanceled, time.Time{}
	default:
		return OutcomeRetry, time.Time{}
	}
}
