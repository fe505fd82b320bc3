package attest

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// Errors of Verify, for callers that branch on the kind of failure. Each
// is wrapped with the values that differ.
var (
	// ErrBundle: the bundle is not a Sigstore bundle sigstore-go can load.
	ErrBundle = errors.New("malformed bundle")
	// ErrSignature: the signature, certificate chain or timestamps do not
	// verify against the trusted roots.
	ErrSignature = errors.New("signature does not verify")
	// ErrDigestMismatch: the bundle verifies, but no subject of its
	// statement is the artifact's SHA-256.
	ErrDigestMismatch = errors.New("subject digest mismatch")
	// ErrIssuerMismatch: the certificate was not issued to a GitHub
	// Actions identity.
	ErrIssuerMismatch = errors.New("certificate issuer mismatch")
	// ErrRepositoryMismatch: the signer's source repository is not the
	// run's repository.
	ErrRepositoryMismatch = errors.New("signer repository mismatch")
	// ErrWorkflowMismatch: neither the signing workflow nor the build's
	// top-level workflow is the run's workflow.
	ErrWorkflowMismatch = errors.New("signer workflow mismatch")
)

// GitHubActionsIssuer is the OIDC issuer in certificates of GitHub
// Actions workflows.
const GitHubActionsIssuer = "https://token.actions.githubusercontent.com"

// Organisations of the Fulcio intermediates of the two instances GitHub
// attestations are signed on; Verify picks its policy by them, as
// `gh attestation verify` does.
const (
	PublicGoodIssuerOrg = "sigstore.dev"
	GitHubIssuerOrg     = "GitHub, Inc."
)

// Instances a bundle can come from (Result.Instance).
const (
	InstancePublicGood = "public-good" // Sigstore Public Good: SCTs, Rekor, observer timestamps
	InstanceGitHub     = "github"      // GitHub's own instance: RFC 3161 signed timestamps
	InstanceCustom     = "custom"      // another CA: observer timestamps, Rekor if the root has one
)

// Want is what an attestation must prove about an archived artifact.
type Want struct {
	// SHA256 is the artifact's hex SHA-256.
	SHA256 string
	// Repository is "owner/repo", the run's repository: the certificate's
	// source repository must be it.
	Repository string
	// Workflow, if set, is the run's workflow file
	// (".github/workflows/release.yml"): the signing workflow or the
	// build's top-level workflow must be it.
	Workflow string
}

// Subject is one subject of an in-toto statement.
type Subject struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256,omitempty"`
}

// Result is what Verify learned of a bundle. Outside Verified, the fields
// are read from the bundle as it is, verified or not.
type Result struct {
	// Verified is true when every check passed.
	Verified bool `json:"verified"`
	// Instance is InstanceGitHub, InstancePublicGood or InstanceCustom.
	Instance      string    `json:"instance,omitempty"`
	PredicateType string    `json:"predicate_type,omitempty"`
	Subjects      []Subject `json:"subjects,omitempty"`
	// SignerWorkflow is the certificate's SAN: the workflow that signed,
	// "https://github.com/<owner>/<repo>/<path>@<ref>".
	SignerWorkflow string `json:"signer_workflow,omitempty"`
	// BuildConfig is the top-level workflow of the run that signed (it
	// differs from SignerWorkflow when a reusable workflow signed).
	BuildConfig string `json:"build_config,omitempty"`
	// SourceRepository is "https://github.com/<owner>/<repo>".
	SourceRepository string `json:"source_repository,omitempty"`
	Issuer           string `json:"issuer,omitempty"`
	// SignedAt is the earliest verified timestamp (zero unless Verified).
	SignedAt time.Time `json:"signed_at,omitzero"`
}

// Verify checks one Sigstore bundle (its JSON) against trusted and want:
// the signature, certificate chain and timestamps (with the policy of the
// instance that issued the certificate), that a subject is want.SHA256,
// that the certificate is a GitHub Actions identity of want.Repository
// and, if set, want.Workflow. The error wraps one of the package's
// sentinels; the Result says what the bundle claims even then.
func Verify(bundleJSON []byte, trusted root.TrustedMaterial, want Want) (Result, error) {
	var res Result
	b := &bundle.Bundle{}
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return res, fmt.Errorf("%w: %w", ErrBundle, err)
	}
	leaf, err := describe(b, &res)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrBundle, err)
	}
	digest, err := hex.DecodeString(want.SHA256)
	if err != nil || len(digest) != 32 {
		return res, fmt.Errorf("attest: sha256 %q: want 64 hex digits", want.SHA256)
	}
	res.Instance, err = instance(leaf)
	if err != nil {
		return res, err
	}
	v, err := verify.NewVerifier(trusted, verifierOptions(res.Instance, trusted)...)
	if err != nil {
		return res, fmt.Errorf("attest: new verifier: %w", err)
	}
	id, err := verify.NewShortCertificateIdentity(GitHubActionsIssuer, "", "", `^https://`)
	if err != nil {
		return res, fmt.Errorf("attest: identity: %w", err)
	}
	vr, err := v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithCertificateIdentity(id)))
	if err != nil {
		return res, classify(v, b, &res, want, err)
	}
	// Read the identity again from the verified certificate.
	if c := vr.Signature.Certificate; c != nil {
		res.SignerWorkflow, res.Issuer = c.SubjectAlternativeName, c.Issuer
		res.SourceRepository, res.BuildConfig = c.SourceRepositoryURI, c.BuildConfigURI
	}
	for _, ts := range vr.VerifiedTimestamps {
		if res.SignedAt.IsZero() || ts.Timestamp.Before(res.SignedAt) {
			res.SignedAt = ts.Timestamp.UTC()
		}
	}
	if err := checkSigner(res, want); err != nil {
		res.SignedAt = time.Time{}
		return res, err
	}
	res.Verified = true
	return res, nil
}

