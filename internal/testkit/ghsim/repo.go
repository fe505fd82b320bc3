package ghsim

import (
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Repo is a repository known to the simulator.
type Repo struct {
	ID             int64  `json:"id"`
	Owner          string `json:"owner"`
	Name           string `json:"name"`
	InstallationID int64  `json:"installation_id"` // the App installation that can reach it (0: none)
	Private        bool   `json:"private"`
}

// FullName returns "owner/name".
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// RunSpec describes a workflow run to add. Zero fields get the defaults
// noted. Attempt is the latest attempt: N > 1 is a run re-run N-1 times,
// whose artifact list spans every attempt, as on GitHub (AttemptPayload
// renders the delivery of an earlier attempt).
type RunSpec struct {
	ID         int64     `json:"id,omitzero"`          // 0: assigned (increasing, above 2^32 like GitHub's)
	Attempt    int       `json:"run_attempt,omitzero"` // default 1
	Name       string    `json:"name,omitzero"`        // workflow name; default "CI"
	Path       string    `json:"path,omitzero"`        // default ".github/workflows/ci.yml"
	Event      string    `json:"event,omitzero"`       // default "push"
	HeadBranch string    `json:"head_branch,omitzero"` // default "main"
	HeadSHA    string    `json:"head_sha,omitzero"`    // default derived from the run id
	Status     string    `json:"status,omitzero"`      // default "completed"
	Conclusion string    `json:"conclusion,omitzero"`  // default "success" when completed
	CreatedAt  time.Time `json:"created_at,omitzero"`  // default the server clock's now
	UpdatedAt  time.Time `json:"updated_at,omitzero"`  // default CreatedAt
	// PullRequests are the numbers of the run's pull requests (default
	// none), rendered in the run's "pull_requests".
	PullRequests []int64 `json:"pull_requests,omitzero"`
}

// Run is a workflow run known to the simulator; its id is RunSpec.ID.
type Run struct {
	RepoID int64  `json:"repo_id"`
	Owner  string `json:"owner"`
	Repo   string `json:"repo"`
	RunSpec
}

// repoKey is the case-insensitive key of a repository, as GitHub matches
// owner and name.
func repoKey(owner, name string) string {
	return strings.ToLower(owner) + "/" + strings.ToLower(name)
}

// nodeID returns a legacy GitHub global node id, like "MDg6QXJ0aWZhY3QxMQ==".
func nodeID(typ string, id int64) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%02d:%s%d", len(typ), typ, id))
}

// fakeSHA returns a commit-like 40-hex-digit id derived from n.
func fakeSHA(n int64) string {
	sum := sha1.Sum(fmt.Appendf(nil, "ghsim commit %d", n))
	return hex.EncodeToString(sum[:])
}

// AddRepo registers owner/name under the App installation installationID
// (0: reachable only with the static tokens of Options.Tokens). Repository
// ids are assigned in order from 100000001. Adding a repository again
// updates its installation and returns it.
func (s *Server) AddRepo(installationID int64, owner, name string) Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := repoKey(owner, name)
	if r, ok := s.repos[k]; ok {
		r.InstallationID = installationID
		return *r
	}
	s.nextRepoID++
	r := &Repo{ID: s.nextRepoID, Owner: owner, Name: name, InstallationID: installationID}
	s.repos[k] = r
	s.reposByID[r.ID] = r
	return *r
}

// SetPrivate sets the "private" flag reported for owner/name.
func (s *Server) SetPrivate(owner, name string, private bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repos[repoKey(owner, name)]; ok {
		r.Private = private
	}
}

// Repo returns the repository owner/name.
func (s *Server) Repo(owner, name string) (Repo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoKey(owner, name)]
	if !ok {
		return Repo{}, false
	}
	return *r, true
}

// AddRun adds a workflow run to owner/repo and returns it with its id.
// It panics if the repository was not added with AddRepo or the id is
// taken (programming errors in a test).
func (s *Server) AddRun(owner, repo string, spec RunSpec) Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoKey(owner, repo)]
	if !ok {
		panic(fmt.Sprintf("ghsim: add run: unknown repository %s/%s", owner, repo))
	}
	if spec.ID == 0 {
		s.nextRunID++
		for s.runs[s.nextRunID] != nil {
			s.nextRunID++
		}
		spec.ID = s.nextRunID
	} else if s.runs[spec.ID] != nil {
		panic(fmt.Sprintf("ghsim: add run: run id %d is taken", spec.ID))
	}
	spec.Attempt = max(spec.Attempt, 1)
	spec.Name = orStr(spec.Name, "CI")
	spec.Path = orStr(spec.Path, ".github/workflows/ci.yml")
	spec.Event = orStr(spec.Event, "push")
	spec.HeadBranch = orStr(spec.HeadBranch, "main")
	spec.HeadSHA = orStr(spec.HeadSHA, fakeSHA(spec.ID))
	spec.Status = orStr(spec.Status, "completed")
	if spec.Status == "completed" {
		spec.Conclusion = orStr(spec.Conclusion, "success")
	}
	if spec.CreatedAt.IsZero() {
		spec.CreatedAt = s.now().UTC().Truncate(time.Second)
	}
	if spec.UpdatedAt.IsZero() {
		spec.UpdatedAt = spec.CreatedAt
	}
	run := &Run{RepoID: r.ID, Owner: r.Owner, Repo: r.Name, RunSpec: spec}
	s.runs[run.ID] = run
	return *run
}

