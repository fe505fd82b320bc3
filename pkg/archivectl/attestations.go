package archivectl

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/attest"
)

// Attestation outcomes of one artifact (attestationResult.Status).
const (
	attVerified     = "verified"      // every bundle verified
	attFailed       = "failed"        // some bundle did not verify (a problem)
	attNone         = "none"          // GitHub had none when looked up
	attLookupFailed = "lookup_failed" // the lookup failed; a backfill retries it
	attUnreadable   = "unreadable"    // the JSONL or the trusted roots could not be read (a problem)
)

// attestationReport is verify --attestations' part of the report.
type attestationReport struct {
	// Artifacts counts the archived artifacts with an attestation record.
	Artifacts    int `json:"artifacts"`
	Bundles      int `json:"bundles"`
	Verified     int `json:"verified_bundles"`
	Failed       int `json:"failed_bundles"`
	None         int `json:"artifacts_without_attestations"`
	LookupFailed int `json:"artifacts_lookup_failed"`
	// Unchecked counts archived artifacts with no attestation record
	// (archived with lookups off, or without a digest).
	Unchecked int `json:"artifacts_unchecked"`
	// Results is one row per artifact record with an attestation record,
	// sorted by repository, run, attempt, artifact id.
	Results []attestationResult `json:"results"`
}

// attestationResult is one artifact record's attestations.
type attestationResult struct {
	objectID
	Status string `json:"status"`
	// AttestationsKey is the JSONL of bundles, "" when there is none.
	AttestationsKey string `json:"attestations_key,omitempty"`
	Bundles         int    `json:"bundles"`
	Verified        int    `json:"verified"`
	// TrustedRoot is the snapshot key or --trusted-root file used.
	TrustedRoot string `json:"trusted_root,omitempty"`
	// Bundle results, in the JSONL's order.
	Details []bundleResult `json:"details,omitempty"`
	// Error is why the lookup failed, or why the bundles could not be read.
	Error string `json:"error,omitempty"`
}

// bundleResult is one bundle's verification.
type bundleResult struct {
	Line int `json:"line"`
	attest.Result
	Error string `json:"error,omitempty"`
}

// maxAttestations bounds a JSONL read (predicates can reach 16 MB each).
const maxAttestations = 256 << 20

// attestationVerifier verifies the attestations archived with artifacts,
// against the trusted-root snapshots of the archive or an override.
type attestationVerifier struct {
	st archive.Store
	// override is --trusted-root's roots, if given.
	override     root.TrustedMaterial
	overrideName string
	// snapshots are the snapshot keys, oldest first (loaded on first use).
	snapshots []string
	listErr   error
	listed    bool
	roots     map[string]rootsOrErr
	// done caches the verification of one JSONL against one want.
	done map[verifyKey]attestationResult
}

type rootsOrErr struct {
	roots root.TrustedMaterial
	err   error
}

type verifyKey struct {
	key  string
	want attest.Want
}

// newAttestationVerifier reads --trusted-root's file, if any.
func newAttestationVerifier(st archive.Store, trustedRootFile string) (*attestationVerifier, error) {
	v := &attestationVerifier{st: st, roots: map[string]rootsOrErr{}, done: map[verifyKey]attestationResult{}}
	if trustedRootFile == "" {
		return v, nil
	}
	b, err := os.ReadFile(trustedRootFile)
	if err != nil {
		return nil, usagef("--trusted-root: %v", err)
	}
	if v.override, err = attest.LoadTrustedRoots(b); err != nil {
		return nil, usagef("--trusted-root %s: %v", trustedRootFile, err)
	}
	v.overrideName = trustedRootFile
	return v, nil
}

