package ghsim

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned for an unknown repository, run, artifact or
// installation.
var ErrNotFound = errors.New("not found")

// APIVersion is the REST API version the simulator implements.
const APIVersion = "2022-11-28"

// Options configures a Server. Zero fields get the defaults noted.
type Options struct {
	// APIAddr and BlobAddr are the listen addresses of the API host and of
	// the blob host. Default "127.0.0.1:0" (a free port).
	APIAddr  string
	BlobAddr string
	// BlobHost is the host name used in blob URLs, so that they point to a
	// different host than the API, as on GitHub. Default "localhost".
	BlobHost string

	// Now is the clock for URL and token expiry, artifact expiry and
	// rate-limit windows. Default time.Now. Throttled streams and
	// DeleteRequest.Wall use the real clock. App JWTs are checked against
	// Now, while ghinstallation signs them with the real clock: keep a
	// manual clock near the real time in tests that use both.
	Now func() time.Time
	// URLTTL is how long a download URL stays valid. Default 1 minute.
	URLTTL time.Duration
	// TokenTTL is how long an installation token stays valid. Default 1 hour.
	TokenTTL time.Duration
	// RateLimit is the primary budget per installation (or static token) per
	// hour. Default 5000.
	RateLimit int

	// Tokens are static tokens, like personal access tokens, that reach
	// every repository.
	Tokens []string
	// AppID and AppPublicKey (or AppPrivateKey, whose public half is used)
	// enable App authentication: JWTs for /app/installations/{id}/...
	AppID         int64
	AppPublicKey  *rsa.PublicKey
	AppPrivateKey *rsa.PrivateKey

	// HideExpired leaves expired artifacts out of every response (404 for a
	// get or a download), as GitHub does since 2026-09-24. Default false:
	// listed with "expired": true, and the download answers 410.
	HideExpired bool
	// APIVersions are the accepted X-GitHub-Api-Version values (a request
	// without the header is accepted). Default ["2022-11-28"].
	APIVersions []string
	// InlineAttestationBundles makes the attestation list answer with the
	// older form, "bundle": {...} inline and no bundle_url (see
	// SetInlineAttestationBundles). Default false: "bundle": null and a
	// bundle_url on the blob host, as GitHub answers now.
	InlineAttestationBundles bool
	// Admin serves the control endpoints under /_ghsim/ on the API host
	// (see AdminHandler), for a simulator run as a separate process.
	Admin bool

	// Logger receives debug logs of every request. Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.APIAddr = cmp.Or(o.APIAddr, "127.0.0.1:0")
	o.BlobAddr = cmp.Or(o.BlobAddr, "127.0.0.1:0")
	o.BlobHost = cmp.Or(o.BlobHost, "localhost")
	if o.Now == nil {
		o.Now = time.Now
	}
	o.URLTTL = cmp.Or(o.URLTTL, time.Minute)
	o.TokenTTL = cmp.Or(o.TokenTTL, time.Hour)
	o.RateLimit = cmp.Or(o.RateLimit, 5000)
	if len(o.APIVersions) == 0 {
		o.APIVersions = []string{APIVersion}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AppPublicKey == nil && o.AppPrivateKey != nil {
		o.AppPublicKey = &o.AppPrivateKey.PublicKey
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.URLTTL < 0:
		return fmt.Errorf("ghsim: options: URLTTL %v must not be negative", o.URLTTL)
	case o.TokenTTL < 0:
		return fmt.Errorf("ghsim: options: TokenTTL %v must not be negative", o.TokenTTL)
	case o.RateLimit < 0:
		return fmt.Errorf("ghsim: options: RateLimit %d must not be negative", o.RateLimit)
	case o.AppID != 0 && o.AppPublicKey == nil:
		return errors.New("ghsim: options: AppID needs AppPublicKey or AppPrivateKey")
	case o.AppID == 0 && o.AppPublicKey != nil:
		return errors.New("ghsim: options: an App key needs AppID")
	case slices.Contains(o.Tokens, ""):
		return errors.New("ghsim: options: Tokens must not contain an empty token")
	}
	return nil
}

// Server is a simulated GitHub: the Actions artifact API on one listener
// and the blob host that serves downloads on another. It is safe for
// concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	appKey  *rsa.PublicKey
	signKey []byte // HMAC key of blob URLs

	apiURL, blobURL string
	apiSrv, blobSrv *http.Server
	ctx             context.Context // cancelled by Close: ends throttled streams
	cancel          context.CancelFunc
	serving         sync.WaitGroup // the Serve goroutines
	handlers        sync.WaitGroup // running handlers
	closeOnce       sync.Once
	closeErr        error

	mu             sync.Mutex
	closed         bool
	static         map[string]int64 // static token → user id
	tokens         map[string]*installationToken
	repos          map[string]*Repo // by repoKey
	reposByID      map[int64]*Repo
	runs           map[int64]*Run
	artifacts      map[int64]*Artifact
	order          []*Artifact // by increasing id
	nextRepoID     int64
	nextRunID      int64
	nextArtifactID int64
	limits         map[string]*bucket
	faults         map[Route][]*injected
	digests        map[contentKey]*digestEntry
	stats          Stats
	requestSeq     uint64

	hooks        hookLog          // the App's webhook deliveries (hook_deliveries.go)
	attestations attestationStore // guarded by mu (attestations.go)
}

