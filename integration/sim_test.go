//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// SimClient steers the GitHub simulator through its admin API
// (/_ghsim/, see ghsim.AdminHandler), the same way in both modes.
type SimClient struct {
	t    *testing.T
	base string // http://host:port/_ghsim
	hc   *http.Client

	mu     sync.Mutex
	hashes map[[2]int64]string // (seed, size) → sha256 hex
}

func newSimClient(t *testing.T, apiURL string) *SimClient {
	return &SimClient{
		t:      t,
		base:   apiURL + "_ghsim",
		hc:     &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second},
		hashes: map[[2]int64]string{},
	}
}

func (c *SimClient) do(method, path string, body any, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("ghsim %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("ghsim %s %s: read: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		c.t.Fatalf("ghsim %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return
	}
	if err := json.Unmarshal(b, out); err != nil {
		c.t.Fatalf("ghsim %s %s: decode: %v", method, path, err)
	}
}

// State returns the repositories, runs and artifacts (deleted ones
// included).
func (c *SimClient) State() ghsim.State {
	c.t.Helper()
	var st ghsim.State
	c.do(http.MethodGet, "/state", nil, &st)
	return st
}

// Stats returns the request counters.
func (c *SimClient) Stats() ghsim.Stats {
	c.t.Helper()
	var st ghsim.Stats
	c.do(http.MethodGet, "/stats", nil, &st)
	return st
}

// Inject queues count faults f on route (count < 0: until ClearFaults).
func (c *SimClient) Inject(route ghsim.Route, count int, f ghsim.Fault) {
	c.t.Helper()
	c.do(http.MethodPost, "/faults", ghsim.ScenarioFault{Route: route, Count: count, Fault: f}, nil)
}

// ClearFaults drops every fault not yet taken.
func (c *SimClient) ClearFaults() {
	c.t.Helper()
	c.do(http.MethodDelete, "/faults", nil, nil)
}

// SetRateLimit sets an installation's remaining primary budget and when it
// resets.
func (c *SimClient) SetRateLimit(installationID int64, remaining int, reset time.Time) {
	c.t.Helper()
	c.do(http.MethodPost, "/ratelimit", map[string]any{"installation_id": installationID, "remaining": remaining, "reset": reset}, nil)
}

// Payload renders the signed-ready workflow_run "completed" body of a run
// attempt (run.Attempt: the latest, or an earlier one, see attempt).
func (c *SimClient) Payload(run ghsim.Run, installationID int64) []byte {
	c.t.Helper()
	q := url.Values{
		"owner":           {run.Owner},
		"repo":            {run.Repo},
		"run_id":          {strconv.FormatInt(run.ID, 10)},
		"installation_id": {strconv.FormatInt(installationID, 10)},
		"attempt":         {strconv.Itoa(run.Attempt)},
	}
	var b []byte
	c.do(http.MethodGet, "/payload?"+q.Encode(), nil, &b)
	return b
}

// SHA256 is the hex SHA-256 of an artifact's real body, computed here
// from its seed and size (the simulator serves exactly that).
func (c *SimClient) SHA256(a ghsim.Artifact) string {
	k := [2]int64{a.Seed, a.Size}
	c.mu.Lock()
	sum, ok := c.hashes[k]
	c.mu.Unlock()
	if ok {
		return sum
	}
	sum = ghsim.NewContent(a.Seed, a.Size).SHA256()
	c.mu.Lock()
	c.hashes[k] = sum
	c.mu.Unlock()
	return sum
}

// AddAttestation serves bundle (a Sigstore bundle's JSON) as an
// attestation of owner/repo for the subject sha256hex.
func (c *SimClient) AddAttestation(owner, repo, sha256hex string, bundle []byte, predicateType string) {
	c.t.Helper()
	c.do(http.MethodPost, "/attestations", map[string]any{
		"owner": owner, "repo": repo, "digest": "sha256:" + sha256hex,
		"bundle": json.RawMessage(bundle), "predicate_type": predicateType,
	}, nil)
}
