// Package ghclient is the archiver's GitHub REST client: go-github v66 for
// the artifact endpoints (with the artifact digest that v66 lacks), GitHub
// App installation tokens through ghinstallation, rate-limit classification
// (403 and 429, Retry-After, X-RateLimit-Reset), pacing of mutating
// requests, and a separate credential-free [Downloader] for the blob host
// that GitHub redirects downloads to.
package ghclient
