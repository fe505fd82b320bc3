package ghsim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v66/github"
	"go.uber.org/goleak"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

const (
	owner          = "octo-org"
	repoName       = "octo-repo"
	pat            = "ghp_statictoken"
	installationID = 7
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a running simulator with one repository (under installation 7)
// and one run, a manual clock, and clients that share one transport.
type env struct {
	s     *ghsim.Server
	clock *ghsim.ManualClock
	tr    *http.Transport
	gh    *github.Client // static token
	plain *http.Client   // no auth, does not follow redirects
	repo  ghsim.Repo
	run   ghsim.Run
}

func setup(t *testing.T, opts ghsim.Options) *env {
	t.Helper()
	clock := ghsim.NewManualClock(time.Now())
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	opts.Tokens = append(opts.Tokens, pat)
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := ghsim.New(opts)
	if err != nil {
		t.Fatalf("new simulator: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	e := &env{
		s:     s,
		clock: clock,
		tr:    tr,
		plain: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		repo:  s.AddRepo(installationID, owner, repoName),
	}
	e.gh = e.client(pat)
	e.run = s.AddRun(owner, repoName, ghsim.RunSpec{HeadSHA: strings.Repeat("ab", 20)})
	return e
}

// client returns a go-github client for token.
func (e *env) client(token string) *github.Client {
	c := github.NewClient(&http.Client{Transport: e.tr}).WithAuthToken(token)
	c.BaseURL = mustURL(e.s.URL())
	return c
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// do sends a request (path relative to the API URL, or absolute) with
// token ("" for none) and extra header pairs, and returns the response with
// its body read. Safe to call from any goroutine.
func (e *env) do(ctx context.Context, method, path, token string, hdr ...string) (*http.Response, []byte, error) {
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.s.URL() + strings.TrimPrefix(path, "/")
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.plain.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read body: %w", method, u, err)
	}
	return resp, body, nil
}

// call is do for the test goroutine: it fails the test on a transport
// error.
func (e *env) call(t *testing.T, method, path, token string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := e.do(t.Context(), method, path, token, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// zipURL asks for the download redirect of artifact id and returns its
// Location.
func (e *env) zipURL(t *testing.T, id int64) string {
	t.Helper()
	resp, body := e.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d/zip", owner, repoName, id), pat)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("zip: status %d (%s), want 302", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// artifact is the artifact object with the digest go-github v66 lacks.
type artifact struct {
	github.Artifact
	Digest *string `json:"digest"`
}

type artifactList struct {
	TotalCount int        `json:"total_count"`
	Artifacts  []artifact `json:"artifacts"`
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	var ids []int64
	for i := range 250 {
		a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: fmt.Sprintf("a%d", i), Size: 10})
		if len(ids) > 0 && a.ID <= ids[len(ids)-1] {
			t.Fatalf("artifact id %d not above %d", a.ID, ids[len(ids)-1])
		}
		ids = append(ids, a.ID)
	}
	ctx := t.Context()

	// Default page size is 30.
	list, resp, err := e.gh.Actions.ListArtifacts(ctx, owner, repoName, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Artifacts) != 30 || list.GetTotalCount() != 250 || resp.NextPage != 2 || resp.LastPage != 9 {
		t.Fatalf("default page: %d artifacts, total %d, next %d, last %d; want 30, 250, 2, 9",
			len(list.Artifacts), list.GetTotalCount(), resp.NextPage, resp.LastPage)
	}

	// Walk every page of 100 through go-github's Link parsing.
	var got []int64
	opts := &github.ListOptions{PerPage: 100}
	pages := 0
	for {
		list, resp, err := e.gh.Actions.ListArtifacts(ctx, owner, repoName, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range list.Artifacts {
			got = append(got, a.GetID())
		}
		if resp.NextPage == 0 {
			if resp.PrevPage != 2 || resp.FirstPage != 1 {
				t.Errorf("last page: prev %d first %d, want 2 and 1", resp.PrevPage, resp.FirstPage)
			}
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 3 || len(got) != 250 {
		t.Fatalf("walked %d pages and %d artifacts, want 3 and 250", pages, len(got))
	}
	// Newest first, every id once.
	want := slices.Clone(ids)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ids across pages are not all artifacts newest first")
	}

	// The exact Link header of the middle page.
	resp2, body := e.call(t, "GET", "repos/"+owner+"/"+repoName+"/actions/artifacts?per_page=100&page=2", pat)
	base := fmt.Sprintf("%srepositories/%d/actions/artifacts?per_page=100&page=", e.s.URL(), e.repo.ID)
	wantLink := fmt.Sprintf(`<%s1>; rel="prev", <%s3>; rel="next", <%s3>; rel="last", <%s1>; rel="first"`, base, base, base, base)
	if got := resp2.Header.Get("Link"); got != wantLink {
		t.Fatalf("Link =\n%s\nwant\n%s", got, wantLink)
	}
	if l := decode[artifactList](t, body); len(l.Artifacts) != 100 || l.TotalCount != 250 {
		t.Fatalf("page 2: %d artifacts of %d", len(l.Artifacts), l.TotalCount)
	}

	// per_page above 100 is capped at 100.
	resp3, body := e.call(t, "GET", "repos/"+owner+"/"+repoName+"/actions/artifacts?per_page=500", pat)
	if l := decode[artifactList](t, body); len(l.Artifacts) != 100 {
		t.Fatalf("per_page=500 gave %d artifacts, want 100", len(l.Artifacts))
	}
	if !strings.Contains(resp3.Header.Get("Link"), `page=3>; rel="last"`) {
		t.Fatalf("per_page=500 Link %q lacks last page 3", resp3.Header.Get("Link"))
	}

	// A client that follows the Link URLs literally (the /repositories/{id}
	// form) reaches every artifact too.
	next := e.s.URL() + "repos/" + owner + "/" + repoName + "/actions/artifacts?per_page=100"
	var followed int
	for next != "" {
		resp, body := e.call(t, "GET", next, pat)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", next, resp.StatusCode)
		}
		followed += len(decode[artifactList](t, body).Artifacts)
		next = ""
		for _, l := range strings.Split(resp.Header.Get("Link"), ", ") {
			if u, ok := strings.CutSuffix(l, `>; rel="next"`); ok {
				next = strings.TrimPrefix(u, "<")
			}
		}
	}
	if followed != 250 {
		t.Fatalf("following Link next reached %d artifacts, want 250", followed)
	}
}

func TestListNameFilterRunListAndDigest(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	run2 := e.s.AddRun(owner, repoName, ghsim.RunSpec{Attempt: 2})
	// Re-run attempts upload artifacts with the same name in one run.
	a1 := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 3000, Seed: 11})
	a2 := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 5000, Seed: 12})
	e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "logs", Size: 10})
	a4 := e.s.AddArtifact(owner, repoName, run2.ID, ghsim.ArtifactSpec{Name: "dist", Size: 10})

	_, body := e.call(t, "GET", "repos/"+owner+"/"+repoName+"/actions/artifacts?name=dist", pat)
	l := decode[artifactList](t, body)
	if l.TotalCount != 3 || len(l.Artifacts) != 3 {
		t.Fatalf("name=dist: total %d, %d artifacts; want 3", l.TotalCount, len(l.Artifacts))
	}
	for _, a := range l.Artifacts {
		if a.GetName() != "dist" {
			t.Fatalf("name filter returned %q", a.GetName())
		}
	}

	// The run's list: ascending, only that run, name filter too.
	req, err := e.gh.NewRequest("GET", fmt.Sprintf("repos/%s/%s/actions/runs/%d/artifacts?name=dist", owner, repoName, e.run.ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	var rl artifactList
	if _, err := e.gh.Do(t.Context(), req, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.TotalCount != 2 || rl.Artifacts[0].GetID() != a1.ID || rl.Artifacts[1].GetID() != a2.ID {
		t.Fatalf("run list name=dist = %+v, want artifacts %d and %d", rl, a1.ID, a2.ID)
	}
	for _, a := range rl.Artifacts {
		if a.WorkflowRun.GetID() != e.run.ID || a.WorkflowRun.GetRepositoryID() != e.repo.ID || a.WorkflowRun.GetHeadSHA() != e.run.HeadSHA {
			t.Fatalf("workflow_run = %+v", a.WorkflowRun)
		}
		wantURL := fmt.Sprintf("%srepos/%s/%s/actions/artifacts/%d", e.s.URL(), owner, repoName, a.GetID())
		if a.GetURL() != wantURL || a.GetArchiveDownloadURL() != wantURL+"/zip" {
			t.Fatalf("urls %q %q, want %q(/zip)", a.GetURL(), a.GetArchiveDownloadURL(), wantURL)
		}
		if !strings.HasPrefix(a.GetNodeID(), "MDg6QXJ0aWZhY3") {
			t.Fatalf("node_id %q is not an artifact node id", a.GetNodeID())
		}
	}
	// The digest is the sha256 of what the blob host serves.
	body1 := readAll(t, ghsim.NewContent(11, 3000))
	if got, want := *rl.Artifacts[0].Digest, "sha256:"+sha256Hex(body1); got != want {
		t.Fatalf("digest %s, want %s", got, want)
	}
	if sum, err := e.s.SHA256(a1.ID); err != nil || "sha256:"+sum != *rl.Artifacts[0].Digest {
		t.Fatalf("SHA256(%d) = %s, %v", a1.ID, sum, err)
	}

	_, body = e.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/runs/%d/artifacts", owner, repoName, run2.ID), pat)
	if l := decode[artifactList](t, body); l.TotalCount != 1 || l.Artifacts[0].GetID() != a4.ID {
		t.Fatalf("run 2 list = %+v", l)
	}
	for _, path := range []string{
		fmt.Sprintf("repos/%s/%s/actions/runs/%d/artifacts", owner, repoName, 999),
		fmt.Sprintf("repos/%s/%s/actions/artifacts", owner, "nope"),
	} {
		if resp, _ := e.call(t, "GET", path, pat); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestGetDeleteLifecycle(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "x", Size: 100})
	ctx := t.Context()
	got, _, err := e.gh.Actions.GetArtifact(ctx, owner, repoName, a.ID)
	if err != nil || got.GetID() != a.ID || got.GetSizeInBytes() != 100 || got.GetExpired() {
		t.Fatalf("get = %+v, %v", got, err)
	}
	blob := e.zipURL(t, a.ID) // taken before the delete

	resp, err := e.gh.Actions.DeleteArtifact(ctx, owner, repoName, a.ID)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v, %v", resp, err)
	}
	if !e.s.Deleted(a.ID) {
		t.Fatal("Deleted = false after DELETE")
	}
	// Gone everywhere.
	for _, path := range []string{
		fmt.Sprintf("repos/%s/%s/actions/artifacts/%d", owner, repoName, a.ID),
		fmt.Sprintf("repos/%s/%s/actions/artifacts/%d/zip", owner, repoName, a.ID),
	} {
		if resp, body := e.call(t, "GET", path, pat); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"message":"Not Found"`) {
			t.Errorf("GET %s after delete: %d %s", path, resp.StatusCode, body)
		}
	}
	list, _, err := e.gh.Actions.ListArtifacts(ctx, owner, repoName, nil)
	if err != nil || list.GetTotalCount() != 0 {
		t.Fatalf("list after delete: %d artifacts, %v", list.GetTotalCount(), err)
	}
	if resp, _ := e.call(t, "GET", blob, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("blob after delete: %d, want 404", resp.StatusCode)
	}
	// A retried delete answers 404 (and has succeeded).
	_, err = e.gh.Actions.DeleteArtifact(ctx, owner, repoName, a.ID)
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete: %v, want 404", err)
	}
	st := e.s.Stats()
	if len(st.Deletes) != 2 || st.Deletes[0].Status != 204 || st.Deletes[1].Status != 404 || st.Deletes[0].ArtifactID != a.ID {
		t.Fatalf("Stats.Deletes = %+v", st.Deletes)
	}
	if st.Deletes[1].Wall.Before(st.Deletes[0].Wall) || st.Deletes[0].Wall.IsZero() {
		t.Fatalf("delete wall times out of order: %+v", st.Deletes)
	}
	if st.Count(ghsim.RouteDelete, 204) != 1 || st.Count(ghsim.RouteDelete, 0) != 2 {
		t.Fatalf("delete counts = %v", st.Requests[ghsim.RouteDelete])
	}
}

func TestDownloadRedirect(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 2<<20 + 7, Seed: 5})
	u, resp, err := e.gh.Actions.DownloadArtifact(t.Context(), owner, repoName, a.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	api := mustURL(e.s.URL())
	if u.Host == api.Host || u.Hostname() != "localhost" {
		t.Fatalf("Location host %q, want a host other than the API's %q", u.Host, api.Host)
	}
	if u.Query().Get("se") == "" || u.Query().Get("sig") == "" {
		t.Fatalf("Location %s is not signed with an expiry", u)
	}
	got, body := e.call(t, "GET", u.String(), "")
	if got.StatusCode != http.StatusOK {
		t.Fatalf("blob: %d %s", got.StatusCode, body)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("Content-Type %q, want application/zip", ct)
	}
	if cd := got.Header.Get("Content-Disposition"); cd != `attachment; filename="dist.zip"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if got.ContentLength != a.Size || int64(len(body)) != a.Size || got.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("Content-Length %d, body %d, Accept-Ranges %q; want %d, bytes", got.ContentLength, len(body), got.Header.Get("Accept-Ranges"), a.Size)
	}
	digest, err := e.s.Digest(a.ID)
	if err != nil || digest != "sha256:"+sha256Hex(body) {
		t.Fatalf("body hash %s does not match the digest %s (%v)", sha256Hex(body), digest, err)
	}
	// A tampered URL is refused.
	q := u.Query()
	q.Set("se", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	u.RawQuery = q.Encode()
	if resp, body := e.call(t, "GET", u.String(), ""); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AuthenticationFailed</Code>") {
		t.Fatalf("tampered URL: %d %s", resp.StatusCode, body)
	}
	st := e.s.Stats()
	if st.BlobBytes != a.Size || st.BlobBytesByArtifact[a.ID] != a.Size || st.Count(ghsim.RouteZip, 302) != 1 {
		t.Fatalf("stats: blob bytes %d (%v), zip %v", st.BlobBytes, st.BlobBytesByArtifact, st.Requests[ghsim.RouteZip])
	}
}

func TestDownloadURLExpires(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{URLTTL: 30 * time.Second})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10})
	blob := e.zipURL(t, a.ID)
	e.clock.Advance(28 * time.Second)
	if resp, _ := e.call(t, "GET", blob, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("before expiry: %d, want 200", resp.StatusCode)
	}
	e.clock.Advance(3 * time.Second)
	resp, body := e.call(t, "GET", blob, "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AuthenticationFailed</Code>") ||
		!strings.Contains(string(body), "Signed expiry time") || resp.Header.Get("x-ms-error-code") != "AuthenticationFailed" {
		t.Fatalf("after expiry: %d %s", resp.StatusCode, body)
	}
	// A fresh redirect works again.
	if resp, _ := e.call(t, "GET", e.zipURL(t, a.ID), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh URL: %d", resp.StatusCode)
	}
}

