package ghsim_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

func TestSignVector(t *testing.T) {
	t.Parallel()
	// The test vector of GitHub's "Validating webhook deliveries".
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := ghsim.Sign("It's a Secret to Everybody", []byte("Hello, World!")); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestWorkflowRunPayloadRewritesURLs(t *testing.T) {
	t.Parallel()
	sample, err := ghsim.SamplePayload("workflow_run.completed.payload.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(sample, []byte("octo-org/octo-repo")) || !bytes.Contains(sample, []byte("289782451")) {
		t.Fatal("the sample no longer names octo-org/octo-repo run 289782451: update this test")
	}
	b, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{
		Owner: "acme", Repo: "widgets", RepoID: 99, RunID: 123456789012, RunAttempt: 2,
		InstallationID: 5, APIURL: "http://127.0.0.1:1234",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, stale := range []string{"octo-org", "289782451", "https://api.github.com/"} {
		if bytes.Contains(b, []byte(stale)) {
			i := bytes.Index(b, []byte(stale))
			t.Errorf("payload still contains %q: ...%s...", stale, b[max(i-80, 0):min(i+80, len(b))])
		}
	}
	var p struct {
		Repository struct {
			URL      string `json:"url"`
			CloneURL string `json:"clone_url"`
			FullName string `json:"full_name"`
		} `json:"repository"`
		WorkflowRun struct {
			ID           int64  `json:"id"`
			ArtifactsURL string `json:"artifacts_url"`
			HTMLURL      string `json:"html_url"`
		} `json:"workflow_run"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.Repository.URL != "http://127.0.0.1:1234/repos/acme/widgets" || p.Repository.FullName != "acme/widgets" ||
		!strings.HasSuffix(p.Repository.CloneURL, "/acme/widgets.git") {
		t.Errorf("repository = %+v", p.Repository)
	}
	if p.WorkflowRun.ID != 123456789012 || p.WorkflowRun.ArtifactsURL != "http://127.0.0.1:1234/repos/acme/widgets/actions/runs/123456789012/artifacts" ||
		p.WorkflowRun.HTMLURL != "https://github.com/acme/widgets/actions/runs/123456789012" {
		t.Errorf("workflow_run = %+v", p.WorkflowRun)
	}
	// Without patches the sample's values stay.
	plain, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(plain, []byte("https://api.github.com/repos/octo-org/octo-repo/actions/runs/289782451/artifacts")) {
		t.Error("an unpatched payload lost the sample's artifacts_url")
	}
}
