package ghclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/go-github/v66/github"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// ErrNotFound: GitHub answered 404 for a repository, run or installation:
// it does not exist, or the credentials cannot see it.
var ErrNotFound = errors.New("not found at github")

// PerPage is the page size of every list request (GitHub's maximum).
const PerPage = 100

// Installation returns the client of installation id, as ForInstallation
// does, with its concrete type for the calls beyond [archive.GitHub].
func (c *Clients) Installation(id int64) (*Client, error) { return c.client(id) }

// ListRepoArtifactsPage returns one page (PerPage artifacts, newest first)
// of "List artifacts for a repository" and the next page's number, 0 after
// the last one. Expired artifacts are included with Expired set. A caller
// that meets a rate limit (*archive.RetryAfterError) can wait and ask for
// the same page again.
func (c *Client) ListRepoArtifactsPage(ctx context.Context, owner, repo string, page int) ([]archive.RemoteArtifact, int, error) {
	what := fmt.Sprintf("list artifacts of %s/%s page %d", owner, repo, page)
	u := fmt.Sprintf("repos/%s/%s/actions/artifacts?per_page=%d&page=%d", url.PathEscape(owner), url.PathEscape(repo), PerPage, max(page, 1))
	var list artifactList
	resp, err := c.get(ctx, "list_repo", u, &list)
	if err != nil {
		if statusOf(resp, err) == http.StatusNotFound {
			return nil, 0, fmt.Errorf("ghclient: %s: %w", what, ErrNotFound)
		}
		return nil, 0, classify(what, resp, err)
	}
	out := make([]archive.RemoteArtifact, 0, len(list.Artifacts))
	for _, a := range list.Artifacts {
		out = append(out, toRemote(a))
	}
	return out, resp.NextPage, nil
}

// ListRepoArtifacts lists every artifact of a repository, all pages.
func (c *Client) ListRepoArtifacts(ctx context.Context, owner, repo string) ([]archive.RemoteArtifact, error) {
	var out []archive.RemoteArtifact
	for page := 1; page != 0; {
		arts, next, err := c.ListRepoArtifactsPage(ctx, owner, repo, page)
		if err != nil {
			return nil, err
		}
		if next != 0 && next <= page {
			return nil, fmt.Errorf("ghclient: list artifacts of %s/%s: page %d links back to page %d", owner, repo, page, next)
		}
		out = append(out, arts...)
		page = next
	}
	return out, nil
}

// GetRepo returns a repository with GitHub's spelling of its owner and
// name, or ErrNotFound.
func (c *Client) GetRepo(ctx context.Context, owner, repo string) (runevent.Repository, error) {
	what := fmt.Sprintf("get repository %s/%s", owner, repo)
	var r github.Repository
	resp, err := c.get(ctx, "get_repo", fmt.Sprintf("repos/%s/%s", url.PathEscape(owner), url.PathEscape(repo)), &r)
	if err != nil {
		if statusOf(resp, err) == http.StatusNotFound {
			return runevent.Repository{}, fmt.Errorf("ghclient: %s: %w", what, ErrNotFound)
		}
		return runevent.Repository{}, classify(what, resp, err)
	}
	return toRepository(&r), nil
}

// Run is a workflow run as "Get a workflow run" returns it, in the event
// types the archive records.
type Run struct {
	Repository  runevent.Repository
	WorkflowRun runevent.WorkflowRun
}

// GetRun returns a workflow run (its latest attempt), or ErrNotFound.
func (c *Client) GetRun(ctx context.Context, owner, repo string, runID int64) (Run, error) {
	what := fmt.Sprintf("get run %d of %s/%s", runID, owner, repo)
	var r github.WorkflowRun
	resp, err := c.get(ctx, "get_run", fmt.Sprintf("repos/%s/%s/actions/runs/%d", url.PathEscape(owner), url.PathEscape(repo), runID), &r)
	if err != nil {
		if statusOf(resp, err) == http.StatusNotFound {
			return Run{}, fmt.Errorf("ghclient: %s: %w", what, ErrNotFound)
		}
		return Run{}, classify(what, resp, err)
	}
	var prs []int64
	for _, pr := range r.PullRequests {
		prs = append(prs, int64(pr.GetNumber()))
	}
	return Run{
		Repository: toRepository(r.GetRepository()),
		WorkflowRun: runevent.WorkflowRun{
			ID:         r.GetID(),
			RunAttempt: r.GetRunAttempt(),
			WorkflowID: r.GetWorkflowID(),
			Name:       r.GetName(),
			Path:       r.GetPath(),
			Event:      r.GetEvent(),
			HeadBranch: r.GetHeadBranch(),
			HeadSHA:    r.GetHeadSHA(),
			Conclusion: r.GetConclusion(),
			Status:     r.GetStatus(),
			CreatedAt:  r.GetCreatedAt().Time,
			UpdatedAt:  r.GetUpdatedAt().Time,
			HTMLURL:    r.GetHTMLURL(),
			// PullRequests are the pull requests GitHub lists for the run.
			PullRequests: prs,
		},
	}, nil
}

// ListInstallationReposPage returns one page (PerPage repositories) of the
// repositories the installation token reaches ("List repositories
// accessible to the app installation") and the next page's number, 0 after
// the last one. It needs an installation token (App credentials).
func (c *Client) ListInstallationReposPage(ctx context.Context, page int) ([]runevent.Repository, int, error) {
	what := fmt.Sprintf("list repositories of installation %d page %d", c.installationID, page)
	var list github.ListRepositories
	resp, err := c.get(ctx, "list_installation_repos", fmt.Sprintf("installation/repositories?per_page=%d&page=%d", PerPage, max(page, 1)), &list)
	if err != nil {
		if statusOf(resp, err) == http.StatusNotFound {
			return nil, 0, fmt.Errorf("ghclient: %s: %w", what, ErrNotFound)
		}
		return nil, 0, classify(what, resp, err)
	}
	out := make([]runevent.Repository, 0, len(list.Repositories))
	for _, r := range list.Repositories {
		out = append(out, toRepository(r))
	}
	return out, resp.NextPage, nil
}

// ListInstallationRepos lists every repository of the installation, all
// pages.
func (c *Client) ListInstallationRepos(ctx context.Context) ([]runevent.Repository, error) {
	var out []runevent.Repository
	for page := 1; page != 0; {
		repos, next, err := c.ListInstallationReposPage(ctx, page)
		if err != nil {
			return nil, err
		}
		if next != 0 && next <= page {
			return nil, fmt.Errorf("ghclient: list repositories of installation %d: page %d links back to page %d", c.installationID, page, next)
		}
		out = append(out, repos...)
		page = next
	}
	return out, nil
}

// get issues one paced GET and decodes the answer into v.
func (c *Client) get(ctx context.Context, op, u string, v any) (*github.Response, error) {
	if err := c.pace(ctx); err != nil {
		return nil, err
	}
	req, err := c.gh.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.gh.Do(ctx, req, v)
	c.observe(op, resp, err)
	return resp, err
}

func toRepository(r *github.Repository) runevent.Repository {
	return runevent.Repository{
		ID:       r.GetID(),
		Owner:    r.GetOwner().GetLogin(),
		Name:     r.GetName(),
		FullName: r.GetFullName(),
		Private:  r.GetPrivate(),
	}
}
