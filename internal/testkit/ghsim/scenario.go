package ghsim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// Scenario is the JSON description of a simulator's contents and settings,
// for a simulator run as a separate process (cmd/ghsim). Example:
//
//	{
//	  "tokens": ["ghp_static"],
//	  "app": {"id": 42, "public_key_pem": "app.pub.pem"},
//	  "url_ttl": "60s",
//	  "repos": [{
//	    "installation_id": 7, "owner": "octo-org", "name": "octo-repo",
//	    "runs": [{
//	      "id": 30433642, "run_attempt": 1,
//	      "artifacts": [
//	        {"name": "dist", "size": 104857600, "seed": 1},
//	        {"name": "logs", "size": 4096, "raw": true, "file_name": "log.txt"},
//	        {"name": "old", "size": 1000, "no_digest": true, "count": 250}
//	      ]
//	    }]
//	  }]
//	}
type Scenario struct {
	Tokens      []string     `json:"tokens"`
	App         *ScenarioApp `json:"app,omitempty"`
	URLTTL      Duration     `json:"url_ttl,omitzero"`
	TokenTTL    Duration     `json:"token_ttl,omitzero"`
	RateLimit   int          `json:"rate_limit,omitzero"`
	HideExpired bool         `json:"hide_expired,omitzero"`
	// InlineAttestationBundles: Options.InlineAttestationBundles.
	InlineAttestationBundles bool            `json:"inline_attestation_bundles,omitzero"`
	Repos                    []ScenarioRepo  `json:"repos"`
	Faults                   []ScenarioFault `json:"faults,omitempty"`
	dir                      string          // directory the file was read from, for key paths
}

// ScenarioApp is the GitHub App that may exchange JWTs for installation
// tokens. PublicKeyPEM is a path, relative to the scenario file, to a PEM
// RSA public key (or a private key, whose public half is used).
type ScenarioApp struct {
	ID           int64  `json:"id"`
	PublicKeyPEM string `json:"public_key_pem"`
}

// ScenarioRepo is a repository with its runs.
type ScenarioRepo struct {
	InstallationID int64         `json:"installation_id"`
	Owner          string        `json:"owner"`
	Name           string        `json:"name"`
	Private        bool          `json:"private,omitzero"`
	Runs           []ScenarioRun `json:"runs"`
}

// ScenarioRun is a run with its artifacts.
type ScenarioRun struct {
	RunSpec
	Artifacts []ScenarioArtifact `json:"artifacts"`
}

// ScenarioArtifact is an artifact spec, repeated Count times (default 1)
// with consecutive seeds when Seed is set.
type ScenarioArtifact struct {
	ArtifactSpec
	Count int `json:"count,omitzero"`
}

// ScenarioFault is a fault injected at start.
type ScenarioFault struct {
	Route Route `json:"route"`
	Count int   `json:"count"`
	Fault Fault `json:"fault"`
}

// Duration is a time.Duration that reads and writes JSON as "60s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("ghsim: parse duration %s: %w", b, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("ghsim: parse duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// LoadScenario reads a scenario file; key paths in it are relative to the
// file's directory.
func LoadScenario(path string) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("ghsim: read scenario: %w", err)
	}
	sc, err := ParseScenario(bytes.NewReader(b))
	if err != nil {
		return Scenario{}, fmt.Errorf("ghsim: load scenario %s: %w", path, err)
	}
	sc.dir = filepath.Dir(path)
	return sc, nil
}

// ParseScenario decodes a scenario, rejecting unknown fields.
func ParseScenario(r io.Reader) (Scenario, error) {
	var sc Scenario
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return Scenario{}, fmt.Errorf("ghsim: decode scenario: %w", err)
	}
	for i, rp := range sc.Repos {
		if rp.Owner == "" || rp.Name == "" {
			return Scenario{}, fmt.Errorf("ghsim: decode scenario: repos[%d]: owner and name are required", i)
		}
	}
	for i, f := range sc.Faults {
		if err := f.Fault.check(f.Route); err != nil {
			return Scenario{}, fmt.Errorf("ghsim: decode scenario: faults[%d]: %w", i, err)
		}
	}
	return sc, nil
}

// Options returns the simulator options the scenario sets, reading the App
// key file. Listen addresses, the clock and the logger are left to the
// caller.
func (sc Scenario) Options() (Options, error) {
	o := Options{
		Tokens:      sc.Tokens,
		URLTTL:      time.Duration(sc.URLTTL),
		TokenTTL:    time.Duration(sc.TokenTTL),
		RateLimit:   sc.RateLimit,
		HideExpired: sc.HideExpired,

		InlineAttestationBundles: sc.InlineAttestationBundles,
	}
	if sc.App == nil {
		return o, nil
	}
	path := sc.App.PublicKeyPEM
	if path == "" {
		return Options{}, errors.New("ghsim: scenario options: app.public_key_pem is required")
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(sc.dir, path)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return Options{}, fmt.Errorf("ghsim: read app key: %w", err)
	}
	o.AppID = sc.App.ID
	if o.AppPublicKey, err = jwt.ParseRSAPublicKeyFromPEM(pem); err != nil {
		priv, perr := jwt.ParseRSAPrivateKeyFromPEM(pem)
		if perr != nil {
			return Options{}, fmt.Errorf("ghsim: parse app key %s: %w", path, err)
		}
		o.AppPublicKey = &priv.PublicKey
	}
	return o, nil
}

// Load adds the scenario's repositories, runs and artifacts, injects its
// faults and returns the resulting state (with the assigned ids).
func (s *Server) Load(sc Scenario) (State, error) {
	for _, rp := range sc.Repos {
		s.AddRepo(rp.InstallationID, rp.Owner, rp.Name)
		s.SetPrivate(rp.Owner, rp.Name, rp.Private)
		for _, rs := range rp.Runs {
			if rs.ID != 0 {
				if _, taken := s.Run(rs.ID); taken {
					return State{}, fmt.Errorf("ghsim: load scenario: run id %d is taken", rs.ID)
				}
			}
			run := s.AddRun(rp.Owner, rp.Name, rs.RunSpec)
			for _, as := range rs.Artifacts {
				for i := range max(as.Count, 1) {
					spec := as.ArtifactSpec
					if spec.Seed != 0 {
						spec.Seed += int64(i)
					}
					s.AddArtifact(rp.Owner, rp.Name, run.ID, spec)
				}
			}
		}
	}
	for _, f := range sc.Faults {
		s.Inject(f.Route, f.Count, f.Fault)
	}
	return s.State(), nil
}

// State is everything the simulator holds, with assigned ids.
type State struct {
	APIURL    string     `json:"api_url"`
	BlobURL   string     `json:"blob_url"`
	Repos     []Repo     `json:"repos"`
	Runs      []Run      `json:"runs"`
	Artifacts []Artifact `json:"artifacts"` // deleted ones included
}

// State returns a snapshot of the repositories, runs and artifacts, each by
// increasing id.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{APIURL: s.apiURL, BlobURL: s.blobURL, Repos: []Repo{}, Runs: []Run{}, Artifacts: []Artifact{}}
	for _, r := range s.reposByID {
		st.Repos = append(st.Repos, *r)
	}
	for _, r := range s.runs {
		st.Runs = append(st.Runs, *r)
	}
	for _, a := range s.order {
		st.Artifacts = append(st.Artifacts, *a)
	}
	slices.SortFunc(st.Repos, func(a, b Repo) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Runs, func(a, b Run) int { return cmp.Compare(a.ID, b.ID) })
	return st
}
