// Package deploy holds the deployment files of artifact-archiver (images,
// the local compose stack, Kustomize manifests, NATS Helm values, S3 and
// GitHub App configuration, alerts and dashboard) and the tests that
// validate them in CI: see deploy/README.md. It has no code of its own.
package deploy
