package ghsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// attestationPage is the list endpoint's body.
type attestationPage struct {
	Attestations []struct {
		Bundle       json.RawMessage `json:"bundle"`
		RepositoryID int64           `json:"repository_id"`
		BundleURL    string          `json:"bundle_url"`
	} `json:"attestations"`
}

var (
	linkRel = regexp.MustCompile(`<([^>]+)>; rel="(\w+)"`)
	noPage  = regexp.MustCompile(`[?&]page=`)
)

// links parses a Link header into rel → URL.
func links(h string) map[string]string {
	out := map[string]string{}
	for _, m := range linkRel.FindAllStringSubmatch(h, -1) {
		out[m[2]] = m[1]
	}
	return out
}

func testBundle(i int) []byte {
	return fmt.Appendf(nil, `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","n":%d}`, i)
}

func addAttestation(t *testing.T, e *env, digest string, bundle []byte, typ string) ghsim.Attestation {
	t.Helper()
	a, err := e.s.AddAttestation(owner, repoName, digest, bundle, typ)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAttestationsCursorPagination(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	digest := strings.Repeat("1f", 32)
	for i := range 7 {
		typ := "https://slsa.dev/provenance/v1"
		if i%3 == 2 {
			typ = "https://spdx.dev/Document/v2.3"
		}
		addAttestation(t, e, digest, testBundle(i), typ)
	}
	addAttestation(t, e, strings.Repeat("2e", 32), testBundle(100), "x") // another subject

	// Forward through the pages with per_page=3: 3, 3, 1.
	next := fmt.Sprintf("repos/%s/%s/attestations/sha256:%s?per_page=3", owner, repoName, digest)
	var sizes []int
	var urls []string
	var lastLinks map[string]string
	for next != "" {
		resp, body := e.call(t, "GET", next, pat)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", next, resp.StatusCode, body)
		}
		if resp.Header.Get("X-RateLimit-Remaining") == "" {
			t.Fatal("no rate-limit headers")
		}
		p := decode[attestationPage](t, body)
		sizes = append(sizes, len(p.Attestations))
		for _, a := range p.Attestations {
			if string(a.Bundle) != "null" || a.RepositoryID != e.repo.ID || a.BundleURL == "" {
				t.Fatalf("item %+v: want bundle null, repository_id %d, a bundle_url", a, e.repo.ID)
			}
			urls = append(urls, a.BundleURL)
		}
		lastLinks = links(resp.Header.Get("Link"))
		if noPage.MatchString(resp.Header.Get("Link")) {
			t.Fatalf("Link %q uses page numbers", resp.Header.Get("Link"))
		}
		next = lastLinks["next"]
	}
	if fmt.Sprint(sizes) != "[3 3 1]" {
		t.Fatalf("page sizes %v, want [3 3 1]", sizes)
	}
	// The last page links back; the previous page is the 3 before it.
	prev := lastLinks["prev"]
	if prev == "" || !strings.Contains(prev, "before=") {
		t.Fatalf("last page links %v: want a prev with before=", lastLinks)
	}
	resp, body := e.call(t, "GET", prev, pat)
	if p := decode[attestationPage](t, body); resp.StatusCode != http.StatusOK || len(p.Attestations) != 3 || p.Attestations[0].BundleURL == "" {
		t.Fatalf("prev page: %d %s", resp.StatusCode, body)
	}

	// Every bundle_url serves its bundle, snappy compressed, without auth.
	seen := map[string]bool{}
	for _, u := range urls {
		if strings.HasPrefix(u, e.s.URL()) || !strings.HasPrefix(u, e.s.BlobURL()) {
			t.Fatalf("bundle_url %s is not on the blob host %s", u, e.s.BlobURL())
		}
		resp, body := e.call(t, "GET", u, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-snappy" {
			t.Fatalf("bundle %s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		b, err := snappy.Decode(nil, body)
		if err != nil || !json.Valid(b) {
			t.Fatalf("bundle body: %v %q", err, b)
		}
		seen[string(b)] = true
	}
	if len(seen) != 7 {
		t.Fatalf("%d distinct bundles served, want 7", len(seen))
	}

	// predicate_type filters, by family or exactly.
	for filter, want := range map[string]int{"provenance": 5, "sbom": 2, "https://spdx.dev/Document/v2.3": 2, "other": 0} {
		resp, body := e.call(t, "GET", fmt.Sprintf("repos/%s/%s/attestations/sha256:%s?predicate_type=%s", owner, repoName, digest, url.QueryEscape(filter)), pat)
		got := 0
		if resp.StatusCode == http.StatusOK {
			got = len(decode[attestationPage](t, body).Attestations)
		} else if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("filter %s: %d", filter, resp.StatusCode)
		}
		if got != want {
			t.Errorf("predicate_type=%s: %d attestations, want %d", filter, got, want)
		}
	}
}

func TestAttestationsNotFoundAndAuth(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	path := fmt.Sprintf("repos/%s/%s/attestations/sha256:%s", owner, repoName, strings.Repeat("ab", 32))
	resp, body := e.call(t, "GET", path, pat)
	if resp.StatusCode != http.StatusNotFound || decode[map[string]string](t, body)["message"] != "Not Found" {
		t.Fatalf("no attestations: %d %s, want 404 Not Found", resp.StatusCode, body)
	}
	if resp, _ := e.call(t, "GET", path, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", resp.StatusCode)
	}
	if _, err := e.s.AddAttestation(owner, repoName, "sha256:zz", testBundle(1), ""); err == nil {
		t.Fatal("malformed digest accepted")
	}
	if _, err := e.s.AddAttestation(owner, repoName, strings.Repeat("ab", 32), []byte("{"), ""); err == nil {
		t.Fatal("bundle that is not JSON accepted")
	}
	if _, err := e.s.AddAttestation("nobody", "none", strings.Repeat("ab", 32), testBundle(1), ""); err == nil {
		t.Fatal("unknown repository accepted")
	}
}

func TestAttestationBundleURL(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{URLTTL: 30 * time.Second})
	d1, d2 := strings.Repeat("01", 32), strings.Repeat("02", 32)
	shared := testBundle(1)
	a1 := addAttestation(t, e, d1, shared, "p")
	a2 := addAttestation(t, e, "sha256:"+d2, shared, "p")
	if a1.BundleID != a2.BundleID || a1.ID == a2.ID {
		t.Fatalf("one bundle for two subjects: %+v %+v, want one bundle id", a1, a2)
	}
	bundleURL := func() string {
		resp, body := e.call(t, "GET", fmt.Sprintf("repositories/%d/attestations/sha256:%s", e.repo.ID, d2), pat)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %s", resp.StatusCode, body)
		}
		return decode[attestationPage](t, body).Attestations[0].BundleURL
	}
	u := bundleURL()
	// An Authorization header is refused and counted: a leaked token.
	if resp, _ := e.call(t, "GET", u, pat); resp.StatusCode != http.StatusBadRequest || e.s.Stats().AuthRejected != 1 {
		t.Fatalf("with a token: %d, rejected %d; want 400, 1", resp.StatusCode, e.s.Stats().AuthRejected)
	}
	// A tampered signature is refused.
	if resp, _ := e.call(t, "GET", strings.Replace(u, "sig=", "sig=x", 1), ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tampered signature: %d, want 403", resp.StatusCode)
	}
	// The URL expires after URLTTL.
	e.clock.Advance(31 * time.Second)
	resp, body := e.call(t, "GET", u, "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "AuthenticationFailed") {
		t.Fatalf("expired bundle_url: %d %s, want 403 AuthenticationFailed", resp.StatusCode, body)
	}
	resp, body = e.call(t, "GET", bundleURL(), "")
	if b, err := snappy.Decode(nil, body); resp.StatusCode != http.StatusOK || err != nil || !bytes.Equal(b, shared) {
		t.Fatalf("fresh bundle_url: %d %q %v", resp.StatusCode, b, err)
	}
	// ExpiredURL on the list route hands out expired URLs.
	e.s.Inject(ghsim.RouteAttestations, 1, ghsim.ExpiredURL())
	if resp, _ := e.call(t, "GET", bundleURL(), ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("URL from a faulted list: %d, want 403", resp.StatusCode)
	}
	// A server error on the blob host.
	e.s.Inject(ghsim.RouteAttestationBundle, 1, ghsim.ServerError(503))
	if resp, _ := e.call(t, "GET", bundleURL(), ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("faulted bundle: %d, want 503", resp.StatusCode)
	}
	if got := e.s.Stats().Count(ghsim.RouteAttestationBundle, http.StatusOK); got != 1 {
		t.Fatalf("%d bundles served, want 1", got)
	}
}