// New starts a simulator: both listeners are serving when it returns.
// Close it when done.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		opts:           opts,
		log:            opts.Logger,
		now:            opts.Now,
		appKey:         opts.AppPublicKey,
		signKey:        []byte(rand.Text()),
		static:         map[string]int64{},
		tokens:         map[string]*installationToken{},
		repos:          map[string]*Repo{},
		reposByID:      map[int64]*Repo{},
		runs:           map[int64]*Run{},
		artifacts:      map[int64]*Artifact{},
		nextRepoID:     100_000_000,
		nextRunID:      10_000_000_000,
		nextArtifactID: 3_000_000_000,
		limits:         map[string]*bucket{},
		faults:         map[Route][]*injected{},
		digests:        map[contentKey]*digestEntry{},
	}
	s.attestations.inline = opts.InlineAttestationBundles
	for i, t := range opts.Tokens {
		s.static[t] = int64(583231 + i)
	}
	apiLn, err := net.Listen("tcp", opts.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("ghsim: listen api %s: %w", opts.APIAddr, err)
	}
	blobLn, err := net.Listen("tcp", opts.BlobAddr)
	if err != nil {
		apiLn.Close()
		return nil, fmt.Errorf("ghsim: listen blob %s: %w", opts.BlobAddr, err)
	}
	_, blobPort, _ := net.SplitHostPort(blobLn.Addr().String())
	s.apiURL = "http://" + apiLn.Addr().String() + "/"
	s.blobURL = "http://" + net.JoinHostPort(opts.BlobHost, blobPort) + "/"
	s.ctx, s.cancel = context.WithCancel(context.Background())
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	s.apiSrv = &http.Server{
		Handler:           s.track(s.apiHandler()),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          errLog,
	}
	s.blobSrv = &http.Server{
		Handler:           s.track(s.blobRoutes()), // attestations.go
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          errLog,
	}
	for _, p := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{s.apiSrv, apiLn}, {s.blobSrv, blobLn}} {
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("ghsim: serve", "addr", p.ln.Addr().String(), "err", err)
			}
		}()
	}
	s.log.Info("ghsim: serving", "api_url", s.apiURL, "blob_url", s.blobURL)
	return s, nil
}

// Close stops both listeners, cuts open connections and waits for running
// handlers. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		err := errors.Join(s.apiSrv.Close(), s.blobSrv.Close())
		s.serving.Wait()
		s.handlers.Wait()
		if err != nil {
			s.closeErr = fmt.Errorf("ghsim: close: %w", err)
		}
	})
	return s.closeErr
}

// URL returns the API base URL with a trailing slash, like
// "http://127.0.0.1:PORT/": what GITHUB_API_URL and go-github's BaseURL take.
func (s *Server) URL() string { return s.apiURL }

// BlobURL returns the base URL of the blob host ("http://localhost:PORT/").
func (s *Server) BlobURL() string { return s.blobURL }

// track counts running handlers so Close can wait for them.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "ghsim: closed", http.StatusServiceUnavailable)
			return
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// Documentation URLs of GitHub's error bodies.
const (
	docArtifacts    = "https://docs.github.com/rest/actions/artifacts"
	docRepos        = "https://docs.github.com/rest/repos/repos#get-a-repository"
	docRuns         = "https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run"
	docTokens       = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
	docInstallation = "https://docs.github.com/rest/apps/apps#get-an-installation-for-the-authenticated-app"
	docRest         = "https://docs.github.com/rest"
	docSecondary    = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	docPrimary      = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits"
)

