package ghsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

//go:embed testdata/*.json
var payloads embed.FS

// SamplePayload returns one of the real GitHub webhook payloads kept in
// testdata (for example "workflow_run.completed.payload.json").
func SamplePayload(name string) ([]byte, error) {
	b, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		return nil, fmt.Errorf("ghsim: sample payload %s: %w", name, err)
	}
	return b, nil
}

// RunPayload describes the workflow_run delivery to render. Zero fields keep
// the values of the real sample payload.
type RunPayload struct {
	Action         string // default "completed"
	InstallationID int64  // 0: a repository-hook delivery without "installation"
	RepoID         int64
	Owner, Repo    string
	Private        bool
	RunID          int64
	RunAttempt     int
	WorkflowName   string
	WorkflowPath   string
	Event          string
	HeadBranch     string
	HeadSHA        string
	Conclusion     string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// PullRequests are the run's pull request numbers; nil keeps the
	// sample's (none).
	PullRequests []int64
	// APIURL replaces "https://api.github.com/" at the start of every URL in
	// the payload (for example a simulator's Server.URL()); "" keeps it.
	APIURL string
}

// WorkflowRunPayload renders a realistic (about 22 KB) workflow_run delivery
// body from GitHub's sample with p's fields patched in.
func WorkflowRunPayload(p RunPayload) ([]byte, error) {
	raw, err := SamplePayload("workflow_run.completed.payload.json")
	if err != nil {
		return nil, err
	}
	var d map[string]any
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("ghsim: decode sample payload: %w", err)
	}
	repo := d["repository"].(map[string]any)
	run := d["workflow_run"].(map[string]any)
	wf := d["workflow"].(map[string]any)
	set := func(m map[string]any, k string, v any, ok bool) {
		if ok {
			m[k] = v
		}
	}
	oldOwner := repo["owner"].(map[string]any)["login"].(string)
	oldFull := repo["full_name"].(string)
	oldRunID := strconv.FormatInt(int64(run["id"].(float64)), 10)
	if p.Action != "" {
		d["action"] = p.Action
	}
	if p.InstallationID != 0 {
		d["installation"] = map[string]any{"id": p.InstallationID, "node_id": fmt.Sprintf("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u%d", p.InstallationID)}
	}
	if p.Owner != "" || p.Repo != "" {
		owner := orStr(p.Owner, repo["owner"].(map[string]any)["login"].(string))
		name := orStr(p.Repo, repo["name"].(string))
		full := owner + "/" + name
		repo["name"], repo["full_name"] = name, full
		repo["owner"].(map[string]any)["login"] = owner
		if org, ok := d["organization"].(map[string]any); ok {
			org["login"] = owner
		}
		repo["html_url"] = "https://github.com/" + full
		repo["url"] = "https://api.github.com/repos/" + full
		run["html_url"] = fmt.Sprintf("https://github.com/%s/actions/runs/%d", full, orInt(p.RunID, int64(run["id"].(float64))))
		run["repository"] = repo
		run["head_repository"] = repo
	}
	set(repo, "id", p.RepoID, p.RepoID != 0)
	set(repo, "private", p.Private, p.Private)
	set(run, "id", p.RunID, p.RunID != 0)
	set(run, "run_attempt", p.RunAttempt, p.RunAttempt != 0)
	set(run, "name", p.WorkflowName, p.WorkflowName != "")
	set(wf, "name", p.WorkflowName, p.WorkflowName != "")
	set(run, "path", p.WorkflowPath, p.WorkflowPath != "")
	set(wf, "path", p.WorkflowPath, p.WorkflowPath != "")
	set(run, "event", p.Event, p.Event != "")
	set(run, "head_branch", p.HeadBranch, p.HeadBranch != "")
	set(run, "head_sha", p.HeadSHA, p.HeadSHA != "")
	set(run, "conclusion", p.Conclusion, p.Conclusion != "")
	set(run, "created_at", p.CreatedAt.UTC().Format(time.RFC3339), !p.CreatedAt.IsZero())
	set(run, "updated_at", p.UpdatedAt.UTC().Format(time.RFC3339), !p.UpdatedAt.IsZero())
	if p.PullRequests != nil {
		run["pull_requests"] = pullRequestsJSON(githubAPIURL+"repos/"+repo["full_name"].(string), p.PullRequests)
	}
	if p.Action != "" && p.Action != "completed" {
		run["status"], run["conclusion"] = strings.TrimSuffix(p.Action, "ed")+"ed", nil
	}
	// Make every URL in the payload name the patched repository, owner and
	// run, and point at APIURL.
	newOwner := repo["owner"].(map[string]any)["login"].(string)
	newFull := repo["full_name"].(string)
	newRunID := oldRunID
	if p.RunID != 0 {
		newRunID = strconv.FormatInt(p.RunID, 10)
	}
	base := strings.TrimSuffix(p.APIURL, "/") + "/"
	rewriteURLs(d, func(u string) string {
		u = replaceSegment(u, oldFull, newFull)
		u = replaceSegment(u, "actions/runs/"+oldRunID, "actions/runs/"+newRunID)
		u = replaceSegment(u, oldOwner, newOwner)
		if rest, ok := strings.CutPrefix(u, githubAPIURL); ok && p.APIURL != "" {
			u = base + rest
		}
		return u
	})
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("ghsim: encode payload: %w", err)
	}
	return b, nil
}

// Sign returns the X-Hub-Signature-256 header value for body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

const githubAPIURL = "https://api.github.com/"

// rewriteURLs replaces every URL string s in v (a decoded JSON document)
// with f(s).
func rewriteURLs(v any, f func(string) string) {
	isURL := func(s string) bool { return strings.Contains(s, "://") || strings.HasPrefix(s, "git@") }
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && isURL(s) {
				v[k] = f(s)
				continue
			}
			rewriteURLs(e, f)
		}
	case []any:
		for i, e := range v {
			if s, ok := e.(string); ok && isURL(s) {
				v[i] = f(s)
				continue
			}
			rewriteURLs(e, f)
		}
	}
}

// replaceSegment replaces old with new in the URL u where old is a whole
// path segment (or segments): preceded by '/' or ':' and followed by the
// end, '/', '{', '?', '#' or '.' (as in ".git").
func replaceSegment(u, old, new string) string {
	if old == new || old == "" {
		return u
	}
	var b strings.Builder
	for {
		i := strings.Index(u, old)
		if i < 0 {
			b.WriteString(u)
			return b.String()
		}
		j := i + len(old)
		left := i > 0 && (u[i-1] == '/' || u[i-1] == ':')
		right := j == len(u) || strings.ContainsRune("/{?#.", rune(u[j]))
		b.WriteString(u[:i])
		if left && right {
			b.WriteString(new)
		} else {
			b.WriteString(old)
		}
		u = u[j:]
	}
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orInt(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}
