package ghclient_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

const testAppID = 4242

// newAppSim returns a simulator that knows the App and Clients that
// authenticate as it.
func newAppSim(t *testing.T) (*ghsim.Server, *ghclient.Clients) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ghsim.New(ghsim.Options{AppID: testAppID, AppPrivateKey: key, Tokens: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cs, err := ghclient.New(ghclient.Config{APIURL: sim.URL(), AppID: testAppID, PrivateKey: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	return sim, cs
}

func tokenClient(t *testing.T, sim *ghsim.Server) *ghclient.Client {
	t.Helper()
	cs, err := ghclient.New(ghclient.Config{APIURL: sim.URL(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cs.Installation(0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestListRepoArtifactsReadsEveryPage(t *testing.T) {
	t.Parallel()
	sim, _ := newSim(t)
	gh := tokenClient(t, sim)
	sim.AddRepo(0, "o", "r")
	sim.AddRepo(0, "o", "other")
	runs := []ghsim.Run{sim.AddRun("o", "r", ghsim.RunSpec{}), sim.AddRun("o", "r", ghsim.RunSpec{})}
	otherRun := sim.AddRun("o", "other", ghsim.RunSpec{})
	sim.AddArtifact("o", "other", otherRun.ID, ghsim.ArtifactSpec{Name: "elsewhere"})
	want := map[int64]ghsim.Artifact{}
	for i := range 230 {
		a := sim.AddArtifact("o", "r", runs[i%2].ID, ghsim.ArtifactSpec{Name: fmt.Sprint("a", i), Size: int64(i), NoDigest: i == 5, Expired: i == 6})
		want[a.ID] = a
	}
	arts, err := gh.ListRepoArtifacts(t.Context(), "o", "r")
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 230 {
		t.Fatalf("listed %d artifacts, want 230", len(arts))
	}
	if got := sim.Stats().Count(ghsim.RouteList, 200); got != 3 {
		t.Errorf("%d list requests, want 3 pages of 100", got)
	}
	for _, a := range arts {
		w, ok := want[a.ID]
		if !ok {
			t.Fatalf("unexpected artifact %d (%s)", a.ID, a.Name)
		}
		delete(want, a.ID)
		sum, _ := sim.SHA256(a.ID)
		if a.RunID != w.RunID || a.Name != w.Name || a.Expired != w.Expired || a.CreatedAt.IsZero() {
			t.Errorf("artifact %d: %+v, want %+v", a.ID, a, w)
		}
		if (w.NoDigest && a.Digest != "") || (!w.NoDigest && a.Digest != sum) {
			t.Errorf("artifact %d: digest %q (no_digest %v), want %q", a.ID, a.Digest, w.NoDigest, sum)
		}
	}
}

func TestListRepoArtifactsPageErrors(t *testing.T) {
	t.Parallel()
	sim, _ := newSim(t)
	gh := tokenClient(t, sim)
	sim.AddRepo(0, "o", "r")
	run := sim.AddRun("o", "r", ghsim.RunSpec{})
	sim.AddArtifact("o", "r", run.ID, ghsim.ArtifactSpec{})

	sim.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(429, 5*time.Second))
	_, _, err := gh.ListRepoArtifactsPage(t.Context(), "o", "r", 1)
	var ra *archive.RetryAfterError
	if !errors.As(err, &ra) || time.Until(ra.At) < 3*time.Second {
		t.Fatalf("rate-limited page: %v, want RetryAfterError ~5s ahead", err)
	}
	arts, next, err := gh.ListRepoArtifactsPage(t.Context(), "o", "r", 1)
	if err != nil || len(arts) != 1 || next != 0 {
		t.Fatalf("the same page again: %d artifacts, next %d, %v", len(arts), next, err)
	}
	if _, _, err := gh.ListRepoArtifactsPage(t.Context(), "o", "missing", 1); !errors.Is(err, ghclient.ErrNotFound) {
		t.Fatalf("missing repository: %v, want ErrNotFound", err)
	}
}

func TestGetRun(t *testing.T) {
	t.Parallel()
	sim, _ := newSim(t)
	gh := tokenClient(t, sim)
	repo := sim.AddRepo(0, "octo", "hello")
	sim.SetPrivate("octo", "hello", true)
	sim.AddRepo(0, "octo", "other")
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	run := sim.AddRun("octo", "hello", ghsim.RunSpec{Attempt: 3, Name: "Release", Path: ".github/workflows/release.yml",
		Event: "workflow_dispatch", HeadBranch: "release/1.x", Conclusion: "failure", CreatedAt: created, PullRequests: []int64{17, 4}})

	got, err := gh.GetRun(t.Context(), "octo", "hello", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, w := got.WorkflowRun, run
	if r.ID != w.ID || r.RunAttempt != 3 || r.Name != "Release" || r.Path != w.Path || r.Event != w.Event ||
		r.HeadBranch != w.HeadBranch || r.HeadSHA != w.HeadSHA || r.Conclusion != "failure" || r.Status != "completed" ||
		!r.CreatedAt.Equal(created) || r.WorkflowID == 0 || r.HTMLURL == "" {
		t.Errorf("run %+v, want %+v", r, w)
	}
	if !slices.Equal(r.PullRequests, []int64{17, 4}) {
		t.Errorf("pull requests %v, want [17 4]", r.PullRequests)
	}
	if got.Repository.ID != repo.ID || got.Repository.Owner != "octo" || got.Repository.Name != "hello" ||
		got.Repository.FullName != "octo/hello" || !got.Repository.Private {
		t.Errorf("repository %+v, want %+v (private)", got.Repository, repo)
	}
	if r, err := gh.GetRepo(t.Context(), "OCTO", "Hello"); err != nil || r != got.Repository {
		t.Errorf("GetRepo with other case: %+v, %v; want %+v", r, err, got.Repository)
	}
	if _, err := gh.GetRepo(t.Context(), "octo", "nope"); !errors.Is(err, ghclient.ErrNotFound) {
		t.Errorf("unknown repository: %v, want ErrNotFound", err)
	}
	if _, err := gh.GetRun(t.Context(), "octo", "other", run.ID); !errors.Is(err, ghclient.ErrNotFound) {
		t.Errorf("run of another repository: %v, want ErrNotFound", err)
	}
	if _, err := gh.GetRun(t.Context(), "octo", "hello", 1); !errors.Is(err, ghclient.ErrNotFound) {
		t.Errorf("unknown run: %v, want ErrNotFound", err)
	}
}

func TestListInstallationRepos(t *testing.T) {
	t.Parallel()
	sim, cs := newAppSim(t)
	want := map[string]int64{}
	for i := range 130 {
		r := sim.AddRepo(77, "org", fmt.Sprintf("r%03d", i))
		want[r.FullName()] = r.ID
	}
	sim.AddRepo(78, "org", "elsewhere")
	gh, err := cs.Installation(77)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := gh.ListInstallationRepos(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 130 {
		t.Fatalf("listed %d repositories, want 130", len(repos))
	}
	for _, r := range repos {
		if want[r.FullName] != r.ID || r.Owner != "org" || r.Name == "" {
			t.Errorf("repository %+v", r)
		}
	}
	if got := sim.Stats().Count(ghsim.RouteInstallationRepos, 200); got != 2 {
		t.Errorf("%d requests, want 2 pages", got)
	}
	// A token is not an installation token: 403, permanent.
	_, err = tokenClient(t, sim).ListInstallationRepos(t.Context())
	if o, _ := archive.Classify(err); o != archive.OutcomePermanent {
		t.Errorf("with a static token: %v, want a permanent error", err)
	}
}

// A server whose Link header points back (a bug, or a proxy caching the
// first page) must not keep a listing going forever.
func TestListingsStopWhenPagesLinkBack(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 10 {
			http.Error(w, "looping", http.StatusTeapot)
			return
		}
		next := *r.URL
		next.Scheme, next.Host = "http", r.Host
		q := next.Query()
		if strings.HasPrefix(r.URL.Path, "/app/hook/deliveries") {
			q.Set("cursor", "same")
		} else {
			q.Set("page", "1")
		}
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.String()))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/app/hook/deliveries"):
			fmt.Fprintf(w, `[{"id":1,"guid":"g","delivered_at":%q}]`, time.Now().UTC().Format(time.RFC3339))
		case strings.HasPrefix(r.URL.Path, "/installation/"):
			io.WriteString(w, `{"total_count":1,"repositories":[{"id":1,"name":"r"}]}`)
		default:
			io.WriteString(w, `{"total_count":1,"artifacts":[{"id":1}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	cs, err := ghclient.New(ghclient.Config{APIURL: srv.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cs.Installation(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListRepoArtifacts(t.Context(), "o", "r"); err == nil || !strings.Contains(err.Error(), "links back") {
		t.Errorf("repository artifacts: %v, want a links-back error", err)
	}
	if _, err := c.ListRunArtifacts(t.Context(), "o", "r", 1); err == nil || !strings.Contains(err.Error(), "links back") {
		t.Errorf("run artifacts: %v, want a links-back error", err)
	}
	if _, err := c.ListInstallationRepos(t.Context()); err == nil || !strings.Contains(err.Error(), "links back") {
		t.Errorf("installation repositories: %v, want a links-back error", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	asApp, err := ghclient.New(ghclient.Config{APIURL: srv.URL, AppID: testAppID, PrivateKey: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	app, err := asApp.App()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.ListHookDeliveries(t.Context(), time.Now().Add(-time.Hour)); err == nil || !strings.Contains(err.Error(), "repeats") {
		t.Errorf("hook deliveries: %v, want a repeated-cursor error", err)
	}
}
