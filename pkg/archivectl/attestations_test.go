package archivectl_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/attesttest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/attest"
	"github.com/artifact-archiver/artifact-archiver/pkg/filestore"
)

// attReport mirrors verify --attestations --json.
type attReport struct {
	OK       bool `json:"ok"`
	Problems []struct {
		ArtifactID int64  `json:"artifact_id"`
		Key        string `json:"key"`
		Problem    string `json:"problem"`
	} `json:"problems"`
	Attestations struct {
		Artifacts    int `json:"artifacts"`
		Bundles      int `json:"bundles"`
		Verified     int `json:"verified_bundles"`
		Failed       int `json:"failed_bundles"`
		None         int `json:"artifacts_without_attestations"`
		LookupFailed int `json:"artifacts_lookup_failed"`
		Results      []struct {
			ArtifactID  int64  `json:"artifact_id"`
			Status      string `json:"status"`
			Verified    int    `json:"verified"`
			TrustedRoot string `json:"trusted_root"`
			Details     []struct {
				Verified      bool   `json:"verified"`
				PredicateType string `json:"predicate_type"`
				Error         string `json:"error"`
			} `json:"details"`
		} `json:"results"`
	} `json:"attestations"`
}

// TestVerifyAttestations archives runs with attestation lookups on, as the
// worker does (bundles from the simulator, the trusted-root snapshot from
// a file source), into a file:// archive, and verifies them.
func TestVerifyAttestations(t *testing.T) {
	ss := attesttest.New(t)
	rootFile := filepath.Join(t.TempDir(), "trusted_root.jsonl")
	if err := os.WriteFile(rootFile, append(ss.TrustedRootJSON(t), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	sources, err := attest.NewSources("file://"+rootFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "archive")
	fs, err := filestore.New(filestore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	a := archivetest.New(t, func(c *archive.Config) {
		c.Store, c.Attestations, c.TrustedRoots = fs, true, sources
	})
	sim := a.Sim
	// archivetest's GitHub client fetches bundle_urls https-only: serve
	// the inline form (ghclient's and ghsim's tests cover bundle_url).
	sim.SetInlineAttestationBundles(true)
	const wf = ".github/workflows/release.yml"
	repo := sim.AddRepo(77, "octo-org", "app")
	rel := sim.AddRun("octo-org", "app", ghsim.RunSpec{Name: "Release", Path: wf, HeadBranch: "main"})
	dist := sim.AddArtifact("octo-org", "app", rel.ID, ghsim.ArtifactSpec{Name: "dist", Size: 4096})
	bad := sim.AddArtifact("octo-org", "app", rel.ID, ghsim.ArtifactSpec{Name: "bin", Size: 2048})
	plain := sim.AddArtifact("octo-org", "app", rel.ID, ghsim.ArtifactSpec{Name: "logs", Size: 100})
	sum := func(id int64) string {
		h := sha256.Sum256(content(t, sim, id))
		return hex.EncodeToString(h[:])
	}
	add := func(digest string, b []byte, predicate string) {
		t.Helper()
		if _, err := sim.AddAttestation("octo-org", "app", digest, b, predicate); err != nil {
			t.Fatal(err)
		}
	}
	const sbom = "https://spdx.dev/Document/v2.3"
	add(sum(dist.ID), ss.Bundle(t, "octo-org", "app", wf, sum(dist.ID)), attesttest.SLSAProvenance)
	add(sum(dist.ID), ss.MustSign(t, attesttest.Spec{Owner: "octo-org", Repo: "app", Workflow: wf, SHA256: sum(dist.ID), PredicateType: sbom}), sbom)
	add(sum(bad.ID), ss.Bundle(t, "octo-org", "app", wf, sum(bad.ID)), attesttest.SLSAProvenance)
	// Served for bin's digest, but signed over another: the tampered one.
	add(sum(bad.ID), ss.Tampered(t, "octo-org", "app", wf, sum(bad.ID)), attesttest.SLSAProvenance)
	m := archiveRun(t, a, repo, rel)
	for _, r := range m.Artifacts {
		if r.Attestations == nil || r.Attestations.Error != "" {
			t.Fatalf("artifact %d: attestation record %+v", r.ID, r.Attestations)
		}
	}

	// A second run whose lookup fails at archiving time.
	ci := sim.AddRun("octo-org", "app", ghsim.RunSpec{Name: "CI", Path: ".github/workflows/ci.yml", HeadBranch: "main"})
	cov := sim.AddArtifact("octo-org", "app", ci.ID, ghsim.ArtifactSpec{Name: "coverage", Size: 100})
	sim.Inject(ghsim.RouteAttestations, 1, ghsim.Forbidden())
	if m := archiveRun(t, a, repo, ci); m.Artifacts[0].Attestations == nil || m.Artifacts[0].Attestations.Error == "" {
		t.Fatalf("coverage: attestation record %+v, want a failed lookup", m.Artifacts[0].Attestations)
	}
	if objs, err := fs.List(t.Context(), archive.TrustedRootPrefix); err != nil || len(objs) != 1 {
		t.Fatalf("trusted root snapshots: %v, %v", objs, err)
	}

	ev := env{"ARCHIVER_DESTINATION": "file://" + dir}
	// Plain verify does not look at attestations.
	run(t, ev, "verify").want(t, 0)

	r := run(t, ev, "verify", "--attestations").want(t, archivectl.ExitFailure)
	mustContain(t, "verify --attestations", r.stdout,
		"attestations: 2 verified", "attestations: 1 of 2 verified", "subject digest mismatch",
		"no attestations", "attestation lookup failed: ", ", retry with archivectl backfill --attestations",
		archive.TrustedRootPrefix, "FAILED: 1 problem")
	badKey := archive.Layout{Owner: "octo-org", Repo: "app", RunID: rel.ID}.AttestationsKey(bad.ID)
	mustContain(t, "verify --attestations", r.stdout, badKey, "attestation 2 of 2: subject digest mismatch")

	rep := decode[attReport](t, run(t, ev, "verify", "--attestations", "--json").want(t, archivectl.ExitFailure).stdout)
	at := rep.Attestations
	if rep.OK || len(rep.Problems) != 1 || rep.Problems[0].ArtifactID != bad.ID || rep.Problems[0].Key != badKey ||
		at.Artifacts != 4 || at.Bundles != 4 || at.Verified != 3 || at.Failed != 1 || at.None != 1 || at.LookupFailed != 1 {
		t.Fatalf("verify --attestations --json: %+v", rep)
	}
	for _, res := range at.Results {
		switch res.ArtifactID {
		case dist.ID:
			if res.Status != "verified" || res.Verified != 2 || !strings.HasPrefix(res.TrustedRoot, archive.TrustedRootPrefix) ||
				res.Details[0].PredicateType == res.Details[1].PredicateType {
				t.Fatalf("dist: %+v", res)
			}
		case bad.ID:
			if res.Status != "failed" || res.Verified != 1 || !res.Details[0].Verified || res.Details[1].Verified || !strings.Contains(res.Details[1].Error, "subject digest mismatch") {
				t.Fatalf("bin: %+v", res)
			}
		case plain.ID:
			if res.Status != "none" {
				t.Fatalf("logs: %+v", res)
			}
		case cov.ID:
			if res.Status != "lookup_failed" {
				t.Fatalf("coverage: %+v", res)
			}
		}
	}

	// Only the CI run: no bundle fails, the failed lookup is no problem.
	r = run(t, ev, "verify", "--attestations", "--run", strconv.FormatInt(ci.ID, 10), "octo-org/app").want(t, 0)
	mustContain(t, "verify --attestations --run", r.stdout, "attestation lookup failed", "OK: 1 manifest")

	// Another instance's root (--trusted-root) verifies none of them.
	other := filepath.Join(t.TempDir(), "other.jsonl")
	if err := os.WriteFile(other, attesttest.New(t).TrustedRootJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, ev, "verify", "--attestations", "--trusted-root", other, "--run", strconv.FormatInt(rel.ID, 10), "octo-org/app").want(t, archivectl.ExitFailure)
	mustContain(t, "verify --trusted-root other", r.stdout, "signature does not verify", other, "FAILED: 4 problems")
	// The right root as a file verifies the same as the snapshot.
	r = run(t, ev, "verify", "--attestations", "--trusted-root", rootFile, "--run", strconv.FormatInt(rel.ID, 10)).want(t, archivectl.ExitFailure)
	mustContain(t, "verify --trusted-root", r.stdout, "attestations: 2 verified", rootFile, "FAILED: 1 problem")
	run(t, ev, "verify", "--trusted-root", rootFile).want(t, archivectl.ExitUsage)

	// Without snapshots (and no --trusted-root), bundles cannot be verified.
	if err := os.RemoveAll(filepath.Join(dir, archive.TrustedRootPrefix)); err != nil {
		t.Fatal(err)
	}
	r = run(t, ev, "verify", "--attestations", "--run", strconv.FormatInt(rel.ID, 10), "octo-org/app").want(t, archivectl.ExitFailure)
	mustContain(t, "verify without snapshots", r.stdout, "no trusted-root snapshot", "--trusted-root FILE")
}
