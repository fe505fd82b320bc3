package ghclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v66/github"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// DefaultAPIURL is GitHub.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// MutationInterval is the spacing GitHub asks for between mutating requests
// (DELETE) per installation.
const MutationInterval = time.Second

// Config configures [Clients].
type Config struct {
	// APIURL is the REST API root (GITHUB_API_URL): https://api.github.com/
	// by default, https://HOST/api/v3/ on GitHub Enterprise Server.
	APIURL string
	// Token authenticates every request when set (GITHUB_TOKEN); App
	// credentials are then unused.
	Token string
	// AppID and PrivateKey (PEM) authenticate as a GitHub App and mint a
	// token per installation (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY[_FILE]).
	AppID      int64
	PrivateKey []byte
	// Transport is the base transport (default http.DefaultTransport).
	Transport http.RoundTripper
	// MutationInterval spaces DELETEs per installation (default 1 s).
	MutationInterval time.Duration
	// LowWater is the remaining rate-limit budget below which requests are
	// paced until the reset (default 200).
	LowWater int
	// Bundles fetches attestation bundle_urls, without credentials
	// (default: a [Downloader] with its defaults: https to public hosts
	// only; simulators need AllowHTTP).
	Bundles *Downloader
	// MaxBundleSize caps an attestation bundle's decoded size (default
	// [DefaultMaxBundleSize], 32 MiB).
	MaxBundleSize int64
	Logger        *slog.Logger
	Metrics       *Metrics
}

// Clients hands out a [Client] per installation, caching each so that its
// installation token is reused and refreshed before expiry (ghinstallation).
type Clients struct {
	cfg  Config
	mu   sync.Mutex
	byID map[int64]*Client
	app  *ghinstallation.AppsTransport
}

var _ archive.Installations = (*Clients)(nil)