func TestExpiredURLFault(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10})
	e.s.Inject(ghsim.RouteZip, 1, ghsim.ExpiredURL())
	if resp, body := e.call(t, "GET", e.zipURL(t, a.ID), ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("URL from the faulted 302: %d %s, want 403", resp.StatusCode, body)
	}
	if resp, _ := e.call(t, "GET", e.zipURL(t, a.ID), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("next URL: %d, want 200", resp.StatusCode)
	}
}

func TestExpiredArtifacts(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	old := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "old", Size: 10, Expired: true})
	later := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "later", Size: 10, ExpiresAt: e.clock.Now().Add(time.Hour)})
	live := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "live", Size: 10})
	zip := func(id int64) (*http.Response, []byte) {
		return e.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d/zip", owner, repoName, id), pat)
	}
	if resp, body := zip(old.ID); resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "expired") {
		t.Fatalf("expired artifact zip: %d %s, want 410", resp.StatusCode, body)
	}
	// go-github v66 returns a plain error for the 410.
	if _, resp, err := e.gh.Actions.DownloadArtifact(t.Context(), owner, repoName, old.ID, 0); err == nil || resp.StatusCode != http.StatusGone {
		t.Fatalf("go-github download of an expired artifact: %v, %v", resp, err)
	}
	if resp, _ := zip(later.ID); resp.StatusCode != http.StatusFound {
		t.Fatalf("not yet expired: %d", resp.StatusCode)
	}
	e.clock.Advance(time.Hour)
	if resp, _ := zip(later.ID); resp.StatusCode != http.StatusGone {
		t.Fatalf("after expires_at: %d, want 410", resp.StatusCode)
	}
	if !e.s.Expire(live.ID) {
		t.Fatal("Expire of a known artifact reported false")
	}
	_, body := e.call(t, "GET", "repos/"+owner+"/"+repoName+"/actions/artifacts", pat)
	l := decode[artifactList](t, body)
	if l.TotalCount != 3 {
		t.Fatalf("expired artifacts are still listed by default: total %d, want 3", l.TotalCount)
	}
	for _, a := range l.Artifacts {
		if !a.GetExpired() {
			t.Errorf("artifact %s listed with expired=false", a.GetName())
		}
	}

	// Since 2026-09-24 GitHub hides expired artifacts.
	h := setup(t, ghsim.Options{HideExpired: true})
	gone := h.s.AddArtifact(owner, repoName, h.run.ID, ghsim.ArtifactSpec{Size: 1, Expired: true})
	h.s.AddArtifact(owner, repoName, h.run.ID, ghsim.ArtifactSpec{Size: 1})
	_, body = h.call(t, "GET", "repos/"+owner+"/"+repoName+"/actions/artifacts", pat)
	if l := decode[artifactList](t, body); l.TotalCount != 1 || l.Artifacts[0].GetID() == gone.ID {
		t.Fatalf("HideExpired list = %+v", l)
	}
	for _, p := range []string{"", "/zip"} {
		if resp, _ := h.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d%s", owner, repoName, gone.ID, p), pat); resp.StatusCode != http.StatusNotFound {
			t.Errorf("HideExpired GET artifact%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestBlobRejectsAuthorization(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10})
	resp, body := e.call(t, "GET", e.zipURL(t, a.ID), pat)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "InvalidAuthenticationInfo") {
		t.Fatalf("blob with Authorization: %d %s, want 400", resp.StatusCode, body)
	}
	// The trap of the notes: a client whose transport adds the token follows
	// the 302 with the token, and the blob host refuses it.
	follow := github.NewClient(&http.Client{Transport: e.tr}).WithAuthToken(pat).Client()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", fmt.Sprintf("%srepos/%s/%s/actions/artifacts/%d/zip", e.s.URL(), owner, repoName, a.ID), nil)
	fresp, err := follow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	fresp.Body.Close()
	if fresp.StatusCode != http.StatusBadRequest {
		t.Fatalf("auth transport following the redirect: %d, want 400", fresp.StatusCode)
	}
	if st := e.s.Stats(); st.AuthRejected != 2 || st.BlobBytes != 0 {
		t.Fatalf("AuthRejected %d, BlobBytes %d; want 2, 0", st.AuthRejected, st.BlobBytes)
	}
}

