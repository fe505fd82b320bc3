package ghsim

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
)

// Routes of the attestation endpoints (attestations.go).
const (
	RouteAttestations      Route = "attestations"       // GET /repos/{o}/{r}/attestations/{subject_digest}
	RouteAttestationBundle Route = "attestation_bundle" // GET of a bundle_url on the blob host
)

const docAttestations = "https://docs.github.com/rest/repos/repos#list-attestations"

// bundlePrefix is the path of attestation bundles on the blob host.
const bundlePrefix = "/attestations-bundles/"

// Attestation is one attestation of a repository: a Sigstore bundle stored
// for a subject digest. The same bundle added for several digests (a
// bundle with several subjects) is one Attestation per digest sharing
// BundleID, as GitHub lists it for each of its subjects.
type Attestation struct {
	ID            int64  `json:"id"`
	RepoID        int64  `json:"repo_id"`
	Digest        string `json:"digest"` // hex SHA-256 of the subject, without "sha256:"
	BundleID      int64  `json:"bundle_id"`
	PredicateType string `json:"predicate_type"`
}

// attestationStore holds the attestations; s.mu guards it.
type attestationStore struct {
	list    []Attestation      // by increasing id
	bundles map[int64][]byte   // bundle id → bundle JSON
	byHash  map[[32]byte]int64 // bundle SHA-256 → bundle id
	nextID  int64              // last attestation or bundle id given
	inline  bool               // answer with the old inline "bundle" form
}

// AddAttestation stores bundleJSON as an attestation of owner/repo for the
// subject digestHex (a hex SHA-256, with or without "sha256:") with the
// in-toto predicate type predicateType, and returns it. Adding the same
// bundle (byte for byte) for another digest reuses its blob, as GitHub
// serves one bundle for each of its subjects. It fails for an unknown
// repository, a malformed digest or a bundle that is not JSON.
func (s *Server) AddAttestation(owner, repo, digestHex string, bundleJSON []byte, predicateType string) (Attestation, error) {
	digest := strings.ToLower(strings.TrimPrefix(digestHex, "sha256:"))
	if b, err := hex.DecodeString(digest); err != nil || len(b) != sha256.Size {
		return Attestation{}, fmt.Errorf("ghsim: add attestation: digest %q is not a hex SHA-256", digestHex)
	}
	if !json.Valid(bundleJSON) {
		return Attestation{}, fmt.Errorf("ghsim: add attestation: bundle is not JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[repoKey(owner, repo)]
	if rp == nil {
		return Attestation{}, fmt.Errorf("ghsim: add attestation: repository %s/%s: %w", owner, repo, ErrNotFound)
	}
	st := &s.attestations
	if st.bundles == nil {
		st.bundles = map[int64][]byte{}
		st.byHash = map[[32]byte]int64{}
	}
	sum := sha256.Sum256(bundleJSON)
	bid, ok := st.byHash[sum]
	if !ok {
		st.nextID++
		bid = st.nextID
		st.byHash[sum] = bid
		st.bundles[bid] = bytes.Clone(bundleJSON)
	}
	st.nextID++
	a := Attestation{ID: st.nextID, RepoID: rp.ID, Digest: digest, BundleID: bid, PredicateType: predicateType}
	st.list = append(st.list, a)
	return a, nil
}

// SetInlineAttestationBundles makes the attestation list answer with the
// older form, the bundle inline ("bundle": {...}) and no bundle_url, when
// on; the default is GitHub's current form, "bundle": null with a
// bundle_url on the blob host.
func (s *Server) SetInlineAttestationBundles(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attestations.inline = on
}

// attestationRoutes registers, for every repository both as
// /repos/{owner}/{repo} and as /repositories/{repo_id}:
//
//	GET .../attestations/{subject_digest}   per_page (30, at most 100), after, before, predicate_type
func (s *Server) attestationRoutes(mux *http.ServeMux) {
	for _, p := range []string{"/repos/{owner}/{repo}", "/repositories/{repo_id}"} {
		mux.Handle("GET "+p+"/attestations/{subject_digest}", s.api(RouteAttestations, false, s.handleAttestations))
	}
}

// attestationCursor renders the opaque cursor of attestation id, like
// GitHub's base64 cursors.
func attestationCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("attestation:" + strconv.FormatInt(id, 10)))
}