func TestAttestationFaultsAndInline(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{InlineAttestationBundles: true})
	digest := strings.Repeat("0a", 32)
	bundle := testBundle(9)
	addAttestation(t, e, digest, bundle, "p")
	path := fmt.Sprintf("repos/%s/%s/attestations/sha256:%s", owner, repoName, digest)

	resp, body := e.call(t, "GET", path, pat)
	p := decode[attestationPage](t, body)
	if resp.StatusCode != http.StatusOK || len(p.Attestations) != 1 || !bytes.Equal(p.Attestations[0].Bundle, bundle) || p.Attestations[0].BundleURL != "" {
		t.Fatalf("inline form: %d %s", resp.StatusCode, body)
	}
	e.s.SetInlineAttestationBundles(false)
	if _, body := e.call(t, "GET", path, pat); decode[attestationPage](t, body).Attestations[0].BundleURL == "" {
		t.Fatalf("after switching inline off: %s, want a bundle_url", body)
	}

	e.s.Inject(ghsim.RouteAttestations, 1, ghsim.Forbidden())
	e.s.Inject(ghsim.RouteAttestations, 1, ghsim.ServerError(500))
	for _, want := range []int{http.StatusForbidden, http.StatusInternalServerError, http.StatusOK} {
		if resp, body := e.call(t, "GET", path, pat); resp.StatusCode != want {
			t.Fatalf("status %d %s, want %d", resp.StatusCode, body, want)
		}
	}
}

