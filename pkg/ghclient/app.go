package ghclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-github/v66/github"
)

// AppClient is the GitHub API authenticated as the App itself (a JWT signed
// with the App's private key), for the /app endpoints: finding a
// repository's installation and recovering webhook deliveries. It needs App
// credentials; a token cannot call these endpoints.
type AppClient struct {
	gh      *github.Client
	log     *slog.Logger
	metrics *Metrics
}

// App returns the client authenticated as the App, or an error when the
// Clients were configured with a token instead of App credentials.
func (c *Clients) App() (*AppClient, error) {
	if c.app == nil {
		return nil, errors.New("ghclient: the /app endpoints need GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY(_FILE), not a token")
	}
	base, err := url.Parse(c.cfg.APIURL)
	if err != nil {
		return nil, fmt.Errorf("ghclient: api url %q: %w", c.cfg.APIURL, err)
	}
	gh := github.NewClient(apiHTTPClient(c.app))
	gh.BaseURL = base
	return &AppClient{gh: gh, log: c.cfg.Logger, metrics: c.cfg.Metrics}, nil
}

// RepoInstallation returns the id of the App's installation on owner/repo,
// or ErrNotFound when the App is not installed there.
func (a *AppClient) RepoInstallation(ctx context.Context, owner, repo string) (int64, error) {
	inst, resp, err := a.gh.Apps.FindRepositoryInstallation(ctx, owner, repo)
	a.observe("repo_installation", resp, err)
	if err != nil {
		what := fmt.Sprintf("find installation of %s/%s", owner, repo)
		if statusOf(resp, err) == http.StatusNotFound {
			return 0, fmt.Errorf("ghclient: %s: %w", what, ErrNotFound)
		}
		return 0, classify(what, resp, err)
	}
	return inst.GetID(), nil
}

// HookDelivery is one delivery of the App's webhook. A redelivery is a
// delivery of its own with the GUID (X-GitHub-Delivery) it repeats.
type HookDelivery struct {
	ID             int64     `json:"id"`
	GUID           string    `json:"guid"`
	DeliveredAt    time.Time `json:"delivered_at"`
	Redelivery     bool      `json:"redelivery"`
	Status         string    `json:"status"`
	StatusCode     int       `json:"status_code"`
	Event          string    `json:"event"`
	Action         string    `json:"action,omitempty"`
	InstallationID int64     `json:"installation_id,omitempty"`
	RepositoryID   int64     `json:"repository_id,omitempty"`
}

// OK reports whether the hook accepted the delivery (a 2xx answer).
func (d HookDelivery) OK() bool {
	return d.Status == "OK" || (d.StatusCode >= 200 && d.StatusCode < 300)
}

// ListHookDeliveriesPage returns one page (PerPage deliveries, newest
// first) of the App's webhook deliveries, starting at cursor ("" for the
// newest), and the cursor of the next page ("" after the last).
func (a *AppClient) ListHookDeliveriesPage(ctx context.Context, cursor string) ([]HookDelivery, string, error) {
	page, resp, err := a.gh.Apps.ListHookDeliveries(ctx, &github.ListCursorOptions{PerPage: PerPage, Cursor: cursor})
	a.observe("list_hook_deliveries", resp, err)
	if err != nil {
		return nil, "", classify("list app hook deliveries", resp, err)
	}
	out := make([]HookDelivery, 0, len(page))
	for _, d := range page {
		out = append(out, HookDelivery{
			ID:             d.GetID(),
			GUID:           d.GetGUID(),
			DeliveredAt:    d.GetDeliveredAt().Time,
			Redelivery:     d.GetRedelivery(),
			Status:         d.GetStatus(),
			StatusCode:     d.GetStatusCode(),
			Event:          d.GetEvent(),
			Action:         d.GetAction(),
			InstallationID: d.GetInstallationID(),
			RepositoryID:   d.GetRepositoryID(),
		})
	}
	return out, resp.Cursor, nil
}

// ListHookDeliveries returns the deliveries delivered at or after since,
// newest first, reading pages until one reaches back before since.
func (a *AppClient) ListHookDeliveries(ctx context.Context, since time.Time) ([]HookDelivery, error) {
	var out []HookDelivery
	cursor := ""
	seen := map[string]bool{}
	for {
		page, next, err := a.ListHookDeliveriesPage(ctx, cursor)
		if err != nil {
			return nil, err
		}
		older := false
		for _, d := range page {
			if d.DeliveredAt.Before(since) {
				older = true
				continue
			}
			out = append(out, d)
		}
		if next == "" || older {
			return out, nil
		}
		if seen[next] {
			return nil, fmt.Errorf("ghclient: list app hook deliveries: cursor %q repeats", next)
		}
		seen[next] = true
		cursor = next
	}
}

// RedeliverHookDelivery asks GitHub to deliver delivery id again (with the
// same GUID). GitHub answers 202 Accepted; the attempt shows up later as a
// new delivery with Redelivery set.
func (a *AppClient) RedeliverHookDelivery(ctx context.Context, id int64) error {
	_, resp, err := a.gh.Apps.RedeliverHookDelivery(ctx, id)
	a.observe("redeliver", resp, err)
	var accepted *github.AcceptedError
	if err == nil || errors.As(err, &accepted) {
		return nil
	}
	what := fmt.Sprintf("redeliver hook delivery %d", id)
	if statusOf(resp, err) == http.StatusNotFound {
		return fmt.Errorf("ghclient: %s: %w", what, ErrNotFound)
	}
	return classify(what, resp, err)
}

func (a *AppClient) observe(op string, resp *github.Response, err error) {
	if a.metrics != nil {
		a.metrics.observe(op, resp, err)
	}
}