// parseAttestationCursor reads a cursor of attestationCursor.
func parseAttestationCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	n, ok := strings.CutPrefix(string(b), "attestation:")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(n, 10, 64)
	return id, err == nil && id > 0
}

// predicateMatches applies the predicate_type filter as GitHub does:
// "provenance" and "sbom" name families, anything else is the exact type.
func predicateMatches(filter, typ string) bool {
	switch filter {
	case "":
		return true
	case "provenance":
		return strings.Contains(typ, "slsa.dev/provenance")
	case "sbom":
		return strings.Contains(typ, "spdx.dev/Document") || strings.Contains(typ, "cyclonedx.org/bom")
	}
	return filter == typ
}

// handleAttestations lists one page of a subject's attestations, oldest
// first. Pages follow cursors only: the Link header carries rel="next"
// with after=<cursor> and rel="prev" with before=<cursor>, and there is no
// page parameter. No attestation at all answers 404, as on GitHub.
func (s *Server) handleAttestations(w http.ResponseWriter, r *http.Request, p *principal, f *Fault) {
	notFound := func() { writeError(w, http.StatusNotFound, "Not Found", docAttestations) }
	repo, ok := s.resolveRepo(r, p)
	digest, okDigest := strings.CutPrefix(r.PathValue("subject_digest"), "sha256:")
	if !ok || !okDigest {
		notFound()
		return
	}
	digest = strings.ToLower(digest)
	q := r.URL.Query()
	perPage := min(queryInt(q.Get("per_page"), 30), 100)
	var after, before int64
	for name, dst := range map[string]*int64{"after": &after, "before": &before} {
		if c := q.Get(name); c != "" {
			id, ok := parseAttestationCursor(c)
			if !ok {
				writeError(w, http.StatusBadRequest, "Invalid cursor", docAttestations)
				return
			}
			*dst = id
		}
	}
	filter := q.Get("predicate_type")

	s.mu.Lock()
	var all []Attestation
	for _, a := range s.attestations.list {
		if a.RepoID == repo.ID && a.Digest == digest && predicateMatches(filter, a.PredicateType) {
			all = append(all, a)
		}
	}
	inline := s.attestations.inline
	bundles := make(map[int64][]byte, len(all))
	for _, a := range all {
		bundles[a.BundleID] = s.attestations.bundles[a.BundleID]
	}
	s.mu.Unlock()
	if len(all) == 0 {
		notFound()
		return
	}

	// The window: after a cursor, the next perPage; before one, the
	// perPage just before it; else the first perPage.
	lo, hi := 0, len(all)
	if after > 0 {
		lo = len(all)
		for i, a := range all {
			if a.ID > after {
				lo = i
				break
			}
		}
	}
	if before > 0 {
		hi = 0
		for i, a := range all {
			if a.ID >= before {
				break
			}
			hi = i + 1
		}
		lo = max(min(lo, hi), hi-perPage)
	}
	hi = min(hi, lo+perPage)
	page := all[lo:hi]

	base := fmt.Sprintf("%srepositories/%d/attestations/sha256:%s", s.apiURL, repo.ID, digest)
	link := func(param string, id int64, rel string) string {
		v := url.Values{"per_page": {strconv.Itoa(perPage)}, param: {attestationCursor(id)}}
		if filter != "" {
			v.Set("predicate_type", filter)
		}
		return fmt.Sprintf(`<%s?%s>; rel="%s"`, base, v.Encode(), rel)
	}
	var links []string
	if len(page) > 0 && hi < len(all) {
		links = append(links, link("after", page[len(page)-1].ID, "next"))
	}
	if len(page) > 0 && lo > 0 {
		links = append(links, link("before", page[0].ID, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}

	expiry := s.now().Add(s.opts.URLTTL)
	if f != nil && f.Kind == FaultExpiredURL {
		expiry = s.now().Add(-time.Minute)
	}
	type item struct {
		Bundle       json.RawMessage `json:"bundle"`
		RepositoryID int64           `json:"repository_id"`
		BundleURL    string          `json:"bundle_url,omitempty"`
	}
	out := struct {
		Attestations []item `json:"attestations"`
	}{Attestations: make([]item, 0, len(page))}
	for _, a := range page {
		it := item{Bundle: json.RawMessage("null"), RepositoryID: a.RepoID}
		if inline {
			it.Bundle = bundles[a.BundleID]
		} else {
			it.BundleURL = s.signBundleURL(a.BundleID, expiry)
		}
		out.Attestations = append(out.Attestations, it)
	}
	writeJSON(w, http.StatusOK, out)
}

// signBundleURL returns the pre-signed blob URL of a bundle, valid until
// expiry, signed like artifact URLs.
func (s *Server) signBundleURL(bundleID int64, expiry time.Time) string {
	se := expiry.UTC().Truncate(time.Second)
	path := bundlePrefix + strconv.FormatInt(bundleID, 10)
	q := url.Values{
		"sv":  {blobAPIVersion},
		"spr": {"http"},
		"st":  {se.Add(-s.opts.URLTTL - 5*time.Minute).Format(time.RFC3339)},
		"se":  {se.Format(time.RFC3339)},
		"sr":  {"b"},
		"sp":  {"r"},
	}
	q.Set("sig", s.sign(path, q))
	return strings.TrimSuffix(s.blobURL, "/") + path + "?" + q.Encode()
}

// blobRoutes is the blob host: attestation bundles under bundlePrefix,
// artifacts (blobHandler) everywhere else.
func (s *Server) blobRoutes() http.Handler {
	artifacts := s.blobHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, bundlePrefix) {
			s.serveBundle(w, r)
			return
		}
		artifacts.ServeHTTP(w, r)
	})
}

