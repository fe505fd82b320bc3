package attest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/attesttest"
	"github.com/artifact-archiver/artifact-archiver/pkg/attest"
)

const wf = ".github/workflows/release.yml"

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestVerify(t *testing.T) {
	t.Parallel()
	ss := attesttest.New(t)
	trusted, err := attest.LoadTrustedRoots(ss.TrustedRootJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := digest("dist.zip")
	want := attest.Want{SHA256: sum, Repository: "octo-org/app", Workflow: wf}
	good := ss.Bundle(t, "octo-org", "app", wf, sum)

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		res, err := attest.Verify(good, trusted, want)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if !res.Verified || res.Instance != attest.InstanceGitHub || res.PredicateType != attesttest.SLSAProvenance ||
			len(res.Subjects) != 1 || res.Subjects[0].SHA256 != sum || res.SignedAt.IsZero() ||
			res.SignerWorkflow != "https://github.com/octo-org/app/"+wf+"@refs/heads/main" ||
			res.SourceRepository != "https://github.com/octo-org/app" || res.Issuer != attest.GitHubActionsIssuer {
			t.Fatalf("result %+v", res)
		}
		// Without a workflow, the repository alone is checked; names are
		// case-insensitive on GitHub.
		if _, err := attest.Verify(good, trusted, attest.Want{SHA256: strings.ToUpper(sum), Repository: "Octo-Org/App"}); err != nil {
			t.Fatalf("verify without workflow: %v", err)
		}
	})

	t.Run("reusable workflow of another repository", func(t *testing.T) {
		t.Parallel()
		b := ss.MustSign(t, attesttest.Spec{Owner: "octo-org", Repo: "app", Workflow: wf, SignerRepo: "octo-org/shared", SignerWorkflow: ".github/workflows/build.yml", SHA256: sum})
		res, err := attest.Verify(b, trusted, want)
		if err != nil || !strings.Contains(res.SignerWorkflow, "octo-org/shared") {
			t.Fatalf("verify %+v: %v", res, err)
		}
	})

	failures := []struct {
		name   string
		bundle func() []byte
		want   attest.Want
		err    error
		say    string
	}{
		{"tampered digest", func() []byte { return ss.Tampered(t, "octo-org", "app", wf, sum) }, want, attest.ErrDigestMismatch, "artifact is " + sum},
		{"other artifact", func() []byte { return good }, attest.Want{SHA256: digest("other"), Repository: "octo-org/app", Workflow: wf}, attest.ErrDigestMismatch, "statement is over sha256 " + sum},
		{"wrong repository", func() []byte { return ss.Bundle(t, "evil-org", "app", wf, sum) }, want, attest.ErrRepositoryMismatch, "signed by https://github.com/evil-org/app"},
		{"wrong workflow", func() []byte { return ss.Bundle(t, "octo-org", "app", ".github/workflows/ci.yml", sum) }, want, attest.ErrWorkflowMismatch, "ci.yml"},
		{"other issuer", func() []byte {
			return ss.MustSign(t, attesttest.Spec{Owner: "octo-org", Repo: "app", Workflow: wf, SHA256: sum, Issuer: "https://accounts.example.com"})
		}, want, attest.ErrIssuerMismatch, "accounts.example.com"},
		{"untrusted signer", func() []byte { return attesttest.New(t).Bundle(t, "octo-org", "app", wf, sum) }, want, attest.ErrSignature, "timestamps"},
		{"broken signature", func() []byte { return flipSignature(t, good) }, want, attest.ErrSignature, ""},
		{"not a bundle", func() []byte { return []byte(`{"mediaType":"x"}`) }, want, attest.ErrBundle, ""},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := attest.Verify(tc.bundle(), trusted, tc.want)
			if !errors.Is(err, tc.err) || res.Verified {
				t.Fatalf("verify: %+v, %v; want %v", res, err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("error %q does not say %q", err, tc.say)
			}
		})
	}
}

// flipSignature changes one base64 character of the DSSE signature.
func flipSignature(t *testing.T, b []byte) []byte {
	t.Helper()
	s := string(b)
	i := strings.Index(s, `"sig":"`)
	if i < 0 {
		t.Fatalf("no signature in %s", s)
	}
	i += len(`"sig":"`) + 10
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return []byte(s[:i] + string(c) + s[i+1:])
}
