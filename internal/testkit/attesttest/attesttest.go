// Package attesttest makes real, verifiable Sigstore attestation bundles
// for tests: a private Sigstore instance shaped like GitHub's own (a
// Fulcio-style CA whose intermediate is issued to "GitHub, Inc.", and an
// RFC 3161 timestamp authority; no transparency log), which signs in-toto
// statements as a GitHub Actions workflow would, and the trusted_root.json
// that verifies them.
//
// A bundle it makes is what GitHub's attestation API serves: protobuf-JSON
// of a v0.3 bundle holding the leaf certificate (SAN URI
// https://github.com/<owner>/<repo>/<workflow>@refs/heads/main, issuer
// https://token.actions.githubusercontent.com, and the Fulcio extensions
// for the source repository, build signer and build config), a DSSE
// envelope over the statement, and a signed timestamp.
package attesttest

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"google.golang.org/protobuf/encoding/protojson"
)

// Values GitHub Actions attestations carry.
const (
	// Issuer is the OIDC issuer of GitHub Actions tokens.
	Issuer = "https://token.actions.githubusercontent.com"
	// SLSAProvenance is actions/attest-build-provenance's predicate type.
	SLSAProvenance = "https://slsa.dev/provenance/v1"
	// IssuerOrg is the organisation of the CA's intermediate, as on
	// GitHub's own Sigstore instance (verifiers pick their policy by it).
	IssuerOrg = "GitHub, Inc."

	bundleMediaType   = "application/vnd.dev.sigstore.bundle.v0.3+json"
	inTotoPayloadType = "application/vnd.in-toto+json"
)

// Sigstore is a private Sigstore instance: a certificate authority and a
// timestamp authority. Its keys live as long as the value.
type Sigstore struct {
	caRoot, caInter, tsaLeaf *x509.Certificate
	caInterKey, tsaLeafKey   *ecdsa.PrivateKey
	tsaRoot                  *x509.Certificate
	start                    time.Time
}

// Spec is one attestation to sign.
type Spec struct {
	Owner, Repo string
	// Workflow is the workflow file, e.g. ".github/workflows/release.yml".
	Workflow string
	// SignerRepo and SignerWorkflow, when set, make the certificate's SAN
	// (the signing workflow) a reusable workflow of another repository,
	// while the build config stays Owner/Repo's Workflow.
	SignerRepo, SignerWorkflow string
	// SHA256 is the hex digest of the subject; SubjectName its name
	// (default "artifact.zip").
	SHA256, SubjectName string
	// PredicateType defaults to SLSAProvenance.
	PredicateType string
	// Issuer is the OIDC issuer in the certificate (default Issuer).
	Issuer string
}

// Generate makes a new instance with fresh keys, valid from an hour ago
// for ten years.
func Generate() (*Sigstore, error) {
	s := &Sigstore{start: time.Now().Add(-time.Hour).Truncate(time.Second)}
	end := s.start.AddDate(10, 0, 0)
	rootKey, err := newKey()
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "internal", Organization: []string{IssuerOrg}},
		NotBefore:    s.start, NotAfter: end,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	if s.caRoot, err = sign(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey); err != nil {
		return nil, err
	}
	if s.caInterKey, err = newKey(); err != nil {
		return nil, err
	}
	s.caInter, err = sign(&x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "Fulcio Intermediate l2", Organization: []string{IssuerOrg}},
		NotBefore:    s.start, NotAfter: end,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}, s.caRoot, &s.caInterKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}

	tsaRootKey, err := newKey()
	if err != nil {
		return nil, err
	}
	tsaRootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "tsa-root", Organization: []string{IssuerOrg}},
		NotBefore:    s.start, NotAfter: end,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	if s.tsaRoot, err = sign(tsaRootTmpl, tsaRootTmpl, &tsaRootKey.PublicKey, tsaRootKey); err != nil {
		return nil, err
	}
	if s.tsaLeafKey, err = newKey(); err != nil {
		return nil, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}}) // id-kp-timeStamping
	if err != nil {
		return nil, err
	}
	s.tsaLeaf, err = sign(&x509.Certificate{
		SerialNumber: big.NewInt(4),
		Subject:      pkix.Name{CommonName: "tsa-leaf", Organization: []string{IssuerOrg}},
		NotBefore:    s.start, NotAfter: end,
		KeyUsage: x509.KeyUsageDigitalSignature,
		// RFC 3161 wants the timestamping EKU, critical.
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}, s.tsaRoot, &s.tsaLeafKey.PublicKey, tsaRootKey)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// New is Generate for tests.
func New(t testing.TB) *Sigstore {
	t.Helper()
	s, err := Generate()
	if err != nil {
		t.Fatalf("attesttest: %v", err)
	}
	return s
}

// TrustedRoot is the instance's trusted root (CA and TSA, no logs).
func (s *Sigstore) TrustedRoot() (*root.TrustedRoot, error) {
	ca := &root.FulcioCertificateAuthority{
		Root: s.caRoot, Intermediates: []*x509.Certificate{s.caInter},
		ValidityPeriodStart: s.start, URI: "https://fulcio.attesttest.invalid",
	}
	tsa := &root.SigstoreTimestampingAuthority{
		Root: s.tsaRoot, Leaf: s.tsaLeaf,
		ValidityPeriodStart: s.start, URI: "https://timestamp.attesttest.invalid",
	}
	return root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{ca}, nil, []root.TimestampingAuthority{tsa}, nil)
}