// check verifies the attestations of every archived artifact of entries
// and adds the failures to rep's problems.
func (v *attestationVerifier) check(ctx context.Context, rep *verifyReport, entries []*entry) {
	ar := &attestationReport{Results: []attestationResult{}}
	rep.Attestations = ar
	for _, e := range entries {
		for _, a := range e.Manifest.Artifacts {
			if a.Status != archive.StatusArchived {
				continue
			}
			if a.Attestations == nil {
				ar.Unchecked++
				continue
			}
			if ctx.Err() != nil {
				return
			}
			ar.Artifacts++
			r := v.artifact(ctx, e, a)
			ar.Results = append(ar.Results, r)
			ar.Bundles += r.Bundles
			ar.Verified += r.Verified
			switch r.Status {
			case attNone:
				ar.None++
			case attLookupFailed:
				ar.LookupFailed++
			}
			for _, d := range r.Details {
				switch {
				case d.Error == "":
				case d.Line == 0: // the JSONL and the manifest disagree
					rep.Problems = append(rep.Problems, problem{objectID: r.withKey(), Problem: "attestations: " + d.Error})
				default:
					ar.Failed++
					rep.Problems = append(rep.Problems, problem{objectID: r.withKey(), Problem: fmt.Sprintf("attestation %d of %d: %s", d.Line, r.Bundles, d.Error)})
				}
			}
			if r.Status == attUnreadable {
				rep.Problems = append(rep.Problems, problem{objectID: r.withKey(), Problem: "attestations: " + r.Error})
			}
		}
	}
	slices.SortFunc(ar.Results, func(a, b attestationResult) int {
		return cmp.Or(strings.Compare(a.Repository, b.Repository), cmp.Compare(a.RunID, b.RunID), cmp.Compare(a.Attempt, b.Attempt), cmp.Compare(a.ArtifactID, b.ArtifactID))
	})
}

// withKey is the result's objectID naming the attestations object.
func (r attestationResult) withKey() objectID {
	id := r.objectID
	if r.AttestationsKey != "" {
		id.Key = r.AttestationsKey
	}
	return id
}

// artifact verifies one artifact record's attestations.
func (v *attestationVerifier) artifact(ctx context.Context, e *entry, a archive.ArtifactRecord) attestationResult {
	id := objectRef{e, a}.id()
	rec := a.Attestations
	switch {
	case rec.Error != "":
		return attestationResult{objectID: id, Status: attLookupFailed, Error: rec.Error}
	case rec.Count == 0:
		return attestationResult{objectID: id, Status: attNone}
	}
	want := attest.Want{SHA256: a.SHA256, Repository: e.repoName(), Workflow: e.Manifest.WorkflowRun.Path}
	k := verifyKey{key: rec.Key, want: want}
	r, ok := v.done[k]
	if !ok {
		r = v.verify(ctx, rec, want)
		v.done[k] = r
	}
	r.objectID = id
	return r
}

// verify checks every bundle of rec's JSONL against want.
func (v *attestationVerifier) verify(ctx context.Context, rec *archive.AttestationRecord, want attest.Want) attestationResult {
	r := attestationResult{Status: attUnreadable, AttestationsKey: rec.Key, Bundles: rec.Count}
	if rec.Key == "" {
		r.Error = fmt.Sprintf("manifest records %d bundles but no key", rec.Count)
		return r
	}
	roots, name, err := v.trustedRoots(ctx, rec.CheckedAt)
	r.TrustedRoot = name
	if err != nil {
		r.Error = err.Error()
		return r
	}
	b, err := readSmall(ctx, v.st, rec.Key, maxAttestations)
	if errors.Is(err, archive.ErrNotFound) {
		r.Error = "missing"
		return r
	} else if err != nil {
		r.Error = "read failed: " + err.Error()
		return r
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), maxAttestations)
	var lines [][]byte
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		r.Error = "read failed: " + err.Error()
		return r
	}
	r.Bundles = len(lines)
	for i, line := range lines {
		res, err := attest.Verify(line, roots, want)
		d := bundleResult{Line: i + 1, Result: res}
		if err != nil {
			d.Error = err.Error()
		} else {
			r.Verified++
		}
		r.Details = append(r.Details, d)
	}
	r.Status = attVerified
	if r.Verified < len(lines) {
		r.Status = attFailed
	}
	if len(lines) != rec.Count {
		// A problem of its own: the manifest and the object disagree.
		r.Status = attFailed
		r.Details = append(r.Details, bundleResult{Line: 0, Error: fmt.Sprintf("the JSONL holds %d bundles, the manifest records %d", len(lines), rec.Count)})
	}
	return r
}