// apiHandler routes the API host. Every repository route is served both as
// /repos/{owner}/{repo}/... and as /repositories/{repo_id}/..., the form
// GitHub uses in Link headers.
func (s *Server) apiHandler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/repos/{owner}/{repo}", "/repositories/{repo_id}"} {
		mux.Handle("GET "+p, s.api(RouteRepo, false, s.handleRepo))
		mux.Handle("GET "+p+"/actions/artifacts", s.api(RouteList, false, s.handleList))
		mux.Handle("GET "+p+"/actions/runs/{run_id}/artifacts", s.api(RouteList, false, s.handleList))
		mux.Handle("GET "+p+"/actions/runs/{run_id}", s.api(RouteRun, false, s.handleRun))
		mux.Handle("GET "+p+"/actions/artifacts/{artifact_id}", s.api(RouteGet, false, s.handleGet))
		mux.Handle("DELETE "+p+"/actions/artifacts/{artifact_id}", s.api(RouteDelete, false, s.handleDelete))
		mux.Handle("GET "+p+"/actions/artifacts/{artifact_id}/{archive_format}", s.api(RouteZip, false, s.handleZip))
	}
	mux.Handle("POST /app/installations/{installation_id}/access_tokens", s.api(RouteToken, true, s.handleToken))
	mux.Handle("GET /app/installations/{installation_id}", s.api(RouteInstallation, true, s.handleInstallation))
	s.installationRoutes(mux) // installation_repos.go
	s.hookDeliveryRoutes(mux) // hook_deliveries.go
	s.attestationRoutes(mux)  // attestations.go
	if s.opts.Admin {
		mux.Handle("/_ghsim/", http.StripPrefix("/_ghsim", s.AdminHandler()))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, onStatus: func(c int) { s.countRequest(RouteOther, c) }}
		writeError(sw, http.StatusNotFound, "Not Found", docRest)
	})
	return mux
}

// apiFunc serves one API route for an authenticated caller. f is the fault
// taken by the request when the route must act on it (ExpiredURL).
type apiFunc func(w http.ResponseWriter, r *http.Request, p *principal, f *Fault)

// api wraps h with what every API request goes through, in GitHub's order:
// version check, authentication (the App JWT when app), the primary rate
// limit, then injected faults.
func (s *Server) api(route Route, app bool, h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, onStatus: func(c int) { s.countRequest(route, c) }}
		var p *principal
		defer func() {
			sw.finish()
			s.log.Debug("ghsim: api request", "method", r.Method, "path", r.URL.Path, "route", string(route), "status", sw.code())
			if route == RouteDelete && p != nil {
				s.recordDelete(r, p, sw.code())
			}
		}()
		hdr := sw.Header()
		hdr.Set("X-GitHub-Request-Id", s.requestID())
		hdr.Set("X-GitHub-Api-Version-Selected", APIVersion)
		hdr.Set("X-GitHub-Media-Type", "github.v3; format=json")
		if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && !slices.Contains(s.opts.APIVersions, v) {
			writeError(sw, http.StatusBadRequest, fmt.Sprintf("API version %s is not supported.", v), docRest)
			return
		}
		var err error
		if app {
			p, err = s.authenticateApp(r)
		} else {
			p, err = s.authenticate(r)
		}
		if err != nil {
			p = nil
			setRateHeaders(hdr, s.spendAnonymous())
			writeError(sw, http.StatusUnauthorized, err.Error(), docRest)
			return
		}
		st, ok := s.spend(p)
		setRateHeaders(hdr, st)
		if !ok {
			writeError(sw, http.StatusForbidden, rateLimitMessage(p), docPrimary)
			return
		}
		var fault *Fault
		artifactID, _ := pathID(r, "artifact_id") // 0 on routes about no single artifact
		if f, ok := s.takeFault(route, artifactID); ok {
			switch f.Kind {
			case FaultServerError:
				writeError(sw, f.Status, http.StatusText(f.Status), "")
				return
			case FaultForbidden:
				writeError(sw, http.StatusForbidden, "Resource not accessible by integration", docArtifacts)
				return
			case FaultSecondaryLimit:
				hdr.Set("Retry-After", strconv.FormatInt(f.RetryAfterSeconds, 10))
				writeError(sw, f.Status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID "+hdr.Get("X-GitHub-Request-Id")+".", docSecondary)
				return
			default:
				fault = &f
			}
		}
		h(sw, r, p, fault)
	})
}