// serveBundle serves one attestation bundle from its signed URL: snappy
// block compressed JSON, application/x-snappy. Like artifact blobs, it
// rejects an Authorization header (400, counted in Stats.AuthRejected),
// and a bad or expired signature (403 AuthenticationFailed).
func (s *Server) serveBundle(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, onStatus: func(c int) { s.countRequest(RouteAttestationBundle, c) }}
	defer func() {
		sw.finish()
		s.log.Debug("ghsim: bundle request", "method", r.Method, "path", r.URL.Path, "status", sw.code())
	}()
	reqID, ok := s.blobPreamble(sw, r)
	if !ok {
		return
	}
	if r.Method != http.MethodGet {
		azureError(sw, reqID, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.", "")
		return
	}
	if _, ok := s.checkSignedURL(sw, reqID, r.URL.Path, r.URL.Query()); !ok {
		return
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, bundlePrefix), 10, 64)
	s.mu.Lock()
	bundle, ok := s.attestations.bundles[id]
	s.mu.Unlock()
	if !ok {
		azureError(sw, reqID, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return
	}
	if f, faulty := s.takeFault(RouteAttestationBundle, 0); faulty {
		azureError(sw, reqID, cmp.Or(f.Status, http.StatusInternalServerError), "InternalError",
			"Server encountered an internal error. Please try again after some time.", "")
		return
	}
	body := snappy.Encode(nil, bundle)
	h := sw.Header()
	h.Set("Content-Type", "application/x-snappy")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("x-ms-blob-type", "BlockBlob")
	sw.WriteHeader(http.StatusOK)
	_, _ = sw.Write(body)
}

// Attestations returns every attestation, by increasing id.
func (s *Server) Attestations() []Attestation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attestations.list)
}
