package ghsim

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// rateWindow is GitHub's primary rate-limit window.
const rateWindow = time.Hour

// anonymousLimit is GitHub's budget for unauthenticated requests; the
// simulator answers those 401 and only reports it.
const anonymousLimit = 60

// bucket is one primary rate-limit budget: per installation (all its tokens
// share it, as on GitHub), per static token, or for the App's JWT.
type bucket struct {
	limit int
	used  int
	reset time.Time
}

// rateState is what the rate-limit headers report.
type rateState struct {
	limit, remaining, used int
	reset                  time.Time
}

func installationBucket(id int64) string { return fmt.Sprintf("installation:%d", id) }

// bucketLocked returns the bucket key, starting a new window when the last
// one ended. s.mu must be held.
func (s *Server) bucketLocked(key string, limit int) *bucket {
	now := s.now()
	b, ok := s.limits[key]
	if !ok {
		b = &bucket{limit: limit}
		s.limits[key] = b
	}
	if !now.Before(b.reset) {
		b.used = 0
		b.reset = now.Add(rateWindow).Truncate(time.Second)
	}
	return b
}

// spend takes one request from the caller's budget. It reports false, with
// the state to report, when the budget is exhausted.
func (s *Server) spend(p *principal) (rateState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked(p.bucket, s.opts.RateLimit)
	if b.used >= b.limit {
		return rateState{limit: b.limit, remaining: 0, used: b.used, reset: b.reset}, false
	}
	b.used++
	return rateState{limit: b.limit, remaining: b.limit - b.used, used: b.used, reset: b.reset}, true
}

// spendAnonymous reports (and counts, without enforcing) the
// unauthenticated budget.
func (s *Server) spendAnonymous() rateState {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked("anonymous", anonymousLimit)
	b.used = min(b.used+1, b.limit)
	return rateState{limit: b.limit, remaining: b.limit - b.used, used: b.used, reset: b.reset}
}

// setRateHeaders writes the X-RateLimit-* headers.
func setRateHeaders(h http.Header, st rateState) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(st.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(st.remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(st.used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(st.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// rateLimitMessage is GitHub's message for an exhausted primary budget.
func rateLimitMessage(p *principal) string {
	switch p.kind {
	case principalInstallation:
		return fmt.Sprintf("API rate limit exceeded for installation ID %d.", p.installationID)
	case principalApp:
		return "API rate limit exceeded for app."
	default:
		return fmt.Sprintf("API rate limit exceeded for user ID %d.", p.userID)
	}
}

// SetRateLimit sets the remaining primary budget of the bucket that token
// spends (a static token's own, or its installation's) and when it resets
// (zero: keep the current reset time). It reports false for an unknown
// token.
func (s *Server) SetRateLimit(token string, remaining int, reset time.Time) bool {
	s.mu.Lock()
	var key string
	if _, ok := s.static[token]; ok {
		key = "token:" + token
	} else if it, ok := s.tokens[token]; ok {
		key = installationBucket(it.installationID)
	}
	s.mu.Unlock()
	if key == "" {
		return false
	}
	s.setBucket(key, remaining, reset)
	return true
}

// SetInstallationRateLimit sets the remaining primary budget shared by the
// tokens of an installation and when it resets (zero: keep the current
// reset time).
func (s *Server) SetInstallationRateLimit(installationID int64, remaining int, reset time.Time) {
	s.setBucket(installationBucket(installationID), remaining, reset)
}

func (s *Server) setBucket(key string, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !reset.IsZero() {
		// Install the reset time first so bucketLocked keeps this window.
		if b, ok := s.limits[key]; ok {
			b.reset = reset
		} else {
			s.limits[key] = &bucket{limit: s.opts.RateLimit, reset: reset}
		}
	}
	b := s.bucketLocked(key, s.opts.RateLimit)
	b.used = b.limit - min(max(remaining, 0), b.limit)
}