func (s *Server) requestID() string {
	s.mu.Lock()
	s.requestSeq++
	n := s.requestSeq
	s.mu.Unlock()
	x := splitmix64(n)
	return fmt.Sprintf("%04X:%04X:%06X:%07X:%08X", x>>48, (x>>32)&0xFFFF, (x>>8)&0xFFFFFF, n&0xFFFFFFF, uint32(x))
}

func (s *Server) recordDelete(r *http.Request, p *principal, status int) {
	id, _ := strconv.ParseInt(r.PathValue("artifact_id"), 10, 64)
	d := DeleteRequest{ArtifactID: id, Status: status, InstallationID: p.installationID, At: s.now(), Wall: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Deletes = append(s.stats.Deletes, d)
}

// resolveRepo returns the repository named by the request path if the
// caller can reach it.
func (s *Server) resolveRepo(r *http.Request, p *principal) (Repo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var repo *Repo
	if idStr := r.PathValue("repo_id"); idStr != "" {
		id, err := strconv.ParseInt(idStr, 10, 64)
		if err != nil {
			return Repo{}, false
		}
		repo = s.reposByID[id]
	} else {
		repo = s.repos[repoKey(r.PathValue("owner"), r.PathValue("repo"))]
	}
	if repo == nil || !p.canReach(repo) {
		return Repo{}, false
	}
	return *repo, true
}

// pathID parses an int64 path value.
func pathID(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

func (s *Server) handleRepo(w http.ResponseWriter, r *http.Request, p *principal, _ *Fault) {
	repo, ok := s.resolveRepo(r, p)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docRepos)
		return
	}
	writeJSON(w, http.StatusOK, s.repoJSON(&repo))
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request, p *principal, _ *Fault) {
	repo, ok := s.resolveRepo(r, p)
	runID, okID := pathID(r, "run_id")
	var run Run
	if ok && okID {
		run, ok = s.Run(runID)
	}
	if !ok || !okID || run.RepoID != repo.ID {
		writeError(w, http.StatusNotFound, "Not Found", docRuns)
		return
	}
	writeJSON(w, http.StatusOK, s.runJSON(&run, &repo))
}

// handleList serves a repository's or a run's artifact list, one page.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request, p *principal, _ *Fault) {
	repo, ok := s.resolveRepo(r, p)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docArtifacts+"#list-artifacts-for-a-repository")
		return
	}
	var runID int64
	base := fmt.Sprintf("%srepositories/%d/actions/artifacts", s.apiURL, repo.ID)
	if r.PathValue("run_id") != "" {
		id, okID := pathID(r, "run_id")
		run, okRun := s.Run(id)
		if !okID || !okRun || run.RepoID != repo.ID {
			writeError(w, http.StatusNotFound, "Not Found", docArtifacts+"#list-workflow-run-artifacts")
			return
		}
		runID = id
		base = fmt.Sprintf("%srepositories/%d/actions/runs/%d/artifacts", s.apiURL, repo.ID, id)
	}
	q := r.URL.Query()
	views := s.listArtifacts(repo.ID, runID, q.Get("name"))
	perPage := queryInt(q.Get("per_page"), 30)
	if perPage > 100 {
		perPage = 100
	}
	page := queryInt(q.Get("page"), 1)
	last := max(1, (len(views)+perPage-1)/perPage)
	lo := min((page-1)*perPage, len(views))
	hi := min(lo+perPage, len(views))
	if link := linkHeader(base, r.URL.RawQuery, page, last); link != "" {
		w.Header().Set("Link", link)
	}
	out := struct {
		TotalCount int            `json:"total_count"`
		Artifacts  []artifactJSON `json:"artifacts"`
	}{TotalCount: len(views), Artifacts: make([]artifactJSON, 0, hi-lo)}
	for _, v := range views[lo:hi] {
		out.Artifacts = append(out.Artifacts, s.render(v))
	}
	writeJSON(w, http.StatusOK, out)
}