// classify names why the full policy failed: it verifies again without
// the artifact and identity, so a bad signature is told apart from a
// validly signed statement about something else.
func classify(v *verify.Verifier, b *bundle.Bundle, res *Result, want Want, policyErr error) error {
	if _, err := v.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithoutIdentitiesUnsafe())); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	var got []string
	for _, s := range res.Subjects {
		got = append(got, s.SHA256)
	}
	if !slices.Contains(got, strings.ToLower(want.SHA256)) {
		return fmt.Errorf("%w: statement is over sha256 %s, artifact is %s", ErrDigestMismatch, strings.Join(got, ", "), want.SHA256)
	}
	if res.Issuer != GitHubActionsIssuer {
		return fmt.Errorf("%w: issuer %q, want %q", ErrIssuerMismatch, res.Issuer, GitHubActionsIssuer)
	}
	return fmt.Errorf("%w: %w", ErrSignature, policyErr)
}

// checkSigner compares the verified identity with want.
func checkSigner(res Result, want Want) error {
	repoURL := "https://github.com/" + want.Repository
	src := res.SourceRepository
	if src == "" { // certificates before the source repository extension
		src = repoOf(res.SignerWorkflow)
	}
	if !strings.EqualFold(src, repoURL) {
		return fmt.Errorf("%w: signed by %s, run is in %s", ErrRepositoryMismatch, orNone(src), repoURL)
	}
	if want.Workflow == "" {
		return nil
	}
	prefix := repoURL + "/" + strings.TrimPrefix(want.Workflow, "/") + "@"
	for _, uri := range []string{res.BuildConfig, res.SignerWorkflow} {
		if len(uri) >= len(prefix) && strings.EqualFold(uri[:len(prefix)], prefix) {
			return nil
		}
	}
	return fmt.Errorf("%w: signed by %s (build config %s), run's workflow is %s", ErrWorkflowMismatch, orNone(res.SignerWorkflow), orNone(res.BuildConfig), want.Workflow)
}

// repoOf is "https://github.com/<owner>/<repo>" of a workflow URI.
func repoOf(uri string) string {
	rest, ok := strings.CutPrefix(uri, "https://github.com/")
	if !ok {
		return ""
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 2 {
		return ""
	}
	return "https://github.com/" + parts[0] + "/" + parts[1]
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// describe fills res with what the bundle claims, unverified, and returns
// its leaf certificate.
func describe(b *bundle.Bundle, res *Result) (*x509.Certificate, error) {
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, err
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return nil, errors.New("signed with a key, not a certificate")
	}
	sum, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	res.SignerWorkflow, res.Issuer = sum.SubjectAlternativeName, sum.Issuer
	res.SourceRepository, res.BuildConfig = sum.SourceRepositoryURI, sum.BuildConfigURI
	env, err := b.Envelope()
	if err != nil {
		return nil, fmt.Errorf("not an attestation: %w", err)
	}
	var st struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	res.PredicateType = st.PredicateType
	for _, s := range st.Subject {
		res.Subjects = append(res.Subjects, Subject{Name: s.Name, SHA256: strings.ToLower(s.Digest["sha256"])})
	}
	return leaf, nil
}

// instance names the Sigstore instance by the organisation that issued
// the leaf certificate.
func instance(leaf *x509.Certificate) (string, error) {
	if len(leaf.Issuer.Organization) == 0 {
		return "", fmt.Errorf("%w: certificate issuer %q names no organisation", ErrBundle, leaf.Issuer)
	}
	switch leaf.Issuer.Organization[0] {
	case PublicGoodIssuerOrg:
		return InstancePublicGood, nil
	case GitHubIssuerOrg:
		return InstanceGitHub, nil
	}
	return InstanceCustom, nil
}

// verifierOptions is the policy of an instance, as gh attestation verify
// applies it.
func verifierOptions(inst string, trusted root.TrustedMaterial) []verify.VerifierOption {
	switch inst {
	case InstancePublicGood:
		return []verify.VerifierOption{verify.WithSignedCertificateTimestamps(1), verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
	case InstanceGitHub:
		return []verify.VerifierOption{verify.WithSignedTimestamps(1)}
	}
	opts := []verify.VerifierOption{verify.WithObserverTimestamps(1)}
	if len(trusted.RekorLogs()) > 0 {
		opts = append(opts, verify.WithTransparencyLog(1))
	}
	return opts
}