func TestBlobRange(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	const size = 3<<20 + 11
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: size})
	c, err := e.s.Content(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	full := readAll(t, c)
	blob := e.zipURL(t, a.ID)
	// The whole body is that content: a zip whose entries read with
	// correct CRC-32s.
	resp, body := e.call(t, "GET", blob, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" || !bytes.Equal(body, full) {
		t.Fatalf("GET: %d %q, %d bytes (equal to Content: %v)", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), bytes.Equal(body, full))
	}
	if zr, _ := openZip(t, bytes.NewReader(body), size); len(zr.File) != 3 {
		t.Fatalf("%d zip entries, want 3", len(zr.File))
	}
	for _, tc := range []struct {
		h          string
		start, end int64
	}{
		{"bytes=1048576-", 1 << 20, size - 1},
		{"bytes=100-199", 100, 199},
		{"bytes=-10", size - 10, size - 1},
		{"bytes=5-999999999", 5, size - 1},
		{"bytes=1048600-1048700", 1048600, 1048700}, // the second entry's local header
		{"bytes=3145600-3145700", 3145600, 3145700}, // the central directory and end record
	} {
		resp, body := e.call(t, "GET", blob, "", "Range", tc.h)
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("%s: %d, want 206", tc.h, resp.StatusCode)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, size); resp.Header.Get("Content-Range") != want {
			t.Errorf("%s: Content-Range %q, want %q", tc.h, resp.Header.Get("Content-Range"), want)
		}
		if resp.ContentLength != tc.end-tc.start+1 || !bytes.Equal(body, full[tc.start:tc.end+1]) {
			t.Fatalf("%s: %d bytes that differ from the full body's slice", tc.h, len(body))
		}
	}
	resp, _ = e.call(t, "GET", blob, "", "Range", fmt.Sprintf("bytes=%d-", size))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) {
		t.Fatalf("range past the end: %d %q, want 416", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	resp, body = e.call(t, "HEAD", blob, "")
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size || len(body) != 0 {
		t.Fatalf("HEAD: %d, length %d, body %d", resp.StatusCode, resp.ContentLength, len(body))
	}
	st := e.s.Stats()
	starts := []int64{}
	for _, r := range st.Ranges {
		starts = append(starts, r.Start)
	}
	if want := []int64{1 << 20, 100, size - 10, 5, 1048600, 3145600, size}; !slices.Equal(starts, want) {
		t.Fatalf("range starts %v, want %v", starts, want)
	}

	// An artifact without range support serves the whole body.
	nr := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 1000, NoRange: true})
	resp, body = e.call(t, "GET", e.zipURL(t, nr.ID), "", "Range", "bytes=10-")
	if resp.StatusCode != http.StatusOK || len(body) != 1000 || resp.Header.Get("Accept-Ranges") != "" {
		t.Fatalf("NoRange: %d, %d bytes, Accept-Ranges %q; want 200, 1000, none", resp.StatusCode, len(body), resp.Header.Get("Accept-Ranges"))
	}
}