// queryInt parses a positive integer query parameter; anything else gives
// def, as GitHub falls back to the default.
func queryInt(v string, def int) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return def
	}
	return n
}

// linkHeader renders GitHub's Link header for page of last: prev, next,
// last, first, each the request's query with page replaced, e.g.
// `<https://api.github.com/repositories/1/actions/artifacts?per_page=100&page=2>; rel="next"`.
func linkHeader(base, rawQuery string, page, last int) string {
	link := func(n int, rel string) string {
		var parts []string
		replaced := false
		for _, kv := range strings.Split(rawQuery, "&") {
			if kv == "" {
				continue
			}
			if k, _, _ := strings.Cut(kv, "="); k == "page" {
				if !replaced {
					parts = append(parts, "page="+strconv.Itoa(n))
					replaced = true
				}
				continue
			}
			parts = append(parts, kv)
		}
		if !replaced {
			parts = append(parts, "page="+strconv.Itoa(n))
		}
		return fmt.Sprintf(`<%s?%s>; rel="%s"`, base, strings.Join(parts, "&"), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(min(page-1, last), "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	return strings.Join(links, ", ")
}

// findArtifact returns the artifact of the request path if it belongs to
// repo and is visible.
func (s *Server) findArtifact(r *http.Request, repo Repo) (artifactView, bool) {
	id, ok := pathID(r, "artifact_id")
	if !ok {
		return artifactView{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.artifacts[id]
	now := s.now()
	if !ok || a.RepoID != repo.ID || !a.visible(now, s.opts.HideExpired) {
		return artifactView{}, false
	}
	return artifactView{a: *a, run: *s.runs[a.RunID], expired: a.expired(now)}, true
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, p *principal, _ *Fault) {
	repo, ok := s.resolveRepo(r, p)
	var v artifactView
	if ok {
		v, ok = s.findArtifact(r, repo)
	}
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docArtifacts+"#get-an-artifact")
		return
	}
	writeJSON(w, http.StatusOK, s.render(v))
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, p *principal, _ *Fault) {
	repo, ok := s.resolveRepo(r, p)
	var v artifactView
	if ok {
		v, ok = s.findArtifact(r, repo)
	}
	if ok {
		ok = s.Delete(v.a.ID)
	}
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docArtifacts+"#delete-an-artifact")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleZip answers the download request with a 302 to a signed blob URL,
// or 410 for an expired artifact.
func (s *Server) handleZip(w http.ResponseWriter, r *http.Request, p *principal, f *Fault) {
	repo, ok := s.resolveRepo(r, p)
	var v artifactView
	if ok && r.PathValue("archive_format") == "zip" {
		v, ok = s.findArtifact(r, repo)
	} else {
		ok = false
	}
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "Not Found", docArtifacts+"#download-an-artifact")
	case v.expired:
		writeError(w, http.StatusGone, "Artifact has expired", docArtifacts+"#download-an-artifact")
	default:
		now := s.now()
		expiry := now.Add(s.opts.URLTTL)
		if f != nil && f.Kind == FaultExpiredURL {
			expiry = now.Add(-time.Minute)
		}
		w.Header().Set("Location", s.signURL(&v.a, expiry))
		w.WriteHeader(http.StatusFound)
	}
}

// statusWriter records the status of a response. When onStatus is set it
// is called once, as the status is written and before any of the body
// reaches the client, so a client that has read a response always finds it
// counted in Stats.
type statusWriter struct {
	http.ResponseWriter
	status   int
	onStatus func(code int)
}

func (w *statusWriter) setStatus(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.onStatus != nil {
		w.onStatus(code)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	w.setStatus(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// finish counts a response whose handler wrote nothing (an implicit 200).
func (w *statusWriter) finish() { w.setStatus(http.StatusOK) }

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int { return cmp.Or(w.status, http.StatusOK) }

// writeJSON writes v as GitHub does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "ghsim: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeError writes GitHub's error body:
// {"message":"Not Found","documentation_url":"...","status":"404"}.
func writeError(w http.ResponseWriter, status int, message, doc string) {
	body := map[string]string{"message": message, "status": strconv.Itoa(status)}
	if doc != "" {
		body["documentation_url"] = doc
	}
	writeJSON(w, status, body)
}
