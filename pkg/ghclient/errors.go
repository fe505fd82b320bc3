package ghclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v66/github"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// MinSecondaryBackoff is the wait after a secondary rate limit that gives no
// Retry-After or reset time: GitHub asks for at least one minute.
const MinSecondaryBackoff = time.Minute

// MinRetryWait is the shortest wait any [archive.RetryAfterError] of this
// package asks for. A retry time at or before now (clock skew, Retry-After:
// 0, a reset already past) would otherwise be retried at once, and again,
// in a loop.
const MinRetryWait = time.Second

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
	err = redactURL(err)
	wrapped := fmt.Errorf("ghclient: %s: %w", what, err)
	var inst *ghinstallation.HTTPError
	if errors.As(err, &inst) && inst.Response != nil && inst.Response.StatusCode == http.StatusNotFound {
		// The App is no longer installed there: no retry will help.
		return archive.Permanent(fmt.Errorf("ghclient: %s: installation %d not found: %w", what, inst.InstallationID, err))
	}
	now := time.Now()
	switch {
	case errors.As(err, &rle):
		at := rle.Rate.Reset.Time
		if at.IsZero() {
			at = retryAt(rle.Response, now)
		}
		return retryAfter(at, now, wrapped)
	case errors.As(err, &abuse):
		if abuse.RetryAfter != nil {
			return retryAfter(now.Add(*abuse.RetryAfter), now, wrapped)
		}
		return retryAfter(retryAt(abuse.Response, now), now, wrapped)
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
		return retryAfter(retryAt(hr, now), now, wrapped)
	case http.StatusForbidden:
		if hr.Header.Get("Retry-After") != "" || hr.Header.Get("X-RateLimit-Remaining") == "0" {
			return retryAfter(retryAt(hr, now), now, wrapped)
		}
		return archive.Permanent(wrapped)
	case http.StatusUnauthorized:
		return archive.Permanent(wrapped)
	}
	return wrapped
}

// retryAfter is the one constructor of this package's
// *archive.RetryAfterError: At is never before now + MinRetryWait.
func retryAfter(at, now time.Time, err error) *archive.RetryAfterError {
	return &archive.RetryAfterError{At: notBefore(at, now), Err: err}
}

// notBefore returns at, or now + MinRetryWait when at is earlier.
func notBefore(at, now time.Time) time.Time {
	if earliest := now.Add(MinRetryWait); at.Before(earliest) {
		return earliest
	}
	return at
}

// redactURL drops the query from the URL of a top-level *url.Error (as
// go-github returns for transport failures, a refused redirect among them):
// a redirect target's query may be a signature.
func redactURL(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return &url.Error{Op: ue.Op, URL: "(unparsable url)", Err: ue.Err}
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
}

// retryAt honours Retry-After, then X-RateLimit-Reset (when Remaining is 0),
// then waits at least MinSecondaryBackoff. The result is never before now +
// MinRetryWait.
func retryAt(r *http.Response, now time.Time) time.Time {
	return notBefore(retryAtHeaders(r, now), now)
}

func retryAtHeaders(r *http.Response, now time.Time) time.Time {
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
