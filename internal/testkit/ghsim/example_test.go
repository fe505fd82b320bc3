package ghsim_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-github/v66/github"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// A download cut in the middle by an injected connection reset.
func Example() {
	s, err := ghsim.New(ghsim.Options{Tokens: []string{"ghp_example"}})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	s.AddRepo(1, "octo-org", "octo-repo")
	run := s.AddRun("octo-org", "octo-repo", ghsim.RunSpec{})
	a := s.AddArtifact("octo-org", "octo-repo", run.ID, ghsim.ArtifactSpec{Name: "dist", Size: 1 << 20})

	// The next blob download breaks after 1 KiB.
	s.Inject(ghsim.RouteBlob, 1, ghsim.ResetAfter(1024))

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	gh := github.NewClient(&http.Client{Transport: tr}).WithAuthToken("ghp_example")
	gh.BaseURL, _ = url.Parse(s.URL())
	loc, _, err := gh.Actions.DownloadArtifact(context.Background(), "octo-org", "octo-repo", a.ID, 0)
	if err != nil {
		panic(err)
	}
	// Fetch the pre-signed URL without the token.
	resp, err := (&http.Client{Transport: tr}).Get(loc.String())
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	fmt.Println("cut short:", n < resp.ContentLength, err != nil)
	// Output:
	// 200 application/zip 1048576
	// cut short: true true
}
