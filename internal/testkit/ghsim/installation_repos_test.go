package ghsim_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v66/github"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// appClient returns a go-github client authenticated as the App (JWT).
func (e *env) appClient(t *testing.T) *github.Client {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(e.tr, appID, pemOf(appKey()))
	if err != nil {
		t.Fatal(err)
	}
	c := github.NewClient(&http.Client{Transport: atr})
	c.BaseURL = mustURL(e.s.URL())
	return c
}

func TestInstallationRepositories(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{AppID: appID, AppPublicKey: &appKey().PublicKey})
	for i := range 120 {
		e.s.AddRepo(installationID, owner, fmt.Sprintf("repo-%03d", i))
	}
	e.s.AddRepo(8, "other-org", "hidden")
	e.s.AddRepo(0, "pat-only", "hidden")
	ctx := t.Context()

	gh := e.installationClient(t, installationID, appKey())
	seen := map[string]bool{}
	opts := &github.ListOptions{PerPage: 100}
	pages := 0
	for {
		list, resp, err := gh.Apps.ListRepos(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if list.GetTotalCount() != 121 {
			t.Fatalf("total_count %d, want 121", list.GetTotalCount())
		}
		for _, r := range list.Repositories {
			if seen[r.GetFullName()] {
				t.Fatalf("%s listed twice", r.GetFullName())
			}
			seen[r.GetFullName()] = true
			if r.GetOwner().GetLogin() != owner || r.GetID() == 0 {
				t.Fatalf("repository %+v", r)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 2 || len(seen) != 121 || !seen[owner+"/"+repoName] || seen["other-org/hidden"] {
		t.Fatalf("%d pages, %d repositories (%v)", pages, len(seen), seen["other-org/hidden"])
	}

	// Only an installation token may list: a static token gets 403.
	_, _, err := e.gh.Apps.ListRepos(ctx, nil)
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != http.StatusForbidden {
		t.Fatalf("list with a static token: %v, want 403", err)
	}
	if got := e.s.Stats().Count(ghsim.RouteInstallationRepos, http.StatusOK); got != 2 {
		t.Fatalf("%d successful installation_repos requests, want 2", got)
	}
}

func TestRepositoryInstallation(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{AppID: appID, AppPublicKey: &appKey().PublicKey})
	e.s.AddRepo(0, "pat-only", "repo")
	ctx := t.Context()
	app := e.appClient(t)
	inst, _, err := app.Apps.FindRepositoryInstallation(ctx, owner, repoName)
	if err != nil {
		t.Fatal(err)
	}
	if inst.GetID() != installationID || inst.GetAppID() != appID || inst.GetAccount().GetLogin() != owner {
		t.Fatalf("installation %+v", inst)
	}
	for _, r := range [][2]string{{"pat-only", "repo"}, {"no", "such"}} {
		_, resp, err := app.Apps.FindRepositoryInstallation(ctx, r[0], r[1])
		if err == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("installation of %s/%s: %v, want 404", r[0], r[1], err)
		}
	}
	// An installation token is not the App's JWT.
	if _, _, err := e.gh.Apps.FindRepositoryInstallation(ctx, owner, repoName); err == nil {
		t.Fatal("repository installation with a static token succeeded")
	}
}