func TestRawLegacyAndDigestVariants(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	raw := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "report", Raw: true, FileName: "report.html", Size: 500})
	legacy := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "legacy", Size: 500, ReportedSize: 9000, NoDigest: true})
	wrong := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "wrong", Size: 500, WrongDigest: true})

	resp, body := e.call(t, "GET", e.zipURL(t, raw.ID), "")
	if resp.Header.Get("Content-Type") != "application/octet-stream" || resp.Header.Get("Content-Disposition") != `attachment; filename="report.html"` || len(body) != 500 {
		t.Fatalf("raw artifact: %q %q, %d bytes", resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"), len(body))
	}
	// An "archive: false" artifact is the plain file, no zip around it.
	if !bytes.Equal(body, readAll(t, ghsim.NewRawContent(raw.Seed, 500))) || bytes.HasPrefix(body, []byte("PK")) {
		t.Fatal("the raw artifact's body is not the plain generated stream")
	}
	if sum, _ := e.s.SHA256(raw.ID); sum != sha256Hex(body) {
		t.Fatalf("SHA256 of the raw artifact = %s, want %s", sum, sha256Hex(body))
	}

	_, body = e.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d", owner, repoName, legacy.ID), pat)
	if !bytes.Contains(body, []byte(`"digest":null`)) {
		t.Fatalf("NoDigest artifact JSON lacks \"digest\":null: %s", body)
	}
	la := decode[artifact](t, body)
	if la.GetSizeInBytes() != 9000 {
		t.Fatalf("size_in_bytes %d, want the reported 9000", la.GetSizeInBytes())
	}
	resp, body = e.call(t, "GET", e.zipURL(t, legacy.ID), "")
	if resp.ContentLength != 500 || len(body) != 500 {
		t.Fatalf("legacy download: Content-Length %d, %d bytes; want 500", resp.ContentLength, len(body))
	}

	_, body = e.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d", owner, repoName, wrong.ID), pat)
	wa := decode[artifact](t, body)
	_, blob := e.call(t, "GET", e.zipURL(t, wrong.ID), "")
	if wa.Digest == nil || !strings.HasPrefix(*wa.Digest, "sha256:") || *wa.Digest == "sha256:"+sha256Hex(blob) {
		t.Fatalf("WrongDigest advertises %v for a body hashing to %s", wa.Digest, sha256Hex(blob))
	}
}

