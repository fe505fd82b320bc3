package ghsim

import (
	"maps"
	"slices"
	"time"
)

// Stats is a snapshot of what the simulator has seen, for test assertions.
// Server.Stats returns a deep copy.
type Stats struct {
	// Requests counts requests by route kind and HTTP status. A blob
	// request cut by a ResetAfter fault counts under its status (200 or 206).
	Requests map[Route]map[int]int `json:"requests"`
	// BlobBytes is the number of body bytes the blob host wrote, in total
	// and per artifact id.
	BlobBytes           int64           `json:"blob_bytes"`
	BlobBytesByArtifact map[int64]int64 `json:"blob_bytes_by_artifact"`
	// BlobRequestsByArtifact counts the blob requests (GET or HEAD) per
	// artifact that passed the URL signature and expiry checks and found
	// the artifact, whatever their answer (faulted ones included).
	BlobRequestsByArtifact map[int64]int `json:"blob_requests_by_artifact"`
	// Ranges lists the blob requests that carried a Range header (valid
	// signed URL, known artifact), in arrival order.
	Ranges []RangeRequest `json:"ranges"`
	// AuthRejected counts blob requests rejected (400) because they carried
	// an Authorization header: a leaked token.
	AuthRejected int `json:"auth_rejected"`
	// Deletes lists the authenticated DELETE requests, in arrival order,
	// whatever their answer (rate-limited and faulted ones included).
	Deletes []DeleteRequest `json:"deletes"`
	// TokensIssued counts installation tokens issued.
	TokensIssued int `json:"tokens_issued"`
}

// RangeRequest is one blob request with a Range header.
type RangeRequest struct {
	ArtifactID int64  `json:"artifact_id"`
	Header     string `json:"header"`
	// Start is the first byte asked for (for a suffix range "bytes=-N",
	// size-N), or -1 when the header did not parse.
	Start int64 `json:"start"`
}

// DeleteRequest is one DELETE of an artifact.
type DeleteRequest struct {
	ArtifactID     int64 `json:"artifact_id"`
	Status         int   `json:"status"`          // 204, 404, 403 (rate limit) or a fault's status
	InstallationID int64 `json:"installation_id"` // 0 for a static token
	// At is the time on the server's clock (Options.Now); Wall is the real
	// (monotonic) time, for checking the spacing a client really kept.
	At   time.Time `json:"at"`
	Wall time.Time `json:"wall"`
}

// Count returns the number of requests of route answered with status, or
// with any status when status is 0.
func (st Stats) Count(route Route, status int) int {
	if status != 0 {
		return st.Requests[route][status]
	}
	n := 0
	for _, c := range st.Requests[route] {
		n += c
	}
	return n
}

// clone returns a deep copy of st.
func (st Stats) clone() Stats {
	c := st
	c.Requests = make(map[Route]map[int]int, len(st.Requests))
	for r, m := range st.Requests {
		c.Requests[r] = maps.Clone(m)
	}
	c.BlobBytesByArtifact = maps.Clone(st.BlobBytesByArtifact)
	if c.BlobBytesByArtifact == nil {
		c.BlobBytesByArtifact = map[int64]int64{}
	}
	c.BlobRequestsByArtifact = maps.Clone(st.BlobRequestsByArtifact)
	if c.BlobRequestsByArtifact == nil {
		c.BlobRequestsByArtifact = map[int64]int{}
	}
	c.Ranges = slices.Clone(st.Ranges)
	c.Deletes = slices.Clone(st.Deletes)
	return c
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
}

func (s *Server) countRequest(route Route, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats.Requests == nil {
		s.stats.Requests = map[Route]map[int]int{}
	}
	m := s.stats.Requests[route]
	if m == nil {
		m = map[int]int{}
		s.stats.Requests[route] = m
	}
	m[status]++
}

func (s *Server) countBlobBytes(id, n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.BlobBytes += n
	if s.stats.BlobBytesByArtifact == nil {
		s.stats.BlobBytesByArtifact = map[int64]int64{}
	}
	s.stats.BlobBytesByArtifact[id] += n
}
