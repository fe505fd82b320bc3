package attest_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/attesttest"
	"github.com/artifact-archiver/artifact-archiver/pkg/attest"
)

// Verify one archived bundle against the archive's trusted-root snapshot.
func ExampleVerify() {
	// In the archive: attestations/<artifact_id>.jsonl and
	// _trust/trusted_root/<date>.jsonl; here, a test instance's.
	ss, err := attesttest.Generate()
	if err != nil {
		log.Fatal(err)
	}
	tr, err := ss.TrustedRoot()
	if err != nil {
		log.Fatal(err)
	}
	snapshot, err := tr.MarshalJSON()
	if err != nil {
		log.Fatal(err)
	}
	sha := digest("dist.zip")
	bundle, err := ss.Sign(attesttest.Spec{Owner: "octo-org", Repo: "app", Workflow: ".github/workflows/release.yml", SHA256: sha})
	if err != nil {
		log.Fatal(err)
	}

	roots, err := attest.LoadTrustedRoots(snapshot)
	if err != nil {
		log.Fatal(err)
	}
	want := attest.Want{SHA256: sha, Repository: "octo-org/app", Workflow: ".github/workflows/release.yml"}
	res, err := attest.Verify(bundle, roots, want)
	fmt.Println(res.Verified, res.Instance, res.PredicateType, err)

	want.SHA256 = digest("another.zip")
	_, err = attest.Verify(bundle, roots, want)
	fmt.Println(errors.Is(err, attest.ErrDigestMismatch))
	// Output:
	// true github https://slsa.dev/provenance/v1 <nil>
	// true
}
