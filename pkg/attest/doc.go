// Package attest verifies archived artifact attestations: GitHub's
// Sigstore bundles, offline, against the archive's snapshot of the
// trusted roots, with sigstore-go. It also fetches those trusted roots
// for the worker's daily snapshot ([Sources]).
//
// # Verification
//
// [Verify] checks one bundle as `gh attestation verify --bundle
// --custom-trusted-root` would: the policy follows the instance that
// issued the certificate (Sigstore Public Good: SCTs, a transparency log
// entry and an observer timestamp; GitHub's own instance: an RFC 3161
// signed timestamp), then a subject must be the artifact's SHA-256, the
// OIDC issuer GitHub Actions, the certificate's source repository the
// run's repository and, if given, the signing or top-level workflow the
// run's workflow file.
//
// # Errors
//
// Verify wraps ErrBundle, ErrSignature, ErrDigestMismatch,
// ErrIssuerMismatch, ErrRepositoryMismatch or ErrWorkflowMismatch.
package attest