// New validates cfg and returns the client factory.
func New(cfg Config) (*Clients, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.MutationInterval == 0 {
		cfg.MutationInterval = MutationInterval
	}
	if cfg.LowWater == 0 {
		cfg.LowWater = DefaultLowWater
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Bundles == nil {
		cfg.Bundles = NewDownloader(DownloaderConfig{})
	}
	if cfg.MaxBundleSize <= 0 {
		cfg.MaxBundleSize = DefaultMaxBundleSize
	}
	c := &Clients{cfg: cfg, byID: map[int64]*Client{}}
	if cfg.Token == "" {
		if cfg.AppID == 0 || len(cfg.PrivateKey) == 0 {
			return nil, errors.New("ghclient: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE)")
		}
		app, err := ghinstallation.NewAppsTransport(cfg.Transport, cfg.AppID, cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("ghclient: app %d private key: %w", cfg.AppID, err)
		}
		app.BaseURL = strings.TrimSuffix(cfg.APIURL, "/")
		c.app = app
	}
	return c, nil
}

// ForInstallation returns the client for installation id. With token auth
// every installation shares one client; with App auth installation 0 (a
// repository hook delivery) is an error.
func (c *Clients) ForInstallation(id int64) (archive.GitHub, error) {
	return c.client(id)
}

func (c *Clients) client(id int64) (*Client, error) {
	if c.cfg.Token != "" {
		id = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.byID[id]; ok {
		return cl, nil
	}
	var rt http.RoundTripper
	switch {
	case c.cfg.Token != "":
		rt = &tokenTransport{base: c.cfg.Transport, token: c.cfg.Token}
	case id == 0:
		return nil, archive.Permanent(errors.New("ghclient: event has no installation id and no GITHUB_TOKEN is configured"))
	default:
		// Each installation gets its own AppsTransport: ghinstallation's
		// token refresh writes to the AppsTransport it was built from, so
		// sharing one between installations is a data race.
		atr, err := ghinstallation.NewAppsTransport(c.cfg.Transport, c.cfg.AppID, c.cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("ghclient: app %d private key: %w", c.cfg.AppID, err)
		}
		atr.BaseURL = c.app.BaseURL
		it := ghinstallation.NewFromAppsTransport(atr, id)
		it.BaseURL = c.app.BaseURL
		rt = it
	}
	cl, err := newClient(c.cfg, id, rt)
	if err != nil {
		return nil, err
	}
	c.byID[id] = cl
	return cl, nil
}

// tokenTransport adds a static token; it is only ever used for the API host.
type tokenTransport struct {
	base  http.RoundTripper
	token string
}

func (t *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

// Client is the GitHub API bound to one installation's credentials. It
// implements [archive.GitHub].
type Client struct {
	gh             *github.Client
	noRedirect     *github.Client
	installationID int64
	log            *slog.Logger
	metrics        *Metrics
	interval       time.Duration

	mutMu   sync.Mutex
	lastMut time.Time

	budget   budget
	lowWater int

	bundles   *Downloader // attestation bundle_urls (attestations.go)
	maxBundle int64
}

var _ archive.GitHub = (*Client)(nil)

// apiHTTPClient is the http.Client of every authenticated API client. The
// credentials (installation token, static token or App JWT) are added by
// rt inside RoundTrip, so net/http's stripping of Authorization on a
// cross-host redirect does not help: it follows redirects only to the
// original scheme and host, and refuses any other with
// archive.ErrBadRedirect before a request is sent there.
func apiHTTPClient(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt, CheckRedirect: sameOriginRedirect}
}

// sameOriginRedirect is the API clients' CheckRedirect.
func sameOriginRedirect(r *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("%w: api: stopped after %d redirects", archive.ErrBadRedirect, len(via))
	}
	from := via[0].URL
	if r.URL.Scheme != from.Scheme || !strings.EqualFold(r.URL.Host, from.Host) {
		return fmt.Errorf("%w: api: %s redirected to %s://%s, which would receive the credentials", archive.ErrBadRedirect, from.Host, r.URL.Scheme, r.URL.Host)
	}
	return nil
}

func newClient(cfg Config, installationID int64, rt http.RoundTripper) (*Client, error) {
	hc := apiHTTPClient(rt)
	base, err := url.Parse(cfg.APIURL)
	if err != nil {
		return nil, fmt.Errorf("ghclient: api url %q: %w", cfg.APIURL, err)
	}
	// The URL is used exactly as configured (GITHUB_API_URL already ends in
	// /api/v3 on GHES); go-github's WithEnterpriseURLs would append it again
	// to hosts such as a simulator's.
	gh := github.NewClient(hc)
	gh.BaseURL = base
	// The zip endpoint answers 302 to a pre-signed URL on another host; it
	// must not be followed by a client that carries the token.
	nr := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	noRedirect := github.NewClient(nr)
	noRedirect.BaseURL = base
	return &Client{
		gh: gh, noRedirect: noRedirect, installationID: installationID,
		log: cfg.Logger, metrics: cfg.Metrics, interval: cfg.MutationInterval,
		lowWater: cfg.LowWater, bundles: cfg.Bundles, maxBundle: cfg.MaxBundleSize,
	}, nil
}

// Artifact is go-github's Artifact plus the digest field v66 lacks.
type Artifact struct {
	github.Artifact
	Digest *string `json:"digest"`
}

type artifactList struct {
	TotalCount int64       `json:"total_count"`
	Artifacts  []*Artifact `json:"artifacts"`
}

// ListRunArtifacts lists every artifact of a run, following the Link
// header's rel="next" with per_page=100.
func (c *Client) ListRunArtifacts(ctx context.Context, owner, repo string, runID int64) ([]archive.RemoteArtifact, error) {
	u := fmt.Sprintf("repos/%s/%s/actions/runs/%d/artifacts?per_page=100", owner, repo, runID)
	var out []archive.RemoteArtifact
	for pageNo := 1; u != ""; {
		if err := c.pace(ctx); err != nil {
			return nil, err
		}
		req, err := c.gh.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("ghclient: list artifacts of run %d: %w", runID, err)
		}
		var page artifactList
		resp, err := c.gh.Do(ctx, req, &page)
		c.observe("list", resp, err)
		if err != nil {
			if statusOf(resp, err) == http.StatusNotFound {
				// The repository or run is gone (or the App lost access).
				return nil, archive.Permanent(fmt.Errorf("ghclient: list artifacts of %s/%s run %d: %w", owner, repo, runID, err))
			}
			return nil, classify(fmt.Sprintf("list artifacts of %s/%s run %d", owner, repo, runID), resp, err)
		}
		for _, a := range page.Artifacts {
			out = append(out, toRemote(a))
		}
		u = ""
		if resp.NextPage != 0 {
			if resp.NextPage <= pageNo {
				return nil, fmt.Errorf("ghclient: list artifacts of %s/%s run %d: page %d links back to page %d", owner, repo, runID, pageNo, resp.NextPage)
			}
			pageNo = resp.NextPage
			u = fmt.Sprintf("repos/%s/%s/actions/runs/%d/artifacts?per_page=100&page=%d", owner, repo, runID, pageNo)
		}
	}
	return out, nil
}

