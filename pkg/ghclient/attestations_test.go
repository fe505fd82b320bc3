package ghclient_test

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

const (
	provenance = "https://slsa.dev/provenance/v1"
	sbom       = "https://spdx.dev/Document/v2.3"
)

// dsseBundle is a syntactically valid Sigstore bundle whose DSSE statement
// has predicate type typ; n makes it distinct.
func dsseBundle(typ string, n int) []byte {
	stmt := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.zip","digest":{"sha256":"00"}}],"predicateType":%q,"predicate":{"n":%d}}`, typ, n)
	return fmt.Appendf(nil, `{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "dsseEnvelope": {"payload": %q, "payloadType": "application/vnd.in-toto+json", "signatures": [{"sig": "c2ln"}]}
}`, base64.StdEncoding.EncodeToString([]byte(stmt)))
}

// attestationClient is a client of sim whose bundle downloader may reach
// the simulator's blob host on 127.0.0.1.
func attestationClient(t *testing.T, sim *ghsim.Server, maxBundle int64) archive.AttestationLister {
	t.Helper()
	cs, err := ghclient.New(ghclient.Config{
		APIURL: sim.URL(), Token: token, MaxBundleSize: maxBundle,
		Bundles: ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := cs.Installation(0)
	if err != nil {
		t.Fatal(err)
	}
	return gh
}

func newAttestationSim(t *testing.T, opts ghsim.Options) *ghsim.Server {
	t.Helper()
	opts.Tokens = []string{token}
	sim, err := ghsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sim.AddRepo(0, "o", "r")
	return sim
}

func TestAttestationsEveryPageDeduplicated(t *testing.T) {
	t.Parallel()
	sim := newAttestationSim(t, ghsim.Options{})
	digest := strings.Repeat("a1", 32)
	for i := range 230 {
		typ := provenance
		if i%10 == 0 {
			typ = sbom
		}
		if _, err := sim.AddAttestation("o", "r", digest, dsseBundle(typ, i), typ); err != nil {
			t.Fatal(err)
		}
	}
	// The same bundle listed twice (GitHub lists a bundle once per subject;
	// here twice for one), re-indented: one bundle.
	dup := dsseBundle(provenance, 3)
	if _, err := sim.AddAttestation("o", "r", digest, []byte(strings.ReplaceAll(string(dup), "\n", "\n\t")), provenance); err != nil {
		t.Fatal(err)
	}
	gh := attestationClient(t, sim, 0)
	got, err := gh.Attestations(t.Context(), "o", "r", digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 230 {
		t.Fatalf("%d bundles, want 230 (231 listed, one a copy)", len(got))
	}
	types := map[string]int{}
	for _, a := range got {
		types[a.PredicateType]++
		if strings.ContainsAny(string(a.Bundle), "\n\t") {
			t.Fatalf("bundle not compact: %.80s", a.Bundle)
		}
	}
	if types[provenance] != 207 || types[sbom] != 23 {
		t.Errorf("predicate types %v, want 207 provenance, 23 sbom", types)
	}
	st := sim.Stats()
	if n := st.Count(ghsim.RouteAttestations, http.StatusOK); n != 3 {
		t.Errorf("%d list requests, want 3 pages of 100", n)
	}
	if n := st.Count(ghsim.RouteAttestationBundle, http.StatusOK); n != 231 {
		t.Errorf("%d bundles fetched, want 231", n)
	}
	if st.AuthRejected != 0 {
		t.Errorf("%d blob requests carried the token", st.AuthRejected)
	}
}

func TestAttestationsNoneInlineAndFailures(t *testing.T) {
	t.Parallel()
	sim := newAttestationSim(t, ghsim.Options{InlineAttestationBundles: true})
	gh := attestationClient(t, sim, 0)
	digest := strings.Repeat("b2", 32)

	got, err := gh.Attestations(t.Context(), "o", "r", digest)
	if err != nil || len(got) != 0 {
		t.Fatalf("none: %v %v, want empty and no error", got, err)
	}

	if _, err := sim.AddAttestation("o", "r", digest, dsseBundle(sbom, 1), sbom); err != nil {
		t.Fatal(err)
	}
	got, err = gh.Attestations(t.Context(), "o", "r", digest)
	if err != nil || len(got) != 1 || got[0].PredicateType != sbom {
		t.Fatalf("inline: %+v %v, want one sbom bundle", got, err)
	}
	if n := sim.Stats().Count(ghsim.RouteAttestationBundle, 0); n != 0 {
		t.Errorf("%d bundle fetches for inline bundles, want 0", n)
	}

	sim.Inject(ghsim.RouteAttestations, 1, ghsim.Forbidden())
	_, err = gh.Attestations(t.Context(), "o", "r", digest)
	if o, _ := archive.Classify(err); err == nil || o != archive.OutcomePermanent {
		t.Errorf("403 without a rate limit: %v (%v), want permanent", err, o)
	}
	sim.Inject(ghsim.RouteAttestations, 1, ghsim.ServerError(502))
	if _, err := gh.Attestations(t.Context(), "o", "r", digest); err == nil {
		t.Error("502: no error")
	}

	// An expired bundle_url is an error, not an empty list.
	sim.SetInlineAttestationBundles(false)
	sim.Inject(ghsim.RouteAttestations, 1, ghsim.ExpiredURL())
	if _, err := gh.Attestations(t.Context(), "o", "r", digest); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("expired bundle_url: %v, want a 403 error", err)
	}
	if _, err := gh.Attestations(t.Context(), "o", "r", digest); err != nil {
		t.Errorf("fresh bundle_url: %v", err)
	}
}

func TestAttestationBundleCap(t *testing.T) {
	t.Parallel()
	sim := newAttestationSim(t, ghsim.Options{})
	digest := strings.Repeat("c3", 32)
	big := dsseBundle(provenance, 1)
	big = append(big[:len(big)-1], fmt.Sprintf(`,"pad":%q}`, strings.Repeat("x", 4096))...)
	if _, err := sim.AddAttestation("o", "r", digest, big, provenance); err != nil {
		t.Fatal(err)
	}
	if _, err := attestationClient(t, sim, 2048).Attestations(t.Context(), "o", "r", digest); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("bundle over the cap: %v, want too large", err)
	}
	if got, err := attestationClient(t, sim, 8192).Attestations(t.Context(), "o", "r", digest); err != nil || len(got) != 1 {
		t.Fatalf("bundle under the cap: %d, %v", len(got), err)
	}
}

// TestAttestationBundleHost checks against recording servers that the
// blob host never sees a credential, and that a snappy header claiming a
// huge decoded size is refused before any decoding.
func TestAttestationBundleHost(t *testing.T) {
	t.Parallel()
	var blobAuth, blobHits atomic.Int32
	// A snappy block whose header claims 1 GiB, with a few bytes of body.
	bomb := binary.AppendUvarint(nil, 1<<30)
	bomb = append(bomb, 0x00, 'x')
	blob := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		blobHits.Add(1)
		if r.Header.Get("Authorization") != "" {
			blobAuth.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-snappy")
		w.Write(bomb)
	}))
	t.Cleanup(blob.Close)
	var apiAuth atomic.Value
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiAuth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"attestations":[{"bundle":null,"repository_id":1,"bundle_url":%q}]}`, blob.URL+"/b?sig=s")
	}))
	t.Cleanup(api.Close)

	cs, err := ghclient.New(ghclient.Config{APIURL: api.URL, Token: token, Bundles: ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true})})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := cs.Installation(0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = gh.Attestations(t.Context(), "o", "r", strings.Repeat("d4", 32))
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("snappy bomb: %v, want too large", err)
	}
	if a, _ := apiAuth.Load().(string); a != "Bearer "+token {
		t.Fatalf("API request Authorization %q, want the token", a)
	}
	if blobHits.Load() != 1 || blobAuth.Load() != 0 {
		t.Fatalf("blob host: %d requests, %d with Authorization; want 1, 0", blobHits.Load(), blobAuth.Load())
	}

	// The default bundle downloader refuses http:// and loopback.
	cs, err = ghclient.New(ghclient.Config{APIURL: api.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	gh, _ = cs.Installation(0)
	_, err = gh.Attestations(t.Context(), "o", "r", strings.Repeat("d4", 32))
	if !errors.Is(err, archive.ErrBadRedirect) || blobHits.Load() != 1 {
		t.Fatalf("default downloader on http://127.0.0.1: %v (blob hits %d), want ErrBadRedirect and no request", err, blobHits.Load())
	}
	if strings.Contains(err.Error(), "sig=") {
		t.Errorf("error names the signed URL: %v", err)
	}
}