// trustedRoots returns the roots to verify a lookup made at checked with:
// --trusted-root's, else the newest snapshot dated at or before checked's
// UTC day, else the newest snapshot.
func (v *attestationVerifier) trustedRoots(ctx context.Context, checked time.Time) (root.TrustedMaterial, string, error) {
	if v.override != nil {
		return v.override, v.overrideName, nil
	}
	if !v.listed {
		v.listed = true
		objs, err := v.st.List(ctx, archive.TrustedRootPrefix)
		if err != nil {
			v.listErr = fmt.Errorf("list %s: %w", archive.TrustedRootPrefix, err)
		}
		for _, o := range objs {
			if strings.HasSuffix(o.Key, ".jsonl") {
				v.snapshots = append(v.snapshots, o.Key)
			}
		}
		slices.Sort(v.snapshots) // dated names sort by date
	}
	if v.listErr != nil {
		return nil, "", v.listErr
	}
	if len(v.snapshots) == 0 {
		return nil, "", fmt.Errorf("no trusted-root snapshot under %s: give --trusted-root FILE (from `gh attestation trusted-root`)", v.st.Location(archive.TrustedRootPrefix))
	}
	key := v.snapshots[len(v.snapshots)-1]
	if !checked.IsZero() {
		day := archive.TrustedRootKey(checked)
		if i, found := slices.BinarySearch(v.snapshots, day); found {
			key = v.snapshots[i]
		} else if i > 0 {
			key = v.snapshots[i-1]
		}
	}
	ro, ok := v.roots[key]
	if !ok {
		b, err := readSmall(ctx, v.st, key, attest.MaxTrustedRoots)
		if err == nil {
			ro.roots, err = attest.LoadTrustedRoots(b)
		}
		if err != nil {
			ro.err = fmt.Errorf("trusted roots %s: %w", key, err)
		}
		v.roots[key] = ro
	}
	return ro.roots, key, ro.err
}

// printAttestations prints one line per artifact record with attestations.
func printAttestations(c *cli, ar *attestationReport) error {
	if ar == nil {
		return nil
	}
	fmt.Fprintf(c.stdout, "Attestations (%s; %d of %d bundles verified):\n", plural(ar.Artifacts, "artifact"), ar.Verified, ar.Bundles)
	t := newTable(c.stdout, c.color, func(col int, v string) string {
		if col == 6 && !strings.HasSuffix(v, " verified") && v != "no attestations" {
			return sgrRed
		}
		return sgrNone
	}, "REPO", "RUN", "ATTEMPT", "ARTIFACT", "ID", "TRUSTED_ROOT", "ATTESTATIONS")
	for _, r := range ar.Results {
		t.row(r.Repository, strconv.FormatInt(r.RunID, 10), strconv.Itoa(r.Attempt), orDash(r.Artifact), strconv.FormatInt(r.ArtifactID, 10), orDash(r.TrustedRoot), r.summary())
	}
	if err := t.flush(); err != nil {
		return err
	}
	if ar.Unchecked > 0 {
		fmt.Fprintf(c.stdout, "%s archived without an attestation lookup.\n", plural(ar.Unchecked, "artifact"))
	}
	fmt.Fprintln(c.stdout)
	return nil
}

// summary is the ATTESTATIONS column.
func (r attestationResult) summary() string {
	switch r.Status {
	case attNone:
		return "no attestations"
	case attLookupFailed:
		return "attestation lookup failed: " + r.Error + ", retry with archivectl backfill --attestations"
	case attUnreadable:
		return "not verified: " + r.Error
	case attVerified:
		return fmt.Sprintf("attestations: %d verified", r.Verified)
	}
	return fmt.Sprintf("attestations: %d of %d verified, the others fail (see the problems)", r.Verified, r.Bundles)
}
