package ghclient

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAt(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	hdr := func(kv ...string) *http.Response {
		r := &http.Response{Header: http.Header{}}
		for i := 0; i < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return r
	}
	tests := []struct {
		name string
		resp *http.Response
		want time.Time
	}{
		{"retry-after seconds", hdr("Retry-After", "30"), now.Add(30 * time.Second)},
		{"retry-after wins over reset", hdr("Retry-After", "5", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000100"), now.Add(5 * time.Second)},
		{"reset when exhausted", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000100"), time.Unix(1_700_000_100, 0)},
		{"reset ignored when budget left", hdr("X-RateLimit-Remaining", "10", "X-RateLimit-Reset", "1700000100"), now.Add(MinSecondaryBackoff)},
		{"nothing: one minute", hdr(), now.Add(MinSecondaryBackoff)},
		{"garbage retry-after", hdr("Retry-After", "soon"), now.Add(MinSecondaryBackoff)},
		{"no response", nil, now.Add(MinSecondaryBackoff)},
		// A retry time at or before now would be retried at once, forever.
		{"retry-after zero", hdr("Retry-After", "0"), now.Add(MinRetryWait)},
		{"retry-after date in the past", hdr("Retry-After", now.Add(-time.Hour).UTC().Format(http.TimeFormat)), now.Add(MinRetryWait)},
		{"retry-after date now", hdr("Retry-After", now.UTC().Format(http.TimeFormat)), now.Add(MinRetryWait)},
		{"reset in the past", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1699999000"), now.Add(MinRetryWait)},
		{"reset now", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000000"), now.Add(MinRetryWait)},
	}
	for _, tt := range tests {
		if got := retryAt(tt.resp, now); !got.Equal(tt.want) {
			t.Errorf("%s: retryAt = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes 0-0/1", 0, 1, true},
		{"bytes */1000", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes 5-9/x", 0, 0, false},
		{"bytes 10-20/10", 0, 0, false},
	}
	for _, tt := range tests {
		s, tot, ok := parseContentRange(tt.in)
		if ok != tt.ok || (ok && (s != tt.start || tot != tt.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tt.in, s, tot, ok)
		}
	}
}