func TestResetFault(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	const size = 4 << 20
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: size})
	e.s.Inject(ghsim.RouteBlob, 1, ghsim.ResetAfter(64<<10))
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.zipURL(t, a.ID), nil)
	resp, err := e.plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
		t.Fatalf("head of the cut response: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) >= size {
		t.Fatalf("read %d of %d bytes with err %v: the stream was not broken", len(got), size, err)
	}
	full := readAll(t, ghsim.NewContent(a.Seed, size))
	if !bytes.Equal(got, full[:len(got)]) {
		t.Fatal("the bytes before the reset are wrong")
	}
	// Resume where it broke, with a fresh URL and a Range.
	rresp, rest := e.call(t, "GET", e.zipURL(t, a.ID), "", "Range", fmt.Sprintf("bytes=%d-", len(got)))
	if rresp.StatusCode != http.StatusPartialContent || !bytes.Equal(append(got, rest...), full) {
		t.Fatalf("resume: %d, %d+%d bytes", rresp.StatusCode, len(got), len(rest))
	}
	if st := e.s.Stats(); st.BlobBytesByArtifact[a.ID] != 64<<10+int64(len(rest)) {
		t.Fatalf("blob bytes %d, want %d", st.BlobBytesByArtifact[a.ID], 64<<10+len(rest))
	}
}

