package ghsim

import (
	"fmt"
	"time"
)

// Route is the kind of request the simulator serves, used to inject faults
// and to count requests in Stats.
type Route string

// The route kinds.
const (
	RouteList         Route = "list"         // GET .../actions/artifacts and .../actions/runs/{id}/artifacts
	RouteGet          Route = "get"          // GET .../actions/artifacts/{id}
	RouteZip          Route = "zip"          // GET .../actions/artifacts/{id}/zip (the 302)
	RouteDelete       Route = "delete"       // DELETE .../actions/artifacts/{id}
	RouteBlob         Route = "blob"         // GET or HEAD on the blob host
	RouteToken        Route = "token"        // POST /app/installations/{id}/access_tokens
	RouteRepo         Route = "repo"         // GET /repos/{o}/{r}
	RouteRun          Route = "run"          // GET /repos/{o}/{r}/actions/runs/{id}
	RouteInstallation Route = "installation" // GET /app/installations/{id}
	RouteOther        Route = "other"        // anything else (answered 404)
)

// FaultKind names what a Fault does.
type FaultKind string

// The fault kinds, one per constructor.
const (
	FaultServerError    FaultKind = "server_error"
	FaultSecondaryLimit FaultKind = "secondary_limit"
	FaultReset          FaultKind = "reset"
	FaultThrottle       FaultKind = "throttle"
	FaultExpiredURL     FaultKind = "expired_url"
	FaultStall          FaultKind = "stall"
	FaultForbidden      FaultKind = "forbidden"
)

// Fault is one misbehaviour to inject with Server.Inject. Build it with
// ServerError, SecondaryLimit, Forbidden, ResetAfter, Throttle, Stall or
// ExpiredURL; the fields are exported for the JSON of the admin endpoint and
// the scenario file.
type Fault struct {
	Kind              FaultKind `json:"kind"`
	Status            int       `json:"status,omitempty"`              // ServerError, SecondaryLimit
	RetryAfterSeconds int64     `json:"retry_after_seconds,omitempty"` // SecondaryLimit
	// Bytes is, for ResetAfter, the body bytes before the reset; for
	// Throttle, bytes per second; for Stall, the body bytes before the
	// stall.
	Bytes int64 `json:"bytes,omitempty"`
	// Duration is how long a Stall sends nothing.
	Duration Duration `json:"duration,omitzero"`
	// ArtifactID, when set, limits the fault to requests about that
	// artifact (see ForArtifact); other requests pass it by.
	ArtifactID int64 `json:"artifact_id,omitempty"`
}

// ForArtifact returns f limited to requests about artifact id: downloads
// from the blob host, and the API routes that name one artifact (get, zip,
// delete). A test can so break one download among many concurrent ones.
// Requests about no single artifact (a list) pass such a fault by.
func (f Fault) ForArtifact(id int64) Fault {
	f.ArtifactID = id
	return f
}

// ServerError answers the request with status (500, 502 or 503) and
// GitHub's (or, on the blob host, Azure's) error body.
func ServerError(status int) Fault { return Fault{Kind: FaultServerError, Status: status} }

// SecondaryLimit answers 403 or 429 with "Retry-After: <seconds>" and
// GitHub's secondary rate limit message, which go-github v66 types as
// *github.AbuseRateLimitError when status is 403. retryAfter is rounded up
// to whole seconds. Not on the blob host.
func SecondaryLimit(status int, retryAfter time.Duration) Fault {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	return Fault{Kind: FaultSecondaryLimit, Status: status, RetryAfterSeconds: secs}
}

// Forbidden answers 403 "Resource not accessible by integration", what
// GitHub says when the App lacks a permission (actions: read for a
// download, actions: write for a delete). It carries no rate-limit sign
// (X-RateLimit-Remaining stays above 0, no Retry-After), so a client must
// not wait and retry it. Not on the blob host.
func Forbidden() Fault { return Fault{Kind: FaultForbidden} }

// ResetAfter (blob host only) sends the response headers and the first n
// body bytes, then closes the TCP connection abruptly (SO_LINGER 0, so the
// client sees a reset), before Content-Length bytes were sent.
func ResetAfter(n int64) Fault { return Fault{Kind: FaultReset, Bytes: n} }

// Throttle (blob host only) streams the body at bytesPerSecond.
func Throttle(bytesPerSecond int64) Fault { return Fault{Kind: FaultThrottle, Bytes: bytesPerSecond} }

