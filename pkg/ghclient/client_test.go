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
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

const token = "ghp_static_test_token"

func newSim(t *testing.T) (*ghsim.Server, archive.GitHub) {
	t.Helper()
	sim, err := ghsim.New(ghsim.Options{Tokens: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	cs, err := ghclient.New(ghclient.Config{APIURL: sim.URL(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := cs.ForInstallation(0)
	if err != nil {
		t.Fatal(err)
	}
	return sim, gh
}

func TestListRunArtifactsReadsEveryPage(t *testing.T) {
	t.Parallel()
	sim, gh := newSim(t)
	sim.AddRepo(0, "o", "r")
	run := sim.AddRun("o", "r", ghsim.RunSpec{})
	other := sim.AddRun("o", "r", ghsim.RunSpec{})
	sim.AddArtifact("o", "r", other.ID, ghsim.ArtifactSpec{Name: "other"})
	var noDigest int64
	for i := range 250 {
		a := sim.AddArtifact("o", "r", run.ID, ghsim.ArtifactSpec{Name: "same-name", Size: int64(i + 1), NoDigest: i == 7})
		if i == 7 {
			noDigest = a.ID
		}
	}
	arts, err := gh.ListRunArtifacts(t.Context(), "o", "r", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 250 {
		t.Fatalf("listed %d artifacts, want 250", len(arts))
	}
	if got := sim.Stats().Count(ghsim.RouteList, 200); got != 3 {
		t.Errorf("%d list requests, want 3 pages of 100", got)
	}
	seen := map[int64]bool{}
	for _, a := range arts {
		if seen[a.ID] {
			t.Errorf("artifact %d listed twice", a.ID)
		}
		seen[a.ID] = true
		want, _ := sim.SHA256(a.ID)
		switch {
		case a.ID == noDigest && a.Digest != "":
			t.Errorf("artifact %d: digest %q, want none", a.ID, a.Digest)
		case a.ID != noDigest && a.Digest != want:
			t.Errorf("artifact %d: digest %q, want %q", a.ID, a.Digest, want)
		}
		if a.RunID != run.ID || a.Name != "same-name" {
			t.Errorf("artifact %d: run %d name %q", a.ID, a.RunID, a.Name)
		}
	}
}

func TestErrorsAreClassified(t *testing.T) {
	t.Parallel()
	sim, gh := newSim(t)
	sim.AddRepo(0, "o", "r")
	run := sim.AddRun("o", "r", ghsim.RunSpec{})
	exp := sim.AddArtifact("o", "r", run.ID, ghsim.ArtifactSpec{Name: "x", Expired: true})
	live := sim.AddArtifact("o", "r", run.ID, ghsim.ArtifactSpec{Name: "y", Size: 3})

	if _, err := gh.DownloadURL(t.Context(), "o", "r", exp.ID); !errors.Is(err, archive.ErrGone) {
		t.Errorf("expired download: %v, want ErrGone", err)
	}
	if _, err := gh.DownloadURL(t.Context(), "o", "r", 999999); !errors.Is(err, archive.ErrGone) {
		t.Errorf("unknown download: %v, want ErrGone", err)
	}
	if _, err := gh.ListRunArtifacts(t.Context(), "o", "missing", run.ID); func() bool { o, _ := archive.Classify(err); return o != archive.OutcomePermanent }() {
		t.Errorf("list of a missing repo: %v, want permanent", err)
	}
	sim.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(429, 7*time.Second))
	_, err := gh.ListRunArtifacts(t.Context(), "o", "r", run.ID)
	var ra *archive.RetryAfterError
	if !errors.As(err, &ra) || time.Until(ra.At) < 5*time.Second || time.Until(ra.At) > 8*time.Second {
		t.Errorf("429: %v, want RetryAfterError ~7s ahead", err)
	}
	sim.Inject(ghsim.RouteZip, 1, ghsim.ServerError(502))
	if _, err := gh.DownloadURL(t.Context(), "o", "r", live.ID); err == nil || errors.As(err, &ra) {
		t.Errorf("502: %v, want a plain transient error", err)
	} else if o, _ := archive.Classify(err); o != archive.OutcomeRetry {
		t.Errorf("502 classified %v", o)
	}
	// A retried delete that already happened is success.
	if err := gh.DeleteArtifact(t.Context(), "o", "r", live.ID); err != nil {
		t.Fatal(err)
	}
	if err := gh.DeleteArtifact(t.Context(), "o", "r", live.ID); err != nil {
		t.Errorf("second delete: %v, want nil (404 is done)", err)
	}
}

func TestDownloaderSendsNoCredentialsAndResumes(t *testing.T) {
	t.Parallel()
	sim, gh := newSim(t)
	sim.AddRepo(0, "o", "r")
	run := sim.AddRun("o", "r", ghsim.RunSpec{})
	a := sim.AddArtifact("o", "r", run.ID, ghsim.ArtifactSpec{Name: "bin", Raw: true, FileName: "tool.tar.gz", Size: 1 << 20})
	u, err := gh.DownloadURL(t.Context(), "o", "r", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(u, sim.URL()) {
		t.Fatalf("redirect %s points at the API host", u)
	}
	d := ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true})
	dl, err := d.Open(t.Context(), u, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(dl.Body)
	dl.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	content, _ := sim.Content(a.ID)
	want := make([]byte, a.Size-1000)
	if _, err := content.ReadAt(want, 1000); err != nil {
		t.Fatal(err)
	}
	if dl.Offset != 1000 || dl.Length != a.Size || string(got) != string(want) {
		t.Errorf("range read: offset %d length %d, %d bytes (equal %v)", dl.Offset, dl.Length, len(got), string(got) == string(want))
	}
	if dl.ContentType != "application/octet-stream" || dl.FileName != "tool.tar.gz" {
		t.Errorf("content type %q file %q", dl.ContentType, dl.FileName)
	}
	if n := sim.Stats().AuthRejected; n != 0 {
		t.Errorf("%d blob requests carried Authorization", n)
	}
}

func TestDownloaderRefusesOddRedirects(t *testing.T) {
	t.Parallel()
	// A blob host that redirects again, to plain http on another host.
	hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	t.Cleanup(hop.Close)
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	t.Cleanup(tls.Close)

	strict := ghclient.NewDownloader(ghclient.DownloaderConfig{Transport: routeTo(tls)})
	allowList := ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true, AllowedHosts: []string{".blob.core.windows.net"}})
	tests := []struct {
		name string
		d    *ghclient.Downloader
		url  string
	}{
		{"http by default", ghclient.NewDownloader(ghclient.DownloaderConfig{}), hop.URL + "/x"},
		{"https redirecting to http", strict, "https://example.com/x"},
		{"credentials in url", ghclient.NewDownloader(ghclient.DownloaderConfig{}), "https://user:pass@example.com/x"},
		{"ftp", ghclient.NewDownloader(ghclient.DownloaderConfig{}), "ftp://example.com/x"},
		{"host not allowed", allowList, hop.URL + "/x"},
		{"suffix trick", allowList, "http://evil-blob.core.windows.net.example.com/x"},
	}
	for _, tt := range tests {
		_, err := tt.d.Open(t.Context(), tt.url, 0)
		if !errors.Is(err, archive.ErrBadRedirect) {
			t.Errorf("%s: err = %v, want ErrBadRedirect", tt.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("%s: error leaks URL credentials: %v", tt.name, err)
		}
	}
}

func TestDownloaderStallTimeout(t *testing.T) {
	t.Parallel()
	sim, gh := newSim(t)
	sim.AddRepo(0, "o", "r")
	run := sim.AddRun("o", "r", ghsim.RunSpec{})
	a := sim.AddArtifact("o", "r", run.ID, ghsim.ArtifactSpec{Name: "slow", Size: 1 << 20})
	sim.Inject(ghsim.RouteBlob, 1, ghsim.Throttle(1))
	u, err := gh.DownloadURL(t.Context(), "o", "r", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	d := ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true, StallTimeout: 300 * time.Millisecond})
	dl, err := d.Open(t.Context(), u, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Body.Close()
	n, err := io.Copy(io.Discard, dl.Body)
	if !errors.Is(err, archive.ErrStalled) || n >= a.Size {
		t.Fatalf("stalled download read %d bytes, err %v: want ErrStalled", n, err)
	}
}

// Every rate limit asks for a wait of at least MinRetryWait, whatever the
// headers say: a retry time at or before now is retried in a hot loop.
func TestRateLimitRetryIsNeverImmediate(t *testing.T) {
	t.Parallel()
	past := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	tests := []struct {
		name   string
		status int
		header []string
		body   string
	}{
		{"429 Retry-After 0", 429, []string{"Retry-After", "0"}, `{"message":"slow down"}`},
		{"429 Retry-After in the past", 429, []string{"Retry-After", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)}, `{"message":"slow down"}`},
		{"429 reset in the past", 429, []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", past}, `{"message":"slow down"}`},
		{"403 primary, reset in the past", 403, []string{"X-RateLimit-Limit", "5000", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", past},
			`{"message":"API rate limit exceeded"}`},
		{"403 secondary, Retry-After 0", 403, []string{"Retry-After", "0"},
			`{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i < len(tt.header); i += 2 {
					w.Header().Set(tt.header[i], tt.header[i+1])
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			cs, err := ghclient.New(ghclient.Config{APIURL: srv.URL, Token: token})
			if err != nil {
				t.Fatal(err)
			}
			gh, err := cs.Installation(0)
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			_, err = gh.GetArtifact(t.Context(), "o", "r", 1)
			var ra *archive.RetryAfterError
			if !errors.As(err, &ra) {
				t.Fatalf("err = %v, want a RetryAfterError", err)
			}
			if earliest := before.Add(ghclient.MinRetryWait); ra.At.Before(earliest) {
				t.Errorf("retry at %s, %s before now+%s", ra.At.Format(time.RFC3339Nano), earliest.Sub(ra.At), ghclient.MinRetryWait)
			}
		})
	}
}

// The API clients add their credentials inside RoundTrip, so a redirect to
// another host would carry them there. Each of them (static token,
// installation token, App JWT) follows redirects on the API host only.
func TestAPIRedirectsStayOnTheAPIHost(t *testing.T) {
	t.Parallel()
	var stolen, elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		if r.Header.Get("Authorization") != "" {
			stolen.Add(1)
		}
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"id":1}`)
	}))
	t.Cleanup(other.Close)
	const instToken = "ghs_installation_token_under_test"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/app/installations/7/access_tokens":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"token":%q,"expires_at":%q}`, instToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		case strings.HasPrefix(r.URL.Path, "/repos/o/moved/"):
			// A renamed repository: GitHub redirects on its own host.
			http.Redirect(w, r, strings.Replace(r.URL.Path, "/moved/", "/r/", 1), http.StatusMovedPermanently)
		case r.URL.Path == "/repos/o/r/actions/artifacts/1":
			if r.Header.Get("Authorization") == "" {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"message":"Requires authentication"}`)
				return
			}
			io.WriteString(w, `{"id":1,"name":"a"}`)
		default:
			http.Redirect(w, r, other.URL+r.URL.Path+"?sig=SECRET", http.StatusFound)
		}
	}))
	t.Cleanup(api.Close)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	withToken, err := ghclient.New(ghclient.Config{APIURL: api.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	asApp, err := ghclient.New(ghclient.Config{APIURL: api.URL, AppID: testAppID, PrivateKey: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	tokenClient, err := withToken.Installation(0)
	if err != nil {
		t.Fatal(err)
	}
	instClient, err := asApp.Installation(7)
	if err != nil {
		t.Fatal(err)
	}
	appClient, err := asApp.App()
	if err != nil {
		t.Fatal(err)
	}

	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, archive.ErrBadRedirect) {
			t.Errorf("%s: err = %v, want ErrBadRedirect", name, err)
			return
		}
		for _, secret := range []string{token, instToken, "SECRET"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error leaks %q: %v", name, secret, err)
			}
		}
	}
	for name, c := range map[string]*ghclient.Client{"static token": tokenClient, "installation": instClient} {
		_, err := c.GetArtifact(t.Context(), "o", "evil", 1)
		check(name+" get artifact", err)
		_, err = c.ListRunArtifacts(t.Context(), "o", "evil", 1)
		check(name+" list run artifacts", err)
		// A redirect on the API host is still followed, credentials and all.
		if a, err := c.GetArtifact(t.Context(), "o", "moved", 1); err != nil || a.ID != 1 {
			t.Errorf("%s: same-host redirect: %+v, %v", name, a, err)
		}
	}
	_, err = appClient.RepoInstallation(t.Context(), "o", "evil")
	check("app find installation", err)
	_, _, err = appClient.ListHookDeliveriesPage(t.Context(), "")
	check("app hook deliveries", err)

	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests (%d with Authorization)", n, stolen.Load())
	}
}
