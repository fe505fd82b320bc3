package ghsim

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
)

// Routes of the installation endpoints (installation_repos.go).
const (
	RouteInstallationRepos Route = "installation_repos" // GET /installation/repositories
	RouteRepoInstallation  Route = "repo_installation"  // GET /repos/{o}/{r}/installation
)

const (
	docInstallationRepos = "https://docs.github.com/rest/apps/installations#list-repositories-accessible-to-the-app-installation"
	docRepoInstallation  = "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"
)

// installationRoutes registers
//
//	GET /installation/repositories        installation token; per_page (30, at most 100), page; by id
//	GET /repos/{owner}/{repo}/installation App JWT; 404 when the App is not installed there
func (s *Server) installationRoutes(mux *http.ServeMux) {
	mux.Handle("GET /installation/repositories", s.api(RouteInstallationRepos, false, s.handleInstallationRepos))
	mux.Handle("GET /repos/{owner}/{repo}/installation", s.api(RouteRepoInstallation, true, s.handleRepoInstallation))
}

// handleInstallationRepos lists the repositories an installation token
// reaches, one page, with GitHub's Link header. Other credentials get 403,
// as on GitHub.
func (s *Server) handleInstallationRepos(w http.ResponseWriter, r *http.Request, p *principal, _ *Fault) {
	if p.kind != principalInstallation {
		writeError(w, http.StatusForbidden, "You must authenticate with an installation access token in order to list repositories for an installation.", docInstallationRepos)
		return
	}
	s.mu.Lock()
	var repos []Repo
	for _, rp := range s.repos {
		if p.canReach(rp) {
			repos = append(repos, *rp)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(repos, func(a, b Repo) int { return cmp.Compare(a.ID, b.ID) })

	q := r.URL.Query()
	perPage := min(queryInt(q.Get("per_page"), 30), 100)
	page := queryInt(q.Get("page"), 1)
	last := max(1, (len(repos)+perPage-1)/perPage)
	lo := min((page-1)*perPage, len(repos))
	hi := min(lo+perPage, len(repos))
	if link := linkHeader(s.apiURL+"installation/repositories", r.URL.RawQuery, page, last); link != "" {
		w.Header().Set("Link", link)
	}
	selection := "all"
	if p.repoIDs != nil {
		selection = "selected"
	}
	out := make([]map[string]any, 0, hi-lo)
	for i := range repos[lo:hi] {
		out = append(out, s.repoJSON(&repos[lo+i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"total_count":          len(repos),
		"repository_selection": selection,
		"repositories":         out,
	})
}

// handleRepoInstallation answers GET /repos/{owner}/{repo}/installation:
// the installation of the App that reaches the repository.
func (s *Server) handleRepoInstallation(w http.ResponseWriter, r *http.Request, _ *principal, _ *Fault) {
	repo, ok := s.Repo(r.PathValue("owner"), r.PathValue("repo"))
	if !ok || repo.InstallationID == 0 {
		writeError(w, http.StatusNotFound, "Not Found", docRepoInstallation)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":                   repo.InstallationID,
		"app_id":               s.opts.AppID,
		"target_type":          "Organization",
		"account":              map[string]any{"login": repo.Owner, "type": "Organization"},
		"repository_selection": "selected",
		"permissions":          map[string]string{"actions": "write", "metadata": "read"},
		"events":               []string{"workflow_run"},
		"access_tokens_url":    fmt.Sprintf("%sapp/installations/%d/access_tokens", s.apiURL, repo.InstallationID),
	})
}