// Stall (blob host only) sends the response headers and the first
// afterBytes body bytes (at most Content-Length-1, so the body is always
// cut short), then sends nothing for d, like a blob host whose stream
// hangs; then it sends the rest. A client that gives up first simply goes
// away: the stall ends with it (or with Close).
func Stall(afterBytes int64, d time.Duration) Fault {
	return Fault{Kind: FaultStall, Bytes: afterBytes, Duration: Duration(d)}
}

// ExpiredURL (zip and attestations routes) makes the 302 (or the
// attestation list's bundle_url) point to a blob URL that has already
// expired, so the blob host answers 403 AuthenticationFailed.
func ExpiredURL() Fault { return Fault{Kind: FaultExpiredURL} }

// check reports whether f can be injected on route.
func (f Fault) check(route Route) error {
	switch route {
	case RouteList, RouteGet, RouteZip, RouteDelete, RouteBlob, RouteToken, RouteRepo, RouteRun, RouteInstallation,
		RouteInstallationRepos, RouteRepoInstallation, RouteHookDeliveries, RouteRedeliver, RouteAttestations, RouteAttestationBundle:
	default:
		return fmt.Errorf("ghsim: inject fault: unknown route %q", route)
	}
	switch f.Kind {
	case FaultServerError:
		if f.Status < 500 || f.Status > 599 {
			return fmt.Errorf("ghsim: inject fault: server error status %d is not 5xx", f.Status)
		}
	case FaultSecondaryLimit:
		if f.Status != 403 && f.Status != 429 {
			return fmt.Errorf("ghsim: inject fault: secondary limit status %d is not 403 or 429", f.Status)
		}
		if route == RouteBlob || route == RouteAttestationBundle {
			return fmt.Errorf("ghsim: inject fault: secondary limit on the blob host")
		}
	case FaultForbidden:
		if route == RouteBlob || route == RouteAttestationBundle {
			return fmt.Errorf("ghsim: inject fault: forbidden on the blob host")
		}
	case FaultStall:
		if route != RouteBlob {
			return fmt.Errorf("ghsim: inject fault: %s on route %s, want blob", f.Kind, route)
		}
		if f.Bytes < 0 || f.Duration <= 0 {
			return fmt.Errorf("ghsim: inject fault: stall after %d bytes for %s", f.Bytes, time.Duration(f.Duration))
		}
	case FaultReset, FaultThrottle:
		if route != RouteBlob {
			return fmt.Errorf("ghsim: inject fault: %s on route %s, want blob", f.Kind, route)
		}
		if f.Bytes < 0 || (f.Kind == FaultThrottle && f.Bytes == 0) {
			return fmt.Errorf("ghsim: inject fault: %s with %d bytes", f.Kind, f.Bytes)
		}
	case FaultExpiredURL:
		if route != RouteZip && route != RouteAttestations {
			return fmt.Errorf("ghsim: inject fault: expired URL on route %s, want zip or attestations", route)
		}
	default:
		return fmt.Errorf("ghsim: inject fault: unknown kind %q", f.Kind)
	}
	return nil
}

// injected is a fault with the number of requests it still applies to
// (negative: until ClearFaults).
type injected struct {
	fault Fault
	left  int
}

// Inject makes the next count requests of route kind misbehave as f (count
// < 0: every request until ClearFaults). Faults injected on one route apply
// in the order injected, one per request. A fault is taken only by a
// request that got past authentication and the primary rate limit (on the
// blob host: past the URL signature and expiry checks and the artifact
// lookup), so it always hits the request the test means.
//
// Inject panics if f does not apply to route (a programming error), like
// ResetAfter on RouteList.
//
//	s.Inject(ghsim.RouteBlob, 1, ghsim.ResetAfter(1<<20))
func (s *Server) Inject(route Route, count int, f Fault) {
	if err := f.check(route); err != nil {
		panic(err.Error())
	}
	if count == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], &injected{fault: f, left: count})
}

// ClearFaults removes every injected fault that has not fired yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault pops the first fault queued for route that applies to
// artifactID (0: a request not about one artifact, which faults limited
// with ForArtifact pass by), if any.
func (s *Server) takeFault(route Route, artifactID int64) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[route]
	for i, f := range q {
		if f.fault.ArtifactID != 0 && f.fault.ArtifactID != artifactID {
			continue
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				s.faults[route] = append(q[:i:i], q[i+1:]...)
			}
		}
		return f.fault, true
	}
	return Fault{}, false
}