func TestAttestationAdmin(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{Admin: true})
	digest := strings.Repeat("0c", 32)
	post := func(method, path, body string) int {
		req, err := http.NewRequestWithContext(t.Context(), method, e.s.URL()+"_ghsim/"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	add := fmt.Sprintf(`{"owner":%q,"repo":%q,"digest":"sha256:%s","bundle":{"a":1},"predicate_type":"p"}`, owner, repoName, digest)
	if code := post("POST", "attestations", add); code != http.StatusCreated {
		t.Fatalf("admin add: %d", code)
	}
	if code := post("PUT", "attestations/inline", `{"on":true}`); code != http.StatusNoContent {
		t.Fatalf("admin inline: %d", code)
	}
	if code := post("POST", "faults", `{"route":"attestations","count":1,"fault":{"kind":"server_error","status":502}}`); code != http.StatusNoContent {
		t.Fatalf("admin fault: %d", code)
	}
	path := fmt.Sprintf("repos/%s/%s/attestations/sha256:%s", owner, repoName, digest)
	if resp, _ := e.call(t, "GET", path, pat); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("faulted: %d, want 502", resp.StatusCode)
	}
	resp, body := e.call(t, "GET", path, pat)
	if p := decode[attestationPage](t, body); resp.StatusCode != http.StatusOK || string(p.Attestations[0].Bundle) != `{"a":1}` {
		t.Fatalf("after admin: %d %s", resp.StatusCode, body)
	}
}
