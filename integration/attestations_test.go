//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/attesttest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

// verifyJSON mirrors what TestAttestationsEndToEnd reads of
// `archivectl verify --attestations --json`.
type verifyJSON struct {
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
			Bundles     int    `json:"bundles"`
			Verified    int    `json:"verified"`
			TrustedRoot string `json:"trusted_root"`
			Details     []struct {
				Verified bool   `json:"verified"`
				Error    string `json:"error"`
			} `json:"details"`
		} `json:"results"`
	} `json:"attestations"`
}

// TestAttestationsEndToEnd archives a release run whose artifacts have
// attestations at the simulator (real bundles of a private Sigstore
// instance: two good ones for dist, one for sbom, a tampered one, validly
// signed over another digest, for bin, none for logs) with workers that
// look them up (ARCHIVER_ATTESTATIONS, the instance's trusted root as a
// file:// source), then a CI run whose lookup the simulator refuses (403).
// It checks what the archive holds (each artifact's bundles as JSONL at
// Layout.AttestationsKey, the manifest's records, the trusted root snapshot, the
// catalogue's counts), then runs archivectl against it: verify
// --attestations exits 1, reporting the good bundles verified and the
// tampered one as a subject digest mismatch, and find --sha answers with
// the release run's artifacts. Process mode only: the workers read the
// trusted root from the test's file system, and archivectl reaches MinIO
// on loopback.
func TestAttestationsEndToEnd(t *testing.T) {
	ss := attesttest.New(t)
	rootFile := filepath.Join(t.TempDir(), "trusted_root.jsonl")
	if err := os.WriteFile(rootFile, append(ss.TrustedRootJSON(t), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	const (
		releaseWF = ".github/workflows/release.yml"
		ciWF      = ".github/workflows/ci.yml"
		spdx      = "https://spdx.dev/Document/v2.3"
	)
	rel := runSpec(firstRunID, artifact("dist", 3*MiB), artifact("sbom", 64*KiB), artifact("bin", 512*KiB), artifact("logs", 16*KiB))
	rel.Name, rel.Path = "Release", releaseWF
	ci := runSpec(firstRunID+1, artifact("coverage", 32*KiB))
	ci.Name, ci.Path = "CI", ciWF
	cfg := StackConfig{
		Scenario: scenario(rel, ci),
		WorkerEnv: map[string]string{
			"ARCHIVER_ATTESTATIONS":  "true",
			"ARCHIVER_TRUSTED_ROOTS": "file://" + rootFile,
		},
		ProcessOnly: "the workers read the trusted root from a file of the test, and archivectl runs against MinIO on loopback",
	}
	eachMode(t, cfg, func(t *testing.T, h *harness) {
		runs := h.runs()
		relRun, ciRun := runs[0], runs[1]
		arts := map[string]ghsim.Artifact{}
		for _, r := range runs {
			for _, a := range h.artifacts(h.state, r.ID) {
				arts[a.Name] = a
			}
		}
		sum := func(name string) string { return h.sim.SHA256(arts[name]) }

		// The bundles the simulator serves, by artifact.
		served := map[string][][]byte{
			"dist": {
				ss.Bundle(t, owner, repoName, releaseWF, sum("dist")),
				ss.MustSign(t, attesttest.Spec{Owner: owner, Repo: repoName, Workflow: releaseWF, SHA256: sum("dist"), PredicateType: spdx}),
			},
			"sbom":     {ss.Bundle(t, owner, repoName, releaseWF, sum("sbom"))},
			"bin":      {ss.Tampered(t, owner, repoName, releaseWF, sum("bin"))},
			"coverage": {ss.Bundle(t, owner, repoName, ciWF, sum("coverage"))},
		}
		for name, bundles := range served {
			for _, b := range bundles {
				h.sim.AddAttestation(owner, repoName, sum(name), b, archive.BundlePredicateType(b))
			}
		}

		h.deliverUntilAccepted(relRun, "", 30*time.Second)
		h.waitManifests([]ghsim.Run{relRun}, time.Minute)
		h.waitIdle(time.Minute)
		// The CI run's lookup is refused (the App lacks attestations: read).
		h.sim.Inject(ghsim.RouteAttestations, 1, ghsim.Forbidden())
		h.deliverUntilAccepted(ciRun, "", 30*time.Second)
		h.waitManifests([]ghsim.Run{ciRun}, time.Minute)
		h.waitIdle(time.Minute)
		h.checkInvariants(expectation{Runs: runs})

		c := h.s.S3()
		relM, err := archive.DecodeManifest(h.readObject(c, manifestKey(relRun)))
		if err != nil {
			t.Fatal(err)
		}
		ciM, err := archive.DecodeManifest(h.readObject(c, manifestKey(ciRun)))
		if err != nil {
			t.Fatal(err)
		}

		// The manifests' records, and the bundles stored as JSONL.
		wantTypes := map[string][]string{
			"dist": {attesttest.SLSAProvenance, spdx},
			"sbom": {attesttest.SLSAProvenance},
			"bin":  {attesttest.SLSAProvenance},
		}
		l := archive.Layout{Owner: owner, Repo: repoName, RunID: relRun.ID}
		for _, r := range relM.Artifacts {
			att := r.Attestations
			if r.Status != archive.StatusArchived || att == nil || att.Error != "" {
				t.Errorf("%s: status %s, attestations %+v; want archived with a lookup recorded", r.Name, r.Status, att)
				continue
			}
			if r.Name == "logs" {
				if att.Count != 0 || att.Key != "" {
					t.Errorf("logs: attestations %+v, want none", att)
				}
				continue
			}
			if att.Count != len(served[r.Name]) || att.Key != l.AttestationsKey(r.ID) || !slices.Equal(att.PredicateTypes, wantTypes[r.Name]) {
				t.Errorf("%s: attestations %d at %s of %v; want %d at %s of %v", r.Name, att.Count, att.Key, att.PredicateTypes,
					len(served[r.Name]), l.AttestationsKey(r.ID), wantTypes[r.Name])
			}
			if got, want := jsonLines(t, h.readObject(c, prefix+"/"+att.Key)), compactAll(t, served[r.Name]); !sameSet(got, want) {
				t.Errorf("%s: %s holds %d bundles, not the %d served", r.Name, att.Key, len(got), len(want))
			}
		}
		cov := ciM.Artifacts[0]
		if cov.Status != archive.StatusArchived || cov.Attestations == nil || cov.Attestations.Error == "" || cov.Attestations.Count != 0 {
			t.Errorf("coverage: status %s, attestations %+v; want archived with the refused lookup recorded as an error", cov.Status, cov.Attestations)
		}
		if !ciM.Complete {
			t.Errorf("CI run: manifest not complete; a failed lookup must not hold the artifact back")
		}

		// One trusted root snapshot, holding the instance's root.
		keys, err := listKeys(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		snaps := keysWithPrefix(keys, prefix+"/"+archive.TrustedRootPrefix)
		if len(snaps) != 1 {
			t.Fatalf("trusted root snapshots %v, want one", snaps)
		}
		if got := jsonLines(t, h.readObject(c, snaps[0])); !sameSet(got, compactAll(t, [][]byte{ss.TrustedRootJSON(t)})) {
			t.Errorf("%s: %d trusted roots, want the instance's one", snaps[0], len(got))
		}

		// The catalogue rows carry the counts (checkInvariants compared
		// every row with the manifest).
		rows, err := catalog.DecodeJSONL(bytes.NewReader(h.readObject(c, catalogKey(relM))))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if want := int64(len(served[r.ArtifactName])); r.Attestations != want || !slices.Equal(r.PredicateTypes, wantTypes[r.ArtifactName]) {
				t.Errorf("catalogue row %s: %d attestations of %v, want %d of %v", r.ArtifactName, r.Attestations, r.PredicateTypes, want, wantTypes[r.ArtifactName])
			}
		}

		// archivectl verify --attestations: the tampered bundle fails.
		ctl := h.archivectl()
		out, code := ctl.run(t, "verify", "--attestations", owner+"/"+repoName)
		if code != 1 {
			t.Errorf("verify --attestations: exit %d, want 1\n%s", code, out)
		}
		binKey := l.AttestationsKey(arts["bin"].ID)
		for _, s := range []string{"attestations: 2 verified", "attestations: 1 verified", "attestations: 0 of 1 verified",
			"subject digest mismatch", binKey,
			"no attestations", "attestation lookup failed", "FAILED: 1 problem"} {
			if !strings.Contains(out, s) {
				t.Errorf("verify --attestations: output lacks %q\n%s", s, out)
			}
		}
		out, code = ctl.run(t, "verify", "--attestations", "--json", owner+"/"+repoName)
		var rep verifyJSON
		if err := json.Unmarshal([]byte(out), &rep); code != 1 || err != nil {
			t.Fatalf("verify --attestations --json: exit %d, %v\n%s", code, err, out)
		}
		at := rep.Attestations
		if rep.OK || len(rep.Problems) != 1 || rep.Problems[0].ArtifactID != arts["bin"].ID || rep.Problems[0].Key != binKey ||
			!strings.Contains(rep.Problems[0].Problem, "subject digest mismatch") ||
			at.Artifacts != 5 || at.Bundles != 4 || at.Verified != 3 || at.Failed != 1 || at.None != 1 || at.LookupFailed != 1 {
			t.Errorf("verify --attestations --json: %+v", rep)
		}
		wantStatus := map[string]string{"dist": "verified", "sbom": "verified", "bin": "failed", "logs": "none", "coverage": "lookup_failed"}
		for _, r := range at.Results {
			name := ""
			for n, a := range arts {
				if a.ID == r.ArtifactID {
					name = n
				}
			}
			if r.Status != wantStatus[name] {
				t.Errorf("verify: %s (%d) is %s, want %s", name, r.ArtifactID, r.Status, wantStatus[name])
			}
			if r.Status == "verified" && (r.Verified != len(served[name]) || !strings.HasPrefix(r.TrustedRoot, archive.TrustedRootPrefix)) {
				t.Errorf("verify: %s: %d of %d verified with %q, want all with the archived snapshot", name, r.Verified, r.Bundles, r.TrustedRoot)
			}
		}

		// archivectl find --sha: the release run's artifacts, from the
		// catalogue.
		out, code = ctl.run(t, "find", "--json", "--sha", relRun.HeadSHA)
		var found []catalog.Row
		if err := json.Unmarshal([]byte(out), &found); code != 0 || err != nil {
			t.Fatalf("find --sha %s: exit %d, %v\n%s", relRun.HeadSHA, code, err, out)
		}
		var names []string
		for _, r := range found {
			names = append(names, r.ArtifactName)
			if r.RunID != relRun.ID || r.HeadSHA != relRun.HeadSHA || r.Status != archive.StatusArchived {
				t.Errorf("find --sha: row %+v is not an archived artifact of run %d", r, relRun.ID)
			}
		}
		slices.Sort(names)
		if want := []string{"bin", "dist", "logs", "sbom"}; !slices.Equal(names, want) {
			t.Errorf("find --sha %s: artifacts %v, want %v", relRun.HeadSHA, names, want)
		}
	})
}

// ctlRunner runs the archivectl binary against a process stack's archive.
type ctlRunner struct {
	env []string
}

// archivectl returns a runner of archivectl with the destination of the
// workers (process mode only).
func (h *harness) archivectl() ctlRunner {
	h.t.Helper()
	ps, ok := h.s.(*processStack)
	if !ok {
		h.t.Fatalf("archivectl runs against a process stack, not %s", h.s.Mode())
	}
	return ctlRunner{env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + h.t.TempDir(),
		"ARCHIVER_DESTINATION=s3://" + bucket + "/" + prefix,
		"ARCHIVER_S3_FORCE_PATH_STYLE=true",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + ps.s3Access.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + ps.s3Access.SecretKey,
		"AWS_ENDPOINT_URL_S3=" + ps.s3Access.Endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
		"NO_COLOR=1",
	}}
}

// run runs archivectl with args and returns its stdout and exit code;
// stderr goes to the test log.
func (r ctlRunner) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), suite.bins.Ctl, args...)
	cmd.Env = r.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("archivectl %s: stderr:\n%s", strings.Join(args, " "), stderr.Bytes())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), exit.ExitCode()
	}
	t.Fatalf("archivectl %s: %v", strings.Join(args, " "), err)
	return "", -1
}

// jsonLines returns the non-blank lines of b, each compacted.
func jsonLines(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, compact(t, sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func compactAll(t *testing.T, docs [][]byte) []string {
	t.Helper()
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = compact(t, d)
	}
	return out
}

func compact(t *testing.T, doc []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return b.String()
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