func TestThrottleFault(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	const size, rate = 256 << 10, 256 << 10 // one second's worth
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: size})
	blob := e.zipURL(t, a.ID)
	e.s.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(rate))
	began := time.Now()
	resp, body := e.call(t, "GET", blob, "")
	took := time.Since(began)
	if resp.StatusCode != http.StatusOK || len(body) != size {
		t.Fatalf("throttled download: %d, %d bytes", resp.StatusCode, len(body))
	}
	// The last 1/20 s chunk leaves at 0.95 s.
	if took < 800*time.Millisecond {
		t.Fatalf("256 KiB at 256 KiB/s took %v, want about 1 s", took)
	}
}

func TestServerErrorFaults(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10})
	get := fmt.Sprintf("repos/%s/%s/actions/artifacts/%d", owner, repoName, a.ID)
	e.s.Inject(ghsim.RouteGet, 2, ghsim.ServerError(502))
	e.s.Inject(ghsim.RouteGet, 1, ghsim.ServerError(500))
	var codes []int
	for range 4 {
		resp, _ := e.call(t, "GET", get, pat)
		codes = append(codes, resp.StatusCode)
	}
	if want := []int{502, 502, 500, 200}; !slices.Equal(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
	// A fault on one route leaves the others alone.
	blob := e.zipURL(t, a.ID)
	e.s.Inject(ghsim.RouteBlob, -1, ghsim.ServerError(503))
	for range 2 {
		resp, body := e.call(t, "GET", blob, "")
		if resp.StatusCode != 503 || !strings.Contains(string(body), "<Code>ServerBusy</Code>") {
			t.Fatalf("blob with a standing 503: %d %s", resp.StatusCode, body)
		}
	}
	e.s.ClearFaults()
	if resp, _ := e.call(t, "GET", blob, ""); resp.StatusCode != 200 {
		t.Fatalf("after ClearFaults: %d", resp.StatusCode)
	}
	if st := e.s.Stats(); st.Count(ghsim.RouteGet, 502) != 2 || st.Count(ghsim.RouteBlob, 503) != 2 {
		t.Fatalf("counts %v", st.Requests)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{RateLimit: 5})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10})
	ctx := t.Context()
	var remaining []int
	for range 3 {
		_, resp, err := e.gh.Actions.GetArtifact(ctx, owner, repoName, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		remaining = append(remaining, resp.Rate.Remaining)
		if resp.Rate.Limit != 5 || resp.Header.Get("X-RateLimit-Resource") != "core" || resp.Rate.Reset.Before(e.clock.Now()) {
			t.Fatalf("rate %+v, resource %q", resp.Rate, resp.Header.Get("X-RateLimit-Resource"))
		}
	}
	if !slices.Equal(remaining, []int{4, 3, 2}) {
		t.Fatalf("remaining %v, want [4 3 2]", remaining)
	}
	e.call(t, "GET", "repos/"+owner+"/"+repoName, pat)
	e.call(t, "GET", "repos/"+owner+"/"+repoName, pat)
	resp, body := e.call(t, "GET", "repos/"+owner+"/"+repoName, pat)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-RateLimit-Remaining") != "0" ||
		!strings.Contains(string(body), "API rate limit exceeded") || resp.Header.Get("X-RateLimit-Used") != "5" {
		t.Fatalf("exhausted: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	reset, _ := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if reset <= e.clock.Now().Unix() {
		t.Fatalf("reset %d is not in the future", reset)
	}
	// go-github types it.
	_, _, err := e.client(pat).Actions.GetArtifact(ctx, owner, repoName, a.ID)
	var rle *github.RateLimitError
	if !errors.As(err, &rle) {
		t.Fatalf("go-github error %T %v, want *RateLimitError", err, err)
	}
	// The window ends on the server clock.
	e.clock.Advance(time.Hour + time.Second)
	if resp, _ := e.call(t, "GET", "repos/"+owner+"/"+repoName, pat); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "4" {
		t.Fatalf("new window: %d remaining %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}

	// Installation tokens share their installation's budget, with GitHub's
	// message.
	tok, _, err := e.s.InstallationToken(installationID)
	if err != nil {
		t.Fatal(err)
	}
	if !e.s.SetRateLimit(tok, 0, e.clock.Now().Add(10*time.Minute)) {
		t.Fatal("SetRateLimit of an issued token reported false")
	}
	tok2, _, _ := e.s.InstallationToken(installationID)
	resp, body = e.call(t, "GET", "repos/"+owner+"/"+repoName, tok2)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), fmt.Sprintf("API rate limit exceeded for installation ID %d", installationID)) {
		t.Fatalf("installation budget: %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-RateLimit-Reset"); got != strconv.FormatInt(e.clock.Now().Add(10*time.Minute).Unix(), 10) {
		t.Fatalf("reset %s, want the one set", got)
	}
	e.s.SetInstallationRateLimit(installationID, 3, time.Time{})
	if resp, _ := e.call(t, "GET", "repos/"+owner+"/"+repoName, tok); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "2" {
		t.Fatalf("after SetInstallationRateLimit: %d remaining %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
	if e.s.SetRateLimit("ghs_unknown", 1, time.Time{}) {
		t.Fatal("SetRateLimit of an unknown token reported true")
	}
}

func TestSecondaryLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10})
	list := "repos/" + owner + "/" + repoName + "/actions/artifacts"
	e.s.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(429, 30*time.Second))
	resp, body := e.call(t, "GET", list, pat)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "30" ||
		!strings.Contains(string(body), "You have exceeded a secondary rate limit") {
		t.Fatalf("secondary 429: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "" {
		t.Fatal("secondary limit answer lacks the primary rate-limit headers")
	}
	if resp, _ := e.call(t, "GET", list, pat); resp.StatusCode != 200 {
		t.Fatalf("after the fault: %d", resp.StatusCode)
	}
	// The 403 variant is what go-github v66 types as an abuse error.
	e.s.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(403, 45*time.Second))
	_, _, err := e.client(pat).Actions.ListArtifacts(t.Context(), owner, repoName, nil)
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) || abuse.GetRetryAfter() != 45*time.Second {
		t.Fatalf("go-github error %T %v, want *AbuseRateLimitError with 45 s", err, err)
	}
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{TokenTTL: 10 * time.Minute})
	path := "repos/" + owner + "/" + repoName
	resp, body := e.call(t, "GET", path, "")
	if resp.StatusCode != http.StatusUnauthorized || decode[map[string]string](t, body)["message"] != "Requires authentication" {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	resp, body = e.call(t, "GET", path, "ghp_wrong")
	if resp.StatusCode != http.StatusUnauthorized || decode[map[string]string](t, body)["message"] != "Bad credentials" {
		t.Fatalf("bad token: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-RateLimit-Limit") != "60" {
		t.Fatalf("401 rate limit %q, want the unauthenticated 60", resp.Header.Get("X-RateLimit-Limit"))
	}
	if resp, _ := e.call(t, "GET", path, pat, "Authorization", "token "+pat); resp.StatusCode != 200 {
		t.Fatalf(`"token" scheme: %d`, resp.StatusCode)
	}
	if resp, _ := e.call(t, "GET", path, pat, "X-GitHub-Api-Version", "1999-01-01"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown API version: %d, want 400", resp.StatusCode)
	}
	tok, exp, err := e.s.InstallationToken(installationID)
	if err != nil || !strings.HasPrefix(tok, "ghs_") || len(tok) != 40 || !exp.Equal(e.clock.Now().Add(10*time.Minute).Truncate(time.Second)) {
		t.Fatalf("token %q expires %v (%v)", tok, exp, err)
	}
	if resp, _ := e.call(t, "GET", path, tok); resp.StatusCode != 200 {
		t.Fatalf("installation token: %d", resp.StatusCode)
	}
	e.clock.Advance(10 * time.Minute)
	if resp, _ := e.call(t, "GET", path, tok); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired installation token: %d, want 401", resp.StatusCode)
	}
	if _, _, err := e.s.InstallationToken(999); !errors.Is(err, ghsim.ErrNotFound) {
		t.Fatalf("token for an unknown installation: %v", err)
	}
}

