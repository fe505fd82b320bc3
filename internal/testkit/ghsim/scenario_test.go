package ghsim_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

const scenarioJSON = `{
  "tokens": ["ghp_scenario"],
  "app": {"id": 4242, "public_key_pem": "app.pub.pem"},
  "url_ttl": "90s",
  "rate_limit": 100,
  "repos": [{
    "installation_id": 7, "owner": "octo-org", "name": "octo-repo", "private": true,
    "runs": [{
      "id": 30433642, "run_attempt": 2, "name": "Build",
      "artifacts": [
        {"name": "dist", "size": 1000, "seed": 1},
        {"name": "logs", "size": 10, "raw": true, "file_name": "log.txt"},
        {"name": "many", "size": 5, "seed": 100, "count": 3}
      ]
    }]
  }],
  "faults": [{"route": "list", "count": 1, "fault": {"kind": "secondary_limit", "status": 429, "retry_after_seconds": 7}}]
}`

func writeScenario(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKIXPublicKey(&appKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "scenario.json")
	if err := os.WriteFile(path, []byte(scenarioJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestScenario(t *testing.T) {
	t.Parallel()
	sc, err := ghsim.LoadScenario(writeScenario(t))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := sc.Options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.AppID != 4242 || opts.AppPublicKey == nil || !opts.AppPublicKey.Equal(&appKey().PublicKey) || opts.URLTTL.Seconds() != 90 || opts.RateLimit != 100 {
		t.Fatalf("options = %+v", opts)
	}
	opts.Admin = true
	s, err := ghsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Load(sc)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Repos) != 1 || !st.Repos[0].Private || len(st.Runs) != 1 || st.Runs[0].ID != 30433642 || st.Runs[0].Attempt != 2 {
		t.Fatalf("state = %+v", st)
	}
	if len(st.Artifacts) != 5 || st.Artifacts[2].Seed != 100 || st.Artifacts[4].Seed != 102 || !st.Artifacts[1].Raw {
		t.Fatalf("artifacts = %+v", st.Artifacts)
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "token "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	// The scenario's fault fires first.
	if resp := get("repos/octo-org/octo-repo/actions/artifacts", "ghp_scenario"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("scenario fault: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// The admin API, as a process-mode test drives it.
	post := func(path, body string) *http.Response {
		t.Helper()
		resp, err := hc.Post(s.URL()+"_ghsim/"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("faults", `{"route":"get","count":1,"fault":{"kind":"server_error","status":503}}`); resp.StatusCode != 204 {
		t.Fatalf("admin inject: %d", resp.StatusCode)
	}
	if resp := post("faults", `{"route":"list","count":1,"fault":{"kind":"reset","bytes":1}}`); resp.StatusCode != 400 {
		t.Fatalf("admin inject of a fault that does not apply: %d, want 400", resp.StatusCode)
	}
	if resp := get(fmt.Sprintf("repos/octo-org/octo-repo/actions/artifacts/%d", st.Artifacts[0].ID), "ghp_scenario"); resp.StatusCode != 503 {
		t.Fatalf("admin-injected fault: %d, want 503", resp.StatusCode)
	}
	if resp := post(fmt.Sprintf("artifacts/%d/expire", st.Artifacts[0].ID), ""); resp.StatusCode != 204 {
		t.Fatalf("admin expire: %d", resp.StatusCode)
	}
	if resp := get(fmt.Sprintf("repos/octo-org/octo-repo/actions/artifacts/%d/zip", st.Artifacts[0].ID), "ghp_scenario"); resp.StatusCode != 410 {
		t.Fatalf("zip after admin expire: %d, want 410", resp.StatusCode)
	}
	if resp := post("artifacts", `{"owner":"octo-org","repo":"octo-repo","run_id":30433642,"artifact":{"name":"late","size":3}}`); resp.StatusCode != 201 {
		t.Fatalf("admin add artifact: %d", resp.StatusCode)
	}
	resp := get("_ghsim/stats", "")
	var stats ghsim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	if stats.Count(ghsim.RouteList, 429) != 1 || stats.Count(ghsim.RouteGet, 503) != 1 || stats.Count(ghsim.RouteZip, 410) != 1 {
		t.Fatalf("admin stats = %+v", stats.Requests)
	}
	resp = get("_ghsim/payload?owner=octo-org&repo=octo-repo&run_id=30433642&installation_id=7", "")
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !bytes.Contains(buf.Bytes(), []byte(`"run_attempt":2`)) {
		t.Fatalf("admin payload: %d %.200s", resp.StatusCode, buf.Bytes())
	}
	resp = get("_ghsim/payload?owner=octo-org&repo=octo-repo&run_id=30433642&installation_id=7&attempt=1", "")
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !bytes.Contains(buf.Bytes(), []byte(`"run_attempt":1`)) {
		t.Fatalf("admin payload of attempt 1: %d %.200s", resp.StatusCode, buf.Bytes())
	}
	if resp := get("_ghsim/payload?owner=octo-org&repo=octo-repo&run_id=30433642&installation_id=7&attempt=3", ""); resp.StatusCode != 404 {
		t.Fatalf("admin payload of attempt 3 of 2: %d, want 404", resp.StatusCode)
	}
	if len(s.State().Artifacts) != 6 {
		t.Fatalf("state after admin add: %d artifacts, want 6", len(s.State().Artifacts))
	}
}

func TestParseScenarioErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, json string }{
		{"unknown field", `{"repos": [], "bogus": 1}`},
		{"repo without name", `{"repos": [{"owner": "o"}]}`},
		{"bad duration", `{"url_ttl": "soon"}`},
		{"fault that does not apply", `{"faults": [{"route": "list", "count": 1, "fault": {"kind": "throttle", "bytes": 10}}]}`},
	} {
		if _, err := ghsim.ParseScenario(strings.NewReader(tc.json)); err == nil {
			t.Errorf("%s: parsed without error", tc.name)
		}
	}
}
