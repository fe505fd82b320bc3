package ghclient

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v66/github"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// MinSecondaryBackoff is the wait after a secondary rate limit that gives no
// Retry-After or reset time: GitHub asks for at least one minute.
const MinSecondaryBackoff = time.Minute

// statusOf returns the HTTP status of a go-github call, 0 if none.
func statusOf(resp *github.Response, err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	if resp != nil && resp.Response != nil {
		return resp.StatusCode
	}
	return 0
}

// classify turns a failed go-github call into the archive's error types:
// rate limits become *archive.RetryAfterError (v66 types only 403s, so 429s
// are classified here from their headers), 401/403 without a limit become
// permanent, everything else stays transient.
func classify(what string, resp *github.Response, err error) error {
	var rle *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	wrapped := fmt.Errorf("ghclient: %s: %w", what, err)
	var inst *ghinstallation.HTTPError
	if errors.As(err, &inst) && inst.Response != nil && inst.Response.StatusCode == http.StatusNotFound {
		// The App is no longer installed there: no retry will help.
		return archive.Permanent(fmt.Errorf("ghclient: %s: installation %d not found: %w", what, inst.InstallationID, err))
	}
	switch {
	case errors.As(err, &rle):
		return &archive.RetryAfterError{At: rle.Rate.Reset.Time, Err: wrapped}
	case errors.As(err, &abuse):
		if abuse.RetryAfter != nil {
			return &archive.RetryAfterError{At: time.Now().Add(*abuse.RetryAfter), Err: wrapped}
		}
		return &archive.RetryAfterError{At: retryAt(abuse.Response, time.Now()), Err: wrapped}
	}
	var hr *http.Response
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		hr = er.Response
	} else if resp != nil {
		hr = resp.Response
	}
	if hr == nil {
		return wrapped
	}
	switch hr.StatusCode {
	case http.StatusTooManyRequests:
		return &archive.RetryAfterError{At: retryAt(hr, time.Now()), Err: wrapped}
	case http.StatusForbidden:
		if hr.Header.Get("Retry-After") != "" || hr.Header.Get("X-RateLimit-Remaining") == "0" {
			return &archive.RetryAfterError{At: retryAt(hr, time.Now()), Err: wrapped}
		}
		return archive.Permanent(wrapped)
	case http.StatusUnauthorized:
		return archive.Permanent(wrapped)
	}
	return wrapped
}

// retryAt honours Retry-After, then X-RateLimit-Reset (when Remaining is 0),
// then waits at least MinSecondaryBackoff.
func retryAt(r *http.Response, now time.Time) time.Time {
	if r == nil {
		return now.Add(MinSecondaryBackoff)
	}
	if s := r.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			return now.Add(time.Duration(n) * time.Second)
		}
		if t, err := http.ParseTime(s); err == nil {
			return t
		}
	}
	if r.Header.Get("X-RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(r.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return time.Unix(n, 0)
		}
	}
	return now.Add(MinSecondaryBackoff)
}