func TestRepoAndRun(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	e.s.SetPrivate(owner, repoName, true)
	ctx := t.Context()
	repo, _, err := e.gh.Repositories.Get(ctx, strings.ToUpper(owner), repoName) // names are case-insensitive
	if err != nil {
		t.Fatal(err)
	}
	if repo.GetID() != e.repo.ID || repo.GetFullName() != owner+"/"+repoName || repo.GetOwner().GetLogin() != owner || !repo.GetPrivate() {
		t.Fatalf("repo = %+v", repo)
	}
	run, _, err := e.gh.Actions.GetWorkflowRunByID(ctx, owner, repoName, e.run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.GetID() != e.run.ID || run.GetRunAttempt() != 1 || run.GetStatus() != "completed" || run.GetConclusion() != "success" ||
		run.GetHeadSHA() != e.run.HeadSHA || run.GetRepository().GetFullName() != owner+"/"+repoName || run.GetPath() != e.run.Path ||
		!strings.HasSuffix(run.GetHTMLURL(), fmt.Sprintf("/actions/runs/%d", e.run.ID)) {
		t.Fatalf("run = %+v", run)
	}
	if _, _, err := e.gh.Actions.GetWorkflowRunByID(ctx, owner, repoName, 1); err == nil {
		t.Fatal("unknown run: no error")
	}
	var er *github.ErrorResponse
	if _, _, err := e.gh.Repositories.Get(ctx, owner, "missing"); !errors.As(err, &er) || er.Response.StatusCode != 404 {
		t.Fatalf("unknown repo: %v", err)
	}
	if st := e.s.Stats(); st.Count(ghsim.RouteRun, 404) != 1 || st.Count(ghsim.RouteRepo, 200) != 1 {
		t.Fatalf("counts %v", st.Requests)
	}
}

func TestRunPayload(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	run := e.s.AddRun(owner, repoName, ghsim.RunSpec{Attempt: 3, Name: "Release", HeadBranch: "v2", Conclusion: "failure"})
	b, err := e.s.RunPayload(owner, repoName, run.ID, installationID)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Action       string `json:"action"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
		Repository struct {
			ID       int64  `json:"id"`
			FullName string `json:"full_name"`
		} `json:"repository"`
		WorkflowRun struct {
			ID           int64  `json:"id"`
			RunAttempt   int    `json:"run_attempt"`
			Name         string `json:"name"`
			HeadBranch   string `json:"head_branch"`
			Conclusion   string `json:"conclusion"`
			ArtifactsURL string `json:"artifacts_url"`
		} `json:"workflow_run"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.Action != "completed" || p.Installation.ID != installationID || p.Repository.ID != e.repo.ID ||
		p.Repository.FullName != owner+"/"+repoName || p.WorkflowRun.ID != run.ID || p.WorkflowRun.RunAttempt != 3 ||
		p.WorkflowRun.Name != "Release" || p.WorkflowRun.HeadBranch != "v2" || p.WorkflowRun.Conclusion != "failure" {
		t.Fatalf("payload = %+v", p)
	}
	// The payload's API URLs point at the simulator, and the run's
	// artifacts_url answers.
	if !strings.HasPrefix(p.WorkflowRun.ArtifactsURL, e.s.URL()) {
		t.Fatalf("artifacts_url %q is not on %s", p.WorkflowRun.ArtifactsURL, e.s.URL())
	}
	if resp, _ := e.call(t, "GET", p.WorkflowRun.ArtifactsURL, pat); resp.StatusCode != 200 {
		t.Fatalf("GET artifacts_url: %d", resp.StatusCode)
	}
	if err := github.ValidateSignature(ghsim.Sign("s3cret", b), b, []byte("s3cret")); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if _, err := e.s.RunPayload(owner, repoName, 12345, 0); !errors.Is(err, ghsim.ErrNotFound) {
		t.Fatalf("payload of an unknown run: %v", err)
	}
}

func TestVisibleAt(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	late := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 1, VisibleAt: e.clock.Now().Add(5 * time.Second)})
	list := fmt.Sprintf("repos/%s/%s/actions/runs/%d/artifacts", owner, repoName, e.run.ID)
	_, body := e.call(t, "GET", list, pat)
	if l := decode[artifactList](t, body); l.TotalCount != 0 {
		t.Fatalf("artifact listed before VisibleAt: %+v", l)
	}
	if resp, _ := e.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d", owner, repoName, late.ID), pat); resp.StatusCode != 404 {
		t.Fatalf("get before VisibleAt: %d", resp.StatusCode)
	}
	e.clock.Advance(5 * time.Second)
	_, body = e.call(t, "GET", list, pat)
	if l := decode[artifactList](t, body); l.TotalCount != 1 || l.Artifacts[0].GetID() != late.ID {
		t.Fatalf("artifact not listed after VisibleAt: %+v", l)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	t.Parallel()
	s, err := ghsim.New(ghsim.Options{Tokens: []string{pat}})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	s.AddRepo(0, owner, repoName)
	run := s.AddRun(owner, repoName, ghsim.RunSpec{})
	a := s.AddArtifact(owner, repoName, run.ID, ghsim.ArtifactSpec{Size: 1 << 20})
	s.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(1024)) // would take 17 minutes
	req, _ := http.NewRequest("GET", fmt.Sprintf("%srepos/%s/%s/actions/artifacts/%d/zip", s.URL(), owner, repoName, a.ID), nil)
	req.Header.Set("Authorization", "token "+pat)
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	blob, err := (&http.Client{Transport: tr}).Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Body.Close()
	if _, err := io.ReadFull(blob.Body, make([]byte, 10)); err != nil {
		t.Fatalf("first bytes: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a throttled stream within 10 s")
	}
	if _, err := io.ReadAll(blob.Body); err == nil {
		t.Fatal("the stream ended cleanly after Close, want an error")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	var ids []int64
	for i := range 8 {
		ids = append(ids, e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "same", Size: 200<<10 + int64(i)}).ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(ids))
	ctx := t.Context()
	for _, id := range ids {
		wg.Go(func() {
			resp, _, err := e.do(ctx, "GET", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d/zip", owner, repoName, id), pat)
			if err != nil {
				errs <- err
				return
			}
			_, body, err := e.do(ctx, "GET", resp.Header.Get("Location"), "")
			if err != nil {
				errs <- err
				return
			}
			if d, _ := e.s.Digest(id); d != "sha256:"+sha256Hex(body) {
				errs <- fmt.Errorf("artifact %d: body does not match its digest", id)
			}
		})
		wg.Go(func() {
			resp, _, err := e.do(ctx, "GET", "repos/"+owner+"/"+repoName+"/actions/artifacts?name=same", pat)
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("list: %d", resp.StatusCode)
			}
			if err != nil {
				errs <- err
			}
		})
		wg.Go(func() { _ = e.s.Stats() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := e.s.Stats(); st.Count(ghsim.RouteBlob, 200) != len(ids) || st.Count(ghsim.RouteList, 200) != len(ids) {
		t.Fatalf("counts %v", st.Requests)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []ghsim.Options{
		{URLTTL: -time.Second},
		{RateLimit: -1},
		{AppID: 1},
		{Tokens: []string{""}},
		{APIAddr: "256.0.0.1:0"},
	} {
		s, err := ghsim.New(o)
		if err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", o)
		} else if !strings.HasPrefix(err.Error(), "ghsim: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}
