package webhook

import (
	"testing"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	run := func(repo, workflow, path, branch, conclusion string) *runevent.RunCompleted {
		e := &runevent.RunCompleted{WorkflowName: workflow}
		e.Repository.FullName = repo
		e.WorkflowRun = runevent.WorkflowRun{Path: path, HeadBranch: branch, Conclusion: conclusion}
		return e
	}
	base := run("Acme/Rocket", "CI", ".github/workflows/ci.yml", "main", "success")
	tests := []struct {
		name   string
		filter Filter
		e      *runevent.RunCompleted
		want   string
	}{
		{"empty filter admits all", Filter{}, base, ""},
		{"allow glob, case-insensitive", Filter{ReposAllow: []string{"acme/*"}}, base, ""},
		{"allow miss", Filter{ReposAllow: []string{"other/*"}}, base, ReasonRepoNotAllowed},
		{"star does not cross slash", Filter{ReposAllow: []string{"*"}}, base, ReasonRepoNotAllowed},
		{"any owner", Filter{ReposAllow: []string{"*/rocket"}}, base, ""},
		{"deny wins over allow", Filter{ReposAllow: []string{"acme/*"}, ReposDeny: []string{"ACME/rock*"}}, base, ReasonRepoDenied},
		{"deny miss", Filter{ReposDeny: []string{"acme/other"}}, base, ""},
		{"owner/name without full_name", Filter{ReposAllow: []string{"o/n"}}, func() *runevent.RunCompleted {
			e := run("", "", "", "", "")
			e.Repository.Owner, e.Repository.Name = "o", "n"
			return e
		}(), ""},
		{"workflow by name", Filter{Workflows: []string{"CI"}}, base, ""},
		{"workflow by path", Filter{Workflows: []string{".github/workflows/c*.yml"}}, base, ""},
		{"workflow by file name", Filter{Workflows: []string{"ci.yml"}}, base, ""},
		{"workflow miss", Filter{Workflows: []string{"release*"}}, base, ReasonWorkflow},
		{"branch", Filter{Branches: []string{"main", "release/*"}}, base, ""},
		{"branch glob", Filter{Branches: []string{"release/*"}}, run("a/b", "", "", "release/1.2", "success"), ""},
		{"branch miss", Filter{Branches: []string{"release/*"}}, base, ReasonBranch},
		{"empty branch with branch filter", Filter{Branches: []string{"*"}}, run("a/b", "", "", "", "success"), ReasonBranch},
		{"conclusion", Filter{Conclusions: []string{"failure", "SUCCESS"}}, base, ""},
		{"conclusion miss", Filter{Conclusions: []string{"failure"}}, base, ReasonConclusion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.filter.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tt.filter.Match(tt.e); got != tt.want {
				t.Fatalf("Match = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		filter Filter
		ok     bool
	}{
		{"empty", Filter{}, true},
		{"good", Filter{ReposAllow: []string{"a/*"}, Workflows: []string{"[cC]i"}, Conclusions: Conclusions()}, true},
		{"bad allow pattern", Filter{ReposAllow: []string{"a/["}}, false},
		{"bad deny pattern", Filter{ReposDeny: []string{"\\"}}, false},
		{"bad workflow pattern", Filter{Workflows: []string{"ci[a-"}}, false},
		{"bad branch pattern", Filter{Branches: []string{"["}}, false},
		{"misspelt conclusion", Filter{Conclusions: []string{"canceled"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.filter.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
