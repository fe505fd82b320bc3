package ghsim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// principalKind says how a request authenticated.
type principalKind int

const (
	principalStatic       principalKind = iota // a token of Options.Tokens, like a PAT: every repository
	principalInstallation                      // an installation token: the installation's repositories
	principalApp                               // the App's JWT: /app endpoints only
)

// principal is the authenticated caller of an API request.
type principal struct {
	kind           principalKind
	installationID int64
	repoIDs        map[int64]bool // installation token narrowed to these repositories; nil: all
	bucket         string         // rate-limit bucket key
	userID         int64          // static tokens: the user id named in rate-limit messages
}

// canReach reports whether the caller may see repository r. Others get 404,
// as GitHub hides what a token cannot reach.
func (p *principal) canReach(r *Repo) bool {
	switch p.kind {
	case principalStatic:
		return true
	case principalInstallation:
		return r.InstallationID == p.installationID && (p.repoIDs == nil || p.repoIDs[r.ID])
	default:
		return false
	}
}

// installationToken is an issued installation access token.
type installationToken struct {
	installationID int64
	repoIDs        map[int64]bool
	expiresAt      time.Time
}

// authError is a 401 answer.
type authError struct{ message string }

func (e *authError) Error() string { return e.message }

var (
	errRequiresAuth   = &authError{"Requires authentication"}
	errBadCredentials = &authError{"Bad credentials"}
	errBadJWT         = &authError{"A JSON web token could not be decoded"}
)

// bearer returns the credential of an "Authorization: token X" or
// "Authorization: Bearer X" header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errRequiresAuth
	}
	scheme, cred, ok := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if !ok || cred == "" || (!strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "bearer")) {
		return "", errBadCredentials
	}
	return cred, nil
}

// authenticate resolves the token of a /repos request.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	tok, err := bearer(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if userID, ok := s.static[tok]; ok {
		return &principal{kind: principalStatic, bucket: "token:" + tok, userID: userID}, nil
	}
	it, ok := s.tokens[tok]
	if !ok || !s.now().Before(it.expiresAt) {
		return nil, errBadCredentials
	}
	return &principal{
		kind:           principalInstallation,
		installationID: it.installationID,
		repoIDs:        it.repoIDs,
		bucket:         installationBucket(it.installationID),
	}, nil
}

// authenticateApp verifies the App JWT of an /app request: RS256 signed by
// the App's key, iss the App id, iat not in the future (60 s of drift
// allowed), exp in the future and at most 10 minutes ahead, as GitHub
// checks them.
func (s *Server) authenticateApp(r *http.Request) (*principal, error) {
	raw, err := bearer(r)
	if err != nil {
		return nil, err
	}
	if s.appKey == nil {
		return nil, errBadJWT
	}
	var claims jwt.RegisteredClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation())
	if _, err := parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return s.appKey, nil }); err != nil {
		return nil, errBadJWT
	}
	now := s.now()
	switch {
	case claims.ExpiresAt == nil || !now.Before(claims.ExpiresAt.Time):
		return nil, &authError{"'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"}
	case claims.ExpiresAt.Time.After(now.Add(10 * time.Minute)):
		return nil, &authError{"'Expiration time' claim ('exp') is too far in the future"}
	case claims.IssuedAt == nil || claims.IssuedAt.Time.After(now.Add(time.Minute)):
		return nil, &authError{"'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"}
	case claims.Issuer != strconv.FormatInt(s.opts.AppID, 10):
		return nil, &authError{"'Issuer' claim ('iss') must be an Integer representing the App id"}
	}
	return &principal{kind: principalApp, bucket: fmt.Sprintf("app:%d", s.opts.AppID)}, nil
}

// tokenRequest is the optional body of POST .../access_tokens.
type tokenRequest struct {
	Repositories  []string `json:"repositories"`
	RepositoryIDs []int64  `json:"repository_ids"`
}

// handleToken issues an installation token: POST
// /app/installations/{installation_id}/access_tokens, with the App JWT.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, _ *principal, _ *Fault) {
	id, err := strconv.ParseInt(r.PathValue("installation_id"), 10, 64)
	if err != nil || !s.hasInstallation(id) {
		writeError(w, http.StatusNotFound, "Not Found", docTokens)
		return
	}
	var req tokenRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 && string(body) != "null" {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docTokens)
		return
	}
	tok, exp, err := s.issueToken(id, req)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "There is at least one repository that does not exist or is not accessible to the parent installation.", docTokens)
		return
	}
	selection := "all"
	if len(req.Repositories)+len(req.RepositoryIDs) > 0 {
		selection = "selected"
	}
	s.mu.Lock()
	s.stats.TokensIssued++
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           exp.UTC().Format(time.RFC3339),
		"permissions":          map[string]string{"actions": "write", "metadata": "read"},
		"repository_selection": selection,
	})
}

// InstallationToken issues an installation token directly, without the
// JWT exchange (it does not count in Stats.TokensIssued), for tests that
// are not about App authentication.
func (s *Server) InstallationToken(installationID int64) (string, time.Time, error) {
	if !s.hasInstallation(installationID) {
		return "", time.Time{}, fmt.Errorf("ghsim: issue token for installation %d: %w", installationID, ErrNotFound)
	}
	return s.issueToken(installationID, tokenRequest{})
}

// issueToken creates a token for installation id, narrowed to the
// repositories of req when it names any.
func (s *Server) issueToken(id int64, req tokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var repoIDs map[int64]bool
	if len(req.Repositories)+len(req.RepositoryIDs) > 0 {
		repoIDs = map[int64]bool{}
		for _, r := range s.repos {
			if r.InstallationID == id && (containsFold(req.Repositories, r.Name) || slices.Contains(req.RepositoryIDs, r.ID)) {
				repoIDs[r.ID] = true
			}
		}
		if len(repoIDs) != len(req.Repositories)+len(req.RepositoryIDs) {
			return "", time.Time{}, fmt.Errorf("ghsim: issue token for installation %d: repository outside the installation: %w", id, ErrNotFound)
		}
	}
	tok := "ghs_" + rand.Text() + rand.Text()[:10] // 36 random characters, like GitHub's
	exp := s.now().Add(s.opts.TokenTTL).UTC().Truncate(time.Second)
	s.tokens[tok] = &installationToken{installationID: id, repoIDs: repoIDs, expiresAt: exp}
	return tok, exp, nil
}

func (s *Server) hasInstallation(id int64) bool {
	if id == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.repos {
		if r.InstallationID == id {
			return true
		}
	}
	return false
}

// handleInstallation answers GET /app/installations/{installation_id}.
func (s *Server) handleInstallation(w http.ResponseWriter, r *http.Request, _ *principal, _ *Fault) {
	id, err := strconv.ParseInt(r.PathValue("installation_id"), 10, 64)
	if err != nil || !s.hasInstallation(id) {
		writeError(w, http.StatusNotFound, "Not Found", docInstallation)
		return
	}
	s.mu.Lock()
	var account string
	first := int64(-1)
	for _, rp := range s.repos {
		if rp.InstallationID == id && (first < 0 || rp.ID < first) {
			account, first = rp.Owner, rp.ID
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"id":                   id,
		"app_id":               s.opts.AppID,
		"target_type":          "Organization",
		"account":              map[string]any{"login": account, "type": "Organization"},
		"repository_selection": "selected",
		"permissions":          map[string]string{"actions": "write", "metadata": "read"},
		"events":               []string{"workflow_run"},
		"access_tokens_url":    fmt.Sprintf("%sapp/installations/%d/access_tokens", s.apiURL, id),
	})
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}
