package ghsim_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v66/github"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

const appID = 4242

// appKey is the test App's key, generated once per test binary.
var appKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func pemOf(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// installationClient returns a go-github client authenticated as
// installation id through ghinstallation, as the archiver does.
func (e *env) installationClient(t *testing.T, id int64, key *rsa.PrivateKey) *github.Client {
	t.Helper()
	itr, err := ghinstallation.New(e.tr, appID, id, pemOf(key))
	if err != nil {
		t.Fatal(err)
	}
	itr.BaseURL = strings.TrimSuffix(e.s.URL(), "/")
	c := github.NewClient(&http.Client{Transport: itr})
	c.BaseURL = mustURL(e.s.URL())
	return c
}

func TestAppInstallationToken(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{AppID: appID, AppPublicKey: &appKey().PublicKey})
	other := e.s.AddRepo(8, "other-org", "secret")
	otherRun := e.s.AddRun("other-org", "secret", ghsim.RunSpec{})
	e.s.AddArtifact("other-org", "secret", otherRun.ID, ghsim.ArtifactSpec{Size: 1})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 100})
	ctx := t.Context()

	gh := e.installationClient(t, installationID, appKey())
	list, resp, err := gh.Actions.ListArtifacts(ctx, owner, repoName, nil)
	if err != nil {
		t.Fatalf("list with an installation token: %v", err)
	}
	if list.GetTotalCount() != 1 || list.Artifacts[0].GetID() != a.ID {
		t.Fatalf("list = %+v", list)
	}
	if resp.Rate.Limit != 5000 {
		t.Fatalf("installation rate limit %d, want 5000", resp.Rate.Limit)
	}
	if _, _, err := gh.Actions.GetArtifact(ctx, owner, repoName, a.ID); err != nil {
		t.Fatal(err)
	}
	// The token is cached by ghinstallation: one exchange.
	if st := e.s.Stats(); st.TokensIssued != 1 || st.Count(ghsim.RouteToken, 201) != 1 {
		t.Fatalf("tokens issued %d, token route %v", st.TokensIssued, st.Requests[ghsim.RouteToken])
	}
	// Installation scoping: another installation's repository is hidden.
	var er *github.ErrorResponse
	if _, _, err := gh.Actions.ListArtifacts(ctx, other.Owner, other.Name, nil); !errors.As(err, &er) || er.Response.StatusCode != 404 {
		t.Fatalf("other installation's repo: %v, want 404", err)
	}
	// The static token reaches both.
	if _, _, err := e.gh.Actions.ListArtifacts(ctx, other.Owner, other.Name, nil); err != nil {
		t.Fatalf("static token on the other repo: %v", err)
	}
	// GET /app/installations/{id} with the App JWT.
	atr, err := ghinstallation.NewAppsTransport(e.tr, appID, pemOf(appKey()))
	if err != nil {
		t.Fatal(err)
	}
	app := github.NewClient(&http.Client{Transport: atr})
	app.BaseURL = mustURL(e.s.URL())
	inst, _, err := app.Apps.GetInstallation(ctx, installationID)
	if err != nil || inst.GetID() != installationID || inst.GetAccount().GetLogin() != owner || inst.GetAppID() != appID {
		t.Fatalf("installation = %+v, %v", inst, err)
	}
	if _, _, err := app.Apps.GetInstallation(ctx, 999); !errors.As(err, &er) || er.Response.StatusCode != 404 {
		t.Fatalf("unknown installation: %v, want 404", err)
	}
	// Narrowed tokens reach only the repositories asked for.
	tok, _, err := app.Apps.CreateInstallationToken(ctx, installationID, &github.InstallationTokenOptions{Repositories: []string{repoName}})
	if err != nil {
		t.Fatal(err)
	}
	e.s.AddRepo(installationID, owner, "sibling")
	if resp, _ := e.call(t, "GET", "repos/"+owner+"/"+repoName, tok.GetToken()); resp.StatusCode != 200 {
		t.Fatalf("narrowed token on its repo: %d", resp.StatusCode)
	}
	if resp, _ := e.call(t, "GET", "repos/"+owner+"/sibling", tok.GetToken()); resp.StatusCode != 404 {
		t.Fatalf("narrowed token on a sibling repo: %d, want 404", resp.StatusCode)
	}
	if _, _, err := app.Apps.CreateInstallationToken(ctx, installationID, &github.InstallationTokenOptions{Repositories: []string{"secret"}}); !errors.As(err, &er) || er.Response.StatusCode != 422 {
		t.Fatalf("token for a repo outside the installation: %v, want 422", err)
	}
}

func TestAppJWTRejected(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{AppID: appID, AppPrivateKey: appKey()})
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// A JWT signed with the wrong key fails the exchange.
	gh := e.installationClient(t, installationID, other)
	if _, _, err := gh.Actions.ListArtifacts(t.Context(), owner, repoName, nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong key: %v, want a 401 from the token exchange", err)
	}

	now := e.clock.Now()
	sign := func(method jwt.SigningMethod, key any, c jwt.RegisteredClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := jwt.RegisteredClaims{Issuer: strconv.Itoa(appID), IssuedAt: jwt.NewNumericDate(now.Add(-30 * time.Second)), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute))}
	with := func(f func(*jwt.RegisteredClaims)) jwt.RegisteredClaims { c := good; f(&c); return c }
	tokens := fmt.Sprintf("app/installations/%d/access_tokens", installationID)
	for _, tc := range []struct {
		name string
		jwt  string
		want int
	}{
		{"valid", sign(jwt.SigningMethodRS256, appKey(), good), 201},
		{"wrong issuer", sign(jwt.SigningMethodRS256, appKey(), with(func(c *jwt.RegisteredClaims) { c.Issuer = "1" })), 401},
		{"expired", sign(jwt.SigningMethodRS256, appKey(), with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) })), 401},
		{"exp too far", sign(jwt.SigningMethodRS256, appKey(), with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(11 * time.Minute)) })), 401},
		{"iat in the future", sign(jwt.SigningMethodRS256, appKey(), with(func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(2 * time.Minute)) })), 401},
		{"no iat", sign(jwt.SigningMethodRS256, appKey(), with(func(c *jwt.RegisteredClaims) { c.IssuedAt = nil })), 401},
		{"HS256", sign(jwt.SigningMethodHS256, []byte("secret"), good), 401},
		{"a PAT", pat, 401},
	} {
		resp, body := e.call(t, "POST", tokens, tc.jwt)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	// A JWT does not reach repositories.
	if resp, _ := e.call(t, "GET", "repos/"+owner+"/"+repoName, sign(jwt.SigningMethodRS256, appKey(), good)); resp.StatusCode != 401 {
		t.Fatalf("JWT on /repos: %d, want 401", resp.StatusCode)
	}
	if resp, _ := e.call(t, "POST", "app/installations/999/access_tokens", sign(jwt.SigningMethodRS256, appKey(), good)); resp.StatusCode != 404 {
		t.Fatalf("unknown installation: %d, want 404", resp.StatusCode)
	}
	e.s.Inject(ghsim.RouteToken, 1, ghsim.ServerError(502))
	if resp, _ := e.call(t, "POST", tokens, sign(jwt.SigningMethodRS256, appKey(), good)); resp.StatusCode != 502 {
		t.Fatalf("token route fault: %d, want 502", resp.StatusCode)
	}
	if st := e.s.Stats(); st.TokensIssued != 1 {
		t.Fatalf("tokens issued %d, want 1", st.TokensIssued)
	}
}