// TrustedRootJSON is the trusted_root.json of the instance on one line,
// as `gh attestation trusted-root` prints it.
func (s *Sigstore) TrustedRootJSON(t testing.TB) []byte {
	t.Helper()
	tr, err := s.TrustedRoot()
	if err != nil {
		t.Fatalf("attesttest: trusted root: %v", err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatalf("attesttest: trusted root: %v", err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("attesttest: trusted root: %v", err)
	}
	return out.Bytes()
}

// Bundle signs a SLSA provenance statement over sha256hex as
// owner/repo's workflow and returns the bundle's JSON on one line.
func (s *Sigstore) Bundle(t testing.TB, owner, repo, workflow, sha256hex string) []byte {
	t.Helper()
	return s.MustSign(t, Spec{Owner: owner, Repo: repo, Workflow: workflow, SHA256: sha256hex})
}

// Tampered signs, validly, a statement over a digest other than
// sha256hex: verification against sha256hex must report a mismatch.
func (s *Sigstore) Tampered(t testing.TB, owner, repo, workflow, sha256hex string) []byte {
	t.Helper()
	other := sha256.Sum256([]byte("not " + sha256hex))
	return s.MustSign(t, Spec{Owner: owner, Repo: repo, Workflow: workflow, SHA256: fmt.Sprintf("%x", other)})
}

// MustSign is Sign for tests.
func (s *Sigstore) MustSign(t testing.TB, spec Spec) []byte {
	t.Helper()
	b, err := s.Sign(spec)
	if err != nil {
		t.Fatalf("attesttest: %v", err)
	}
	return b
}

// Sign makes a bundle for spec: a fresh leaf certificate for the
// workflow's identity, a DSSE envelope over the in-toto statement, and a
// timestamp over its signature. The JSON is on one line.
func (s *Sigstore) Sign(spec Spec) ([]byte, error) {
	statement, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": cmp.Or(spec.SubjectName, "artifact.zip"), "digest": map[string]string{"sha256": spec.SHA256}}},
		"predicateType": cmp.Or(spec.PredicateType, SLSAProvenance),
		"predicate":     map[string]any{"buildDefinition": map[string]any{"buildType": "https://actions.github.io/buildtypes/workflow/v1"}},
	})
	if err != nil {
		return nil, err
	}
	leaf, key, err := s.leaf(spec)
	if err != nil {
		return nil, err
	}
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d ", len(inTotoPayloadType), inTotoPayloadType, len(statement))
	pae = append(pae, statement...)
	digest := sha256.Sum256(pae)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("sign envelope: %w", err)
	}
	tsr, err := s.timestamp(sig)
	if err != nil {
		return nil, err
	}
	b := &protobundle.Bundle{
		MediaType: bundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
			TimestampVerificationData: &protobundle.TimestampVerificationData{
				Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
			},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: statement, PayloadType: inTotoPayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, err
	}
	var line bytes.Buffer
	if err := json.Compact(&line, out); err != nil {
		return nil, err
	}
	return line.Bytes(), nil
}

// leaf issues a short-lived certificate for spec's workflow identity.
func (s *Sigstore) leaf(spec Spec) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	repoURL := "https://github.com/" + spec.Owner + "/" + spec.Repo
	const ref = "@refs/heads/main"
	config := repoURL + "/" + spec.Workflow + ref
	signer := config
	if spec.SignerRepo != "" {
		signer = "https://github.com/" + spec.SignerRepo + "/" + spec.SignerWorkflow + ref
	}
	san, err := url.Parse(signer)
	if err != nil {
		return nil, nil, err
	}
	exts := []struct {
		oid asn1.ObjectIdentifier
		v   string
	}{
		{certificate.OIDIssuerV2, cmp.Or(spec.Issuer, Issuer)},
		{certificate.OIDBuildSignerURI, signer},
		{certificate.OIDRunnerEnvironment, "github-hosted"},
		{certificate.OIDSourceRepositoryURI, repoURL},
		{certificate.OIDSourceRepositoryDigest, strings.Repeat("a", 40)},
		{certificate.OIDSourceRepositoryRef, "refs/heads/main"},
		{certificate.OIDSourceRepositoryOwnerURI, "https://github.com/" + spec.Owner},
		{certificate.OIDBuildConfigURI, config},
		{certificate.OIDBuildTrigger, "push"},
	}
	var extra []pkix.Extension
	for _, e := range exts {
		v, err := asn1.MarshalWithParams(e.v, "utf8")
		if err != nil {
			return nil, nil, err
		}
		extra = append(extra, pkix.Extension{Id: e.oid, Value: v})
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	cert, err := sign(&x509.Certificate{
		SerialNumber: serial,
		URIs:         []*url.URL{san},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(10 * time.Minute),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: extra,
	}, s.caInter, &key.PublicKey, s.caInterKey)
	return cert, key, err
}

// timestamp is the TSA's RFC 3161 response over sig.
func (s *Sigstore) timestamp(sig []byte) ([]byte, error) {
	h := sha256.Sum256(sig)
	ts := timestamp.Timestamp{
		HashAlgorithm: crypto.SHA256,
		HashedMessage: h[:],
		Time:          time.Now(),
		Policy:        asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
	}
	b, err := ts.CreateResponseWithOpts(s.tsaLeaf, s.tsaLeafKey, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	return b, nil
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}
