// Package ghclient is the archiver's GitHub REST client: go-github v66 for
// the artifact endpoints (with the artifact digest that v66 lacks), GitHub
// App installation tokens through ghinstallation, rate-limit classification
// (403 and 429, Retry-After, X-RateLimit-Reset), pacing of mutating
// requests, and a separate credential-free [Downloader] for the blob host
// that GitHub redirects downloads to.
//
// # Credentials
//
// The API clients add their credentials (a static token, an installation
// token or the App's JWT) inside their RoundTripper, so they would send
// them again on any redirect they follow. They follow redirects on the API
// host only and refuse any other with [archive.ErrBadRedirect]; the zip
// endpoint's 302 is not followed at all, its Location is returned. The
// [Downloader] fetches that Location with no credentials, over https, and
// connects only to public addresses, checked after DNS resolution (see
// [DownloaderConfig.AllowHTTP]). No error names a token or a signed URL's
// query.
//
// # Errors
//
// Rate limits are *[archive.RetryAfterError] with At at least
// [MinRetryWait] ahead; 401, and 403 without a rate limit, are permanent; a
// download that receives nothing for the stall timeout is
// [archive.ErrStalled], a retry, never a context error; only the caller's
// own cancellation surfaces as context.Canceled.
package ghclient
