package webhook

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// Conclusions returns the values GitHub reports in workflow_run.conclusion.
func Conclusions() []string {
	return []string{
		"success", "failure", "neutral", "cancelled", "skipped",
		"timed_out", "action_required", "stale", "startup_failure",
	}
}

// Reasons a run is filtered out; they label archiver_webhook_ignored_total.
const (
	ReasonRepoNotAllowed = "repository_not_allowed"
	ReasonRepoDenied     = "repository_denied"
	ReasonWorkflow       = "workflow"
	ReasonBranch         = "branch"
	ReasonConclusion     = "conclusion"
)

// Filter selects the completed runs to archive. Every list is optional; an
// empty list lets everything through. Patterns use path.Match syntax, in
// which '*' does not cross a '/'.
type Filter struct {
	// ReposAllow, if set, admits only repositories whose "owner/name"
	// matches one of the patterns (case-insensitive: "acme/*").
	ReposAllow []string
	// ReposDeny refuses repositories matching any pattern; it wins over
	// ReposAllow.
	ReposDeny []string
	// Workflows, if set, admits only runs whose workflow name, workflow
	// file path (".github/workflows/release.yml") or file name
	// ("release.yml") matches a pattern.
	Workflows []string
	// Branches, if set, admits only runs whose head branch matches a
	// pattern ("main", "release/*").
	Branches []string
	// Conclusions, if set, admits only runs with one of these conclusions
	// (see [Conclusions]). The default archives every conclusion.
	Conclusions []string
}

// Validate names the first bad pattern or unknown conclusion.
func (f Filter) Validate() error {
	for _, l := range []struct {
		name string
		pats []string
	}{
		{"repository allow", f.ReposAllow},
		{"repository deny", f.ReposDeny},
		{"workflow", f.Workflows},
		{"branch", f.Branches},
	} {
		for _, p := range l.pats {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("webhook: %s pattern %q: %w", l.name, p, err)
			}
		}
	}
	known := Conclusions()
	for _, c := range f.Conclusions {
		if !slices.Contains(known, strings.ToLower(c)) {
			return fmt.Errorf("webhook: conclusion %q: want one of %s", c, strings.Join(known, ", "))
		}
	}
	return nil
}

// Match returns "" if the run passes the filter, or the reason (one of the
// Reason constants) it does not. Patterns must be valid (see Validate).
func (f Filter) Match(e *runevent.RunCompleted) string {
	repo := e.Repository.FullName
	if repo == "" {
		repo = e.Repository.Owner + "/" + e.Repository.Name
	}
	repo = strings.ToLower(repo)
	if len(f.ReposAllow) > 0 && !matchAny(f.ReposAllow, true, repo) {
		return ReasonRepoNotAllowed
	}
	if matchAny(f.ReposDeny, true, repo) {
		return ReasonRepoDenied
	}
	if len(f.Workflows) > 0 {
		p := e.WorkflowRun.Path
		if !matchAny(f.Workflows, false, e.WorkflowName, e.WorkflowRun.Name, p, path.Base(p)) {
			return ReasonWorkflow
		}
	}
	if len(f.Branches) > 0 && !matchAny(f.Branches, false, e.WorkflowRun.HeadBranch) {
		return ReasonBranch
	}
	if len(f.Conclusions) > 0 && !slices.ContainsFunc(f.Conclusions, func(c string) bool {
		return strings.EqualFold(c, e.WorkflowRun.Conclusion)
	}) {
		return ReasonConclusion
	}
	return ""
}

// matchAny reports whether a pattern matches one of the non-empty names.
func matchAny(patterns []string, fold bool, names ...string) bool {
	for _, p := range patterns {
		if fold {
			p = strings.ToLower(p)
		}
		for _, n := range names {
			if n == "" {
				continue
			}
			if ok, _ := path.Match(p, n); ok {
				return true
			}
		}
	}
	return false
}

// String describes the filter for the startup log.
func (f Filter) String() string {
	var parts []string
	add := func(name string, l []string) {
		if len(l) > 0 {
			parts = append(parts, name+"="+strings.Join(l, ","))
		}
	}
	add("repos_allow", f.ReposAllow)
	add("repos_deny", f.ReposDeny)
	add("workflows", f.Workflows)
	add("branches", f.Branches)
	add("conclusions", f.Conclusions)
	if len(parts) == 0 {
		return "all runs"
	}
	return strings.Join(parts, " ")
}