// GetArtifact returns one artifact, or archive.ErrGone on 404.
func (c *Client) GetArtifact(ctx context.Context, owner, repo string, id int64) (archive.RemoteArtifact, error) {
	if err := c.pace(ctx); err != nil {
		return archive.RemoteArtifact{}, err
	}
	req, err := c.gh.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/actions/artifacts/%d", owner, repo, id), nil)
	if err != nil {
		return archive.RemoteArtifact{}, fmt.Errorf("ghclient: get artifact %d: %w", id, err)
	}
	var a Artifact
	resp, err := c.gh.Do(ctx, req, &a)
	c.observe("get", resp, err)
	if err != nil {
		if statusOf(resp, err) == http.StatusNotFound {
			return archive.RemoteArtifact{}, fmt.Errorf("ghclient: get artifact %d: %w", id, archive.ErrGone)
		}
		return archive.RemoteArtifact{}, classify(fmt.Sprintf("get artifact %d", id), resp, err)
	}
	return toRemote(&a), nil
}

// DownloadURL asks the zip endpoint for the artifact's redirect URL without
// following it. 404 and 410 mean the artifact is gone.
func (c *Client) DownloadURL(ctx context.Context, owner, repo string, id int64) (string, error) {
	if err := c.pace(ctx); err != nil {
		return "", err
	}
	req, err := c.noRedirect.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/actions/artifacts/%d/zip", owner, repo, id), nil)
	if err != nil {
		return "", fmt.Errorf("ghclient: download artifact %d: %w", id, err)
	}
	resp, err := c.noRedirect.Do(ctx, req, nil)
	c.observe("zip", resp, err)
	switch status := statusOf(resp, err); {
	case status == http.StatusFound || status == http.StatusTemporaryRedirect:
		loc := resp.Header.Get("Location")
		if loc == "" {
			return "", fmt.Errorf("ghclient: download artifact %d: %d without Location", id, status)
		}
		return loc, nil
	case status == http.StatusNotFound || status == http.StatusGone:
		return "", fmt.Errorf("ghclient: download artifact %d: %d: %w", id, status, archive.ErrGone)
	case err != nil:
		return "", classify(fmt.Sprintf("download artifact %d", id), resp, err)
	default:
		return "", fmt.Errorf("ghclient: download artifact %d: unexpected status %d", id, status)
	}
}

// DeleteArtifact deletes an artifact, at most one DELETE per
// MutationInterval for this installation. A 404 is success: a retried
// delete that already happened.
func (c *Client) DeleteArtifact(ctx context.Context, owner, repo string, id int64) error {
	if err := c.paceMutation(ctx); err != nil {
		return err
	}
	if err := c.pace(ctx); err != nil {
		return err
	}
	resp, err := c.gh.Actions.DeleteArtifact(ctx, owner, repo, id)
	c.observe("delete", resp, err)
	if err != nil {
		if statusOf(resp, err) == http.StatusNotFound {
			return nil
		}
		return classify(fmt.Sprintf("delete artifact %d", id), resp, err)
	}
	return nil
}

// paceMutation waits until MutationInterval has passed since the previous
// mutating request of this installation.
func (c *Client) paceMutation(ctx context.Context) error {
	c.mutMu.Lock()
	defer c.mutMu.Unlock()
	if err := archive.Sleep(ctx, time.Until(c.lastMut.Add(c.interval))); err != nil {
		return err
	}
	c.lastMut = time.Now()
	return nil
}

func (c *Client) observe(op string, resp *github.Response, err error) {
	if resp != nil && resp.Response != nil && resp.Header.Get("X-RateLimit-Remaining") != "" {
		c.budget.set(resp.Rate.Remaining, resp.Rate.Reset.Time)
	}
	if c.metrics == nil {
		return
	}
	c.metrics.observe(op, resp, err)
}

func toRemote(a *Artifact) archive.RemoteArtifact {
	r := archive.RemoteArtifact{
		ID:          a.GetID(),
		Name:        a.GetName(),
		SizeInBytes: a.GetSizeInBytes(),
		Expired:     a.GetExpired(),
		CreatedAt:   a.GetCreatedAt().Time,
		ExpiresAt:   a.GetExpiresAt().Time,
		UpdatedAt:   a.GetUpdatedAt().Time,
	}
	if a.WorkflowRun != nil {
		r.RunID = a.WorkflowRun.GetID()
	}
	if a.Digest != nil {
		r.Digest = strings.TrimPrefix(*a.Digest, "sha256:")
	}
	return r
}