// Run returns the run with id.
func (s *Server) Run(id int64) (Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return Run{}, false
	}
	return *r, true
}

// RunPayload renders a signed-ready workflow_run "completed" delivery body
// for a run added with AddRun (see WorkflowRunPayload), with installation.id
// set to installationID (0: a repository-hook delivery) and the API URLs
// inside pointing at this server. It is the run's latest attempt; see
// AttemptPayload for an earlier one.
func (s *Server) RunPayload(owner, repo string, runID int64, installationID int64) ([]byte, error) {
	return s.AttemptPayload(owner, repo, runID, 0, installationID)
}

// AttemptPayload is RunPayload for attempt (1 up to the run's Attempt; 0:
// the latest). A run with Attempt N stands for a run re-run N-1 times: as on
// GitHub, its artifact list holds the artifacts of every attempt, so the
// delivery of any attempt lists them all.
func (s *Server) AttemptPayload(owner, repo string, runID int64, attempt int, installationID int64) ([]byte, error) {
	s.mu.Lock()
	r, okRepo := s.repos[repoKey(owner, repo)]
	run, okRun := s.runs[runID]
	var p RunPayload
	if okRepo && okRun && run.RepoID == r.ID {
		if attempt < 0 || attempt > run.Attempt {
			s.mu.Unlock()
			return nil, fmt.Errorf("ghsim: render run payload %s/%s#%d: attempt %d of %d: %w", owner, repo, runID, attempt, run.Attempt, ErrNotFound)
		}
		p = RunPayload{
			Action:         "completed",
			InstallationID: installationID,
			RepoID:         r.ID,
			Owner:          r.Owner,
			Repo:           r.Name,
			Private:        r.Private,
			RunID:          run.ID,
			RunAttempt:     cmp.Or(attempt, run.Attempt),
			WorkflowName:   run.Name,
			WorkflowPath:   run.Path,
			Event:          run.Event,
			HeadBranch:     run.HeadBranch,
			HeadSHA:        run.HeadSHA,
			Conclusion:     run.Conclusion,
			CreatedAt:      run.CreatedAt,
			UpdatedAt:      run.UpdatedAt,
			PullRequests:   run.PullRequests,
			APIURL:         s.apiURL,
		}
	}
	s.mu.Unlock()
	if !okRepo || !okRun || run.RepoID != r.ID {
		return nil, fmt.Errorf("ghsim: render run payload %s/%s#%d: %w", owner, repo, runID, ErrNotFound)
	}
	return WorkflowRunPayload(p)
}

// repoJSON renders the repository object (the fields a client needs).
func (s *Server) repoJSON(r *Repo) map[string]any {
	owner := map[string]any{
		"login":    r.Owner,
		"id":       int64(splitmix64(uint64(len(r.Owner))+uint64(r.ID)) >> 40),
		"type":     "Organization",
		"url":      s.apiURL + "users/" + r.Owner,
		"html_url": "https://github.com/" + r.Owner,
	}
	return map[string]any{
		"id":             r.ID,
		"node_id":        nodeID("Repository", r.ID),
		"name":           r.Name,
		"full_name":      r.FullName(),
		"owner":          owner,
		"private":        r.Private,
		"visibility":     map[bool]string{true: "private", false: "public"}[r.Private],
		"html_url":       "https://github.com/" + r.FullName(),
		"url":            s.apiURL + "repos/" + r.FullName(),
		"default_branch": "main",
	}
}

// runJSON renders the workflow run object.
func (s *Server) runJSON(run *Run, r *Repo) map[string]any {
	repoURL := s.apiURL + "repos/" + r.FullName()
	var conclusion any
	if run.Conclusion != "" {
		conclusion = run.Conclusion
	}
	repo := s.repoJSON(r)
	return map[string]any{
		"id":              run.ID,
		"name":            run.Name,
		"node_id":         nodeID("WorkflowRun", run.ID),
		"head_branch":     run.HeadBranch,
		"head_sha":        run.HeadSHA,
		"path":            run.Path,
		"display_title":   run.Name,
		"run_number":      run.ID % 1000,
		"event":           run.Event,
		"status":          run.Status,
		"conclusion":      conclusion,
		"workflow_id":     int64(splitmix64(uint64(r.ID)^0x77) >> 40),
		"url":             fmt.Sprintf("%s/actions/runs/%d", repoURL, run.ID),
		"html_url":        fmt.Sprintf("https://github.com/%s/actions/runs/%d", r.FullName(), run.ID),
		"artifacts_url":   fmt.Sprintf("%s/actions/runs/%d/artifacts", repoURL, run.ID),
		"created_at":      run.CreatedAt.UTC().Format(time.RFC3339),
		"updated_at":      run.UpdatedAt.UTC().Format(time.RFC3339),
		"run_attempt":     run.Attempt,
		"run_started_at":  run.CreatedAt.UTC().Format(time.RFC3339),
		"repository":      repo,
		"head_repository": repo,
		"pull_requests":   pullRequestsJSON(repoURL, run.PullRequests),
	}
}

// pullRequestsJSON renders a run's "pull_requests" (the fields GitHub
// gives there, minus head and base).
func pullRequestsJSON(repoURL string, numbers []int64) []map[string]any {
	prs := []map[string]any{}
	for _, n := range numbers {
		prs = append(prs, map[string]any{"id": int64(splitmix64(uint64(n)) >> 34), "number": n, "url": fmt.Sprintf("%s/pulls/%d", repoURL, n)})
	}
	return prs
}
