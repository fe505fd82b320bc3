// Package ghsim is a GitHub simulator for tests, benchmarks and the demo: the
// Actions artifact REST endpoints with GitHub's rules (Link pagination,
// 302 to a different blob host with URLs that expire, 410 for expired
// artifacts, rate-limit headers, secondary limits, App installation tokens),
// a blob host with Range support and injectable faults, and realistic signed
// webhook payloads.
//
// # Serving
//
// New starts two listeners on 127.0.0.1: the API (URL, with a trailing slash,
// what go-github's BaseURL and GITHUB_API_URL take) and the blob host
// (BlobURL, named "localhost" so its host differs from the API's). Fill it
// with AddRepo, AddRun and AddArtifact; Close stops it and waits for its
// handlers. Everything is safe for concurrent use.
//
// The API serves, for every repository both as /repos/{owner}/{repo} and
// as /repositories/{id} (the form of GitHub's Link URLs):
//
//	GET    .../actions/artifacts                  per_page (30, at most 100), page, name; newest first
//	GET    .../actions/runs/{run_id}/artifacts    same parameters; oldest first
//	GET    .../actions/artifacts/{id}
//	DELETE .../actions/artifacts/{id}             204, then 404 everywhere
//	GET    .../actions/artifacts/{id}/zip         302 to a signed blob URL, 410 when expired
//	GET    /repos/{owner}/{repo}, GET .../actions/runs/{run_id}
//	POST   /app/installations/{id}/access_tokens  App JWT (RS256, iss = AppID) → 201 {"token":"ghs_..."}
//	GET    /app/installations/{id}                App JWT
//	GET    /repos/{owner}/{repo}/installation     App JWT
//	GET    /installation/repositories             installation token; per_page, page
//	GET    /app/hook/deliveries                   App JWT; per_page, cursor; newest first (AddHookDelivery)
//	POST   /app/hook/deliveries/{id}/attempts     App JWT; 202, records a redelivery
//
// Every API request needs "Authorization: token X" or "Bearer X" with a
// static token of Options.Tokens (reaches every repository) or an
// installation token (reaches its installation's repositories; others answer
// 404); otherwise 401 with GitHub's JSON body. Responses carry
// X-RateLimit-{Limit,Remaining,Used,Reset,Resource}; the budget is per
// installation (shared by its tokens) or per static token, and an exhausted
// one answers 403 "API rate limit exceeded for installation ID N.".
//
// # The blob host
//
// Download URLs look like Azure SAS URLs (sv, st, se, sr, sp, rscd, sig),
// signed with an HMAC under a per-server key, valid for Options.URLTTL on
// the Options.Now clock; after that the blob host answers 403
// AuthenticationFailed in Azure's XML. A request with an Authorization
// header is answered 400 and counted in Stats.AuthRejected: a client that
// sends its GitHub token there leaks it. Bodies are application/zip, or
// application/octet-stream with the file name in Content-Disposition for
// Raw artifacts, with Content-Length, Accept-Ranges and single-range support
// (206, 416). A URL issued before a delete answers 404 BlobNotFound.
//
// # Content
//
// Artifact bodies are generated from (seed, offset) (see Content): no disk
// or RAM for multi-GiB artifacts, random access for Range, about 20 GB/s.
// The advertised "digest" is the body's SHA-256, computed on first use and
// cached (about a second per GiB): listing large artifacts the first time
// is slow.
//
// # Faults
//
// Inject makes the next N requests of a route kind misbehave:
//
//	s.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(429, 30*time.Second))
//	s.Inject(ghsim.RouteGet, 2, ghsim.ServerError(502))
//	s.Inject(ghsim.RouteBlob, 1, ghsim.ResetAfter(1<<20))             // RST after 1 MiB of body
//	s.Inject(ghsim.RouteBlob, -1, ghsim.Throttle(10<<20))             // 10 MiB/s until ClearFaults
//	s.Inject(ghsim.RouteBlob, 1, ghsim.Stall(1<<20, time.Minute))     // 1 MiB, then nothing for a minute
//	s.Inject(ghsim.RouteZip, 1, ghsim.ExpiredURL())                   // the next 302 is already expired
//	s.Inject(ghsim.RouteZip, -1, ghsim.Forbidden().ForArtifact(id))   // 403 "Resource not accessible by integration"
//
// ForArtifact limits a fault to the requests about one artifact (its
// downloads, its get, zip and delete routes). An artifact can also carry a
// bad digest: WrongDigest (a SHA-256 of something else) or MalformedDigest
// ("sha256:zz").
//
// # Observing
//
// Stats returns a snapshot: requests by route and status, blob bytes (total
// and per artifact), blob requests per artifact, Range requests with their
// start offsets, rejected Authorization headers, deletes with their times,
// tokens issued.
//
// # Process mode
//
// cmd/ghsim runs a simulator loaded from a Scenario file and, with
// Options.Admin, serves AdminHandler under /_ghsim/ (state, stats, faults,
// payloads) so a test in another process can steer and observe it.
package ghsim
