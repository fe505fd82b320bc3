package archive_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

const (
	provenanceV1 = "https://slsa.dev/provenance/v1"
	spdxV23      = "https://spdx.dev/Document/v2.3"
)

// signedBundle is a syntactically valid Sigstore bundle (not really
// signed) with a DSSE statement of predicate type typ; n makes it distinct.
func signedBundle(typ string, n int) []byte {
	stmt := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","predicateType":%q,"predicate":{"n":%d}}`, typ, n)
	return fmt.Appendf(nil, "{\n  \"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\",\n  \"dsseEnvelope\": {\"payload\": %q, \"payloadType\": \"application/vnd.in-toto+json\"}\n}",
		base64.StdEncoding.EncodeToString([]byte(stmt)))
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// fakeRoots is a TrustedRootSource that fails while fail is set.
type fakeRoots struct {
	fail  atomic.Bool
	calls atomic.Int32
}

const rootsJSONL = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[]}` + "\n"

func (f *fakeRoots) TrustedRoots(ctx context.Context) ([]byte, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return nil, errors.New("tuf: offline")
	}
	return []byte(rootsJSONL), nil
}

// attestEnv is an archiver with attestation lookups on, wired to the
// simulator through clients whose bundle downloader reaches 127.0.0.1.
type attestEnv struct {
	*archivetest.Env
	arch  *archive.Archiver
	reg   *prometheus.Registry
	roots *fakeRoots
	repo  ghsim.Repo
	run   ghsim.Run
}

func setupAttestations(t *testing.T) *attestEnv {
	t.Helper()
	e := &attestEnv{Env: archivetest.New(t, nil), reg: prometheus.NewRegistry(), roots: &fakeRoots{}}
	cs, err := ghclient.New(ghclient.Config{
		APIURL: e.Sim.URL(), AppID: archivetest.AppID, PrivateKey: e.AppKey,
		Bundles: ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.Config
	cfg.GitHub, cfg.Attestations, cfg.TrustedRoots, cfg.Metrics = cs, true, e.roots, archive.NewMetrics(e.reg)
	if e.arch, err = archive.New(cfg); err != nil {
		t.Fatal(err)
	}
	e.repo = e.Sim.AddRepo(archivetest.Installation, "octo-org", "attested")
	e.run = e.Sim.AddRun(e.repo.Owner, e.repo.Name, ghsim.RunSpec{})
	return e
}

func (e *attestEnv) layout() archive.Layout {
	return archive.Layout{Owner: e.repo.Owner, Repo: e.repo.Name, RunID: e.run.ID}
}

// artifact adds an artifact and returns it with its digest.
func (e *attestEnv) artifact(t *testing.T, spec ghsim.ArtifactSpec) (ghsim.Artifact, string) {
	t.Helper()
	a := e.Sim.AddArtifact(e.repo.Owner, e.repo.Name, e.run.ID, spec)
	d, _ := e.Sim.SHA256(a.ID)
	return a, d
}

func (e *attestEnv) attest(t *testing.T, digest string, bundle []byte, typ string) {
	t.Helper()
	if _, err := e.Sim.AddAttestation(e.repo.Owner, e.repo.Name, digest, bundle, typ); err != nil {
		t.Fatal(err)
	}
}

func (e *attestEnv) archive(t *testing.T) (archive.RunResult, map[int64]archive.ArtifactRecord) {
	t.Helper()
	res, err := e.arch.ArchiveRun(t.Context(), archivetest.Event(e.repo, e.run), false)
	if err != nil {
		t.Fatalf("ArchiveRun: %v", err)
	}
	m := e.Manifest(t, e.repo.Owner, e.repo.Name, e.run.ID, 1)
	if !m.Complete {
		t.Fatalf("manifest not complete: %+v", m.Artifacts)
	}
	byID := map[int64]archive.ArtifactRecord{}
	for _, r := range m.Artifacts {
		byID[r.ID] = r
	}
	return res, byID
}

func (e *attestEnv) lookups(t *testing.T, outcome string) float64 {
	return counterWithOutcome(t, e.reg, "archiver_attestation_lookups_total", outcome)
}

// counterWithOutcome reads the counter name{outcome=outcome}, 0 if absent.
func counterWithOutcome(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// jsonlLines reads an attestations object.
func (e *attestEnv) jsonlLines(t *testing.T, key string) []string {
	t.Helper()
	return strings.Split(strings.TrimSuffix(string(e.Read(t, key)), "\n"), "\n")
}

func TestAttestationsArchived(t *testing.T) {
	t.Parallel()
	e := setupAttestations(t)
	two, d2 := e.artifact(t, ghsim.ArtifactSpec{Name: "two", Size: 3000})
	shared, dShared := e.artifact(t, ghsim.ArtifactSpec{Name: "shared", Size: 4000})
	none, _ := e.artifact(t, ghsim.ArtifactSpec{Name: "none", Size: 5000})
	noDigest, _ := e.artifact(t, ghsim.ArtifactSpec{Name: "nodigest", Size: 6000, NoDigest: true})
	prov, sbom := signedBundle(provenanceV1, 1), signedBundle(spdxV23, 2)
	e.attest(t, d2, prov, provenanceV1)
	e.attest(t, d2, sbom, spdxV23)
	e.attest(t, dShared, prov, provenanceV1) // one bundle, two subjects

	_, recs := e.archive(t)
	l := e.layout()
	r := recs[two.ID].Attestations
	if r == nil || r.Count != 2 || r.Key != l.AttestationsKey(two.ID) || r.Error != "" ||
		!slices.Equal(r.PredicateTypes, []string{provenanceV1, spdxV23}) || r.CheckedAt.IsZero() {
		t.Fatalf("artifact with two bundles: %+v", r)
	}
	if got, want := e.jsonlLines(t, r.Key), []string{compact(t, prov), compact(t, sbom)}; !slices.Equal(got, want) {
		t.Errorf("%s holds\n%q\nwant\n%q", r.Key, got, want)
	}
	if r := recs[shared.ID].Attestations; r == nil || r.Count != 1 || !slices.Equal(e.jsonlLines(t, r.Key), []string{compact(t, prov)}) {
		t.Errorf("artifact sharing a bundle: %+v", r)
	}
	if r := recs[none.ID].Attestations; r == nil || r.Count != 0 || r.Key != "" || r.Error != "" || r.CheckedAt.IsZero() {
		t.Errorf("artifact without attestations: %+v, want count 0 and no key", r)
	}
	if _, err := e.Store.Stat(t.Context(), l.AttestationsKey(none.ID)); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("attestations object of an artifact without any: %v, want none", err)
	}
	if r := recs[noDigest.ID]; r.Status != archive.StatusArchived || r.Attestations != nil {
		t.Errorf("artifact without digest: %+v, want archived with no lookup", r)
	}
	// Each artifact folder still holds exactly one object.
	for _, id := range []int64{two.ID, shared.ID} {
		if objs, err := e.Store.List(t.Context(), l.ArtifactPrefix(id)); err != nil || len(objs) != 1 {
			t.Errorf("artifact folder %d: %d objects (%v), want 1", id, len(objs), err)
		}
	}
	if got := e.lookups(t, "found"); got != 2 {
		t.Errorf("lookups found %v, want 2", got)
	}
	if got := e.lookups(t, "none"); got != 1 {
		t.Errorf("lookups none %v, want 1", got)
	}
	st := e.Sim.Stats()
	if st.AuthRejected != 0 {
		t.Errorf("%d blob requests carried the installation token", st.AuthRejected)
	}
	if n := st.Count(ghsim.RouteAttestationBundle, http.StatusOK); n != 3 {
		t.Errorf("%d bundle fetches, want 3", n)
	}
	// Today's trusted root snapshot, once.
	if got := string(e.Read(t, archive.TrustedRootKey(time.Now()))); got != rootsJSONL {
		t.Errorf("trusted root snapshot %q", got)
	}
	// A second delivery finds the run done: no lookups, no snapshot fetch.
	res, _ := e.archive(t)
	if !res.AlreadyComplete || e.Sim.Stats().Count(ghsim.RouteAttestations, 0) != 3 || e.roots.calls.Load() != 1 {
		t.Errorf("second delivery: already complete %v, %d lookups (want 3), %d trusted root fetches (want 1)",
			res.AlreadyComplete, e.Sim.Stats().Count(ghsim.RouteAttestations, 0), e.roots.calls.Load())
	}
}

func TestFailedAttestationLookupIsRecordedAndRetried(t *testing.T) {
	t.Parallel()
	e := setupAttestations(t)
	a, d := e.artifact(t, ghsim.ArtifactSpec{Name: "a", Size: 2000})
	e.attest(t, d, signedBundle(provenanceV1, 1), provenanceV1)
	e.roots.fail.Store(true)
	l := e.layout()

	// 1: the lookup is refused (the App lacks attestations: read).
	e.Sim.Inject(ghsim.RouteAttestations, 1, ghsim.Forbidden())
	res, recs := e.archive(t)
	r := recs[a.ID]
	if res.AlreadyComplete || r.Status != archive.StatusArchived || r.Attestations == nil || r.Attestations.Error == "" || r.Attestations.Count != 0 {
		t.Fatalf("refused lookup: %+v %+v, want archived with an attestation error", r, r.Attestations)
	}
	if _, err := e.Store.Stat(t.Context(), l.AttestationsKey(a.ID)); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("attestations object after a refused lookup: %v", err)
	}
	if got := e.lookups(t, "failed"); got != 1 {
		t.Errorf("lookups failed %v, want 1", got)
	}
	blobBytes := e.Sim.Stats().BlobBytesByArtifact[a.ID]

	// 2: the bundle host fails: still an error, the artifact untouched.
	e.Sim.Inject(ghsim.RouteAttestationBundle, 1, ghsim.ServerError(503))
	res, recs = e.archive(t)
	if res.AlreadyComplete || recs[a.ID].Attestations == nil || !strings.Contains(recs[a.ID].Attestations.Error, "503") {
		t.Fatalf("failing bundle host: already complete %v, %+v", res.AlreadyComplete, recs[a.ID].Attestations)
	}

	// 3: the lookup works; the trusted roots still fail, which is only
	// counted.
	res, recs = e.archive(t)
	if r := recs[a.ID].Attestations; res.AlreadyComplete || r == nil || r.Error != "" || r.Count != 1 || r.Key != l.AttestationsKey(a.ID) {
		t.Fatalf("retry: already complete %v, %+v", res.AlreadyComplete, r)
	}
	if got := e.Sim.Stats().BlobBytesByArtifact[a.ID]; got != blobBytes {
		t.Errorf("artifact downloaded again for its attestations: %d bytes, then %d", blobBytes, got)
	}
	if got := counterWithOutcome(t, e.reg, "archiver_trusted_root_snapshots_total", "failed"); got != 3 {
		t.Errorf("failed trusted root snapshots %v, want 3", got)
	}
	if _, err := e.Store.Stat(t.Context(), archive.TrustedRootKey(time.Now())); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("trusted root snapshot written from a failing source: %v", err)
	}

	// 4: done; nothing looked up again.
	lookups := e.Sim.Stats().Count(ghsim.RouteAttestations, 0)
	if res, _ = e.archive(t); !res.AlreadyComplete || e.Sim.Stats().Count(ghsim.RouteAttestations, 0) != lookups {
		t.Errorf("fourth delivery: already complete %v, lookups %d -> %d", res.AlreadyComplete, lookups, e.Sim.Stats().Count(ghsim.RouteAttestations, 0))
	}
}

func TestStoredAttestationsAreMerged(t *testing.T) {
	t.Parallel()
	e := setupAttestations(t)
	subset, dSubset := e.artifact(t, ghsim.ArtifactSpec{Name: "subset", Size: 1000})
	superset, dSuperset := e.artifact(t, ghsim.ArtifactSpec{Name: "superset", Size: 1100})
	b1, b2, old := signedBundle(provenanceV1, 1), signedBundle(spdxV23, 2), signedBundle(provenanceV1, 99)
	e.attest(t, dSubset, b1, provenanceV1)
	e.attest(t, dSuperset, b2, spdxV23)
	l := e.layout()
	put := func(key string, lines ...[]byte) archive.ObjectInfo {
		var body []byte
		for _, line := range lines {
			body = append(append(body, compact(t, line)...), '\n')
		}
		info, err := e.Store.Put(t.Context(), key, bytes.NewReader(body), int64(len(body)), archive.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	// An earlier lookup stored a bundle GitHub no longer lists: kept, and
	// the new one added.
	put(l.AttestationsKey(subset.ID), old)
	// Another worker stored more than GitHub lists now: kept as it is.
	before := put(l.AttestationsKey(superset.ID), b2, old)

	_, recs := e.archive(t)
	if r := recs[subset.ID].Attestations; r == nil || r.Count != 2 || !slices.Equal(r.PredicateTypes, []string{provenanceV1}) {
		t.Errorf("union: %+v", r)
	}
	if got, want := e.jsonlLines(t, l.AttestationsKey(subset.ID)), []string{compact(t, old), compact(t, b1)}; !slices.Equal(got, want) {
		t.Errorf("union object %q, want %q", got, want)
	}
	if r := recs[superset.ID].Attestations; r == nil || r.Count != 2 || !slices.Equal(r.PredicateTypes, []string{provenanceV1, spdxV23}) {
		t.Errorf("superset: %+v", r)
	}
	if after, err := e.Store.Stat(t.Context(), l.AttestationsKey(superset.ID)); err != nil || after.ETag != before.ETag {
		t.Errorf("superset object rewritten: etag %s -> %s (%v)", before.ETag, after.ETag, err)
	}
}

func TestMergeManifestsAttestations(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ok := func(at time.Time, n int) *archive.AttestationRecord {
		return &archive.AttestationRecord{Count: n, CheckedAt: at}
	}
	failed := func(at time.Time) *archive.AttestationRecord {
		return &archive.AttestationRecord{CheckedAt: at, Error: "403"}
	}
	for _, tc := range []struct {
		name         string
		stored, ours *archive.AttestationRecord
		want         *archive.AttestationRecord
	}{
		{"both nil", nil, nil, nil},
		{"only stored", ok(t0, 1), nil, ok(t0, 1)},
		{"only ours", nil, ok(t0, 1), ok(t0, 1)},
		{"error-free stored beats newer error", ok(t0, 1), failed(t0.Add(time.Hour)), ok(t0, 1)},
		{"error-free ours beats older error", failed(t0), ok(t0.Add(time.Hour), 2), ok(t0.Add(time.Hour), 2)},
		{"newer of two successes", ok(t0.Add(time.Hour), 3), ok(t0, 1), ok(t0.Add(time.Hour), 3)},
		{"newer of two errors", failed(t0), failed(t0.Add(time.Hour)), failed(t0.Add(time.Hour))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := func(a *archive.AttestationRecord) *archive.Manifest {
				return &archive.Manifest{Artifacts: []archive.ArtifactRecord{{ID: 1, Status: archive.StatusArchived, Attestations: a}}}
			}
			got := archive.MergeManifests(rec(tc.stored), rec(tc.ours)).Artifacts[0].Attestations
			if (got == nil) != (tc.want == nil) || (got != nil && (got.Count != tc.want.Count || got.Error != tc.want.Error || !got.CheckedAt.Equal(tc.want.CheckedAt))) {
				t.Errorf("merged %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBundlePredicateTypeAndTrustedRootKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bundle string
		want   string
	}{
		{string(signedBundle(spdxV23, 1)), spdxV23},
		{`{"messageSignature":{}}`, ""},
		{`{"dsseEnvelope":{"payload":"not base64!"}}`, ""},
		{`{"dsseEnvelope":{"payload":"` + base64.StdEncoding.EncodeToString([]byte("[]")) + `"}}`, ""},
		{`not json`, ""},
	} {
		if got := archive.BundlePredicateType([]byte(tc.bundle)); got != tc.want {
			t.Errorf("BundlePredicateType(%.40s) = %q, want %q", tc.bundle, got, tc.want)
		}
	}
	late := time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600))
	if got := archive.TrustedRootKey(late); got != "_trust/trusted_root/2026-03-02.jsonl" {
		t.Errorf("TrustedRootKey(%v) = %q, want the UTC day", late, got)
	}
}
