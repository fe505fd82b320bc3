package ghsim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"
)

// defaultRetention is how long GitHub keeps an artifact by default.
const defaultRetention = 90 * 24 * time.Hour

// ArtifactSpec describes an artifact to add. Zero fields get the defaults
// noted.
type ArtifactSpec struct {
	// Name defaults to "artifact"; several artifacts of a run may share it.
	Name string `json:"name,omitzero"`
	Size int64  `json:"size,omitzero"` // length of the body the blob host serves (0: empty)
	Seed int64  `json:"seed,omitzero"` // content seed (see Content); 0: the artifact id

	NoDigest    bool `json:"no_digest,omitzero"`    // "digest": null, like artifacts uploaded before 2025
	WrongDigest bool `json:"wrong_digest,omitzero"` // advertise a digest that does not match the body
	Expired     bool `json:"expired,omitzero"`      // listed with "expired": true; the download answers 410
	// MalformedDigest advertises "sha256:zz" (the MalformedDigest
	// constant): not a SHA-256 at all, so no download can ever match it.
	MalformedDigest bool `json:"malformed_digest,omitzero"`
	// Raw is an artifact uploaded with "archive: false": served as
	// application/octet-stream with the file name in Content-Disposition,
	// instead of application/zip.
	Raw      bool   `json:"raw,omitzero"`
	FileName string `json:"file_name,omitzero"` // Raw: the file name; default Name
	// ReportedSize, when nonzero, is the size_in_bytes listed instead of
	// Size, like legacy (v1–v3) artifacts that report the uncompressed size.
	ReportedSize int64 `json:"reported_size,omitzero"`
	NoRange      bool  `json:"no_range,omitzero"` // the blob host ignores Range and always serves 200

	CreatedAt time.Time `json:"created_at,omitzero"` // default the server clock's now
	ExpiresAt time.Time `json:"expires_at,omitzero"` // default CreatedAt + 90 days; expired once reached
	// VisibleAt, when set, hides the artifact from every endpoint until the
	// server clock reaches it, like artifacts that appear in a run's list a
	// little after the run's completed event.
	VisibleAt time.Time `json:"visible_at,omitzero"`
}

// Artifact is an artifact known to the simulator, with the defaults of its
// spec applied.
type Artifact struct {
	ID     int64  `json:"id"`
	RepoID int64  `json:"repo_id"`
	Owner  string `json:"owner"`
	Repo   string `json:"repo"`
	RunID  int64  `json:"run_id"`
	ArtifactSpec
	Deleted bool `json:"deleted"`
}

// expired reports whether the artifact counts as expired at now.
func (a *Artifact) expired(now time.Time) bool {
	return a.Expired || !now.Before(a.ExpiresAt)
}

// visible reports whether the artifact is served at all at now.
func (a *Artifact) visible(now time.Time, hideExpired bool) bool {
	if a.Deleted || now.Before(a.VisibleAt) {
		return false
	}
	return !hideExpired || !a.expired(now)
}

// sizeInBytes is the size_in_bytes GitHub reports.
func (a *Artifact) sizeInBytes() int64 {
	if a.ReportedSize != 0 {
		return a.ReportedSize
	}
	return a.Size
}

// AddArtifact adds an artifact to run runID of owner/repo and returns it.
// Ids are unique and increasing (from 3000000001, beyond int32 like
// GitHub's). It panics if the repository or the run is unknown (a
// programming error in a test).
func (s *Server) AddArtifact(owner, repo string, runID int64, spec ArtifactSpec) Artifact {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoKey(owner, repo)]
	if !ok {
		panic(fmt.Sprintf("ghsim: add artifact: unknown repository %s/%s", owner, repo))
	}
	run, ok := s.runs[runID]
	if !ok || run.RepoID != r.ID {
		panic(fmt.Sprintf("ghsim: add artifact: unknown run %d in %s/%s", runID, owner, repo))
	}
	s.nextArtifactID++
	id := s.nextArtifactID
	spec.Name = orStr(spec.Name, "artifact")
	spec.Size = max(spec.Size, 0)
	if spec.Seed == 0 {
		spec.Seed = id
	}
	spec.FileName = orStr(spec.FileName, spec.Name)
	if spec.CreatedAt.IsZero() {
		spec.CreatedAt = s.now().UTC().Truncate(time.Second)
	}
	if spec.ExpiresAt.IsZero() {
		spec.ExpiresAt = spec.CreatedAt.Add(defaultRetention)
	}
	a := &Artifact{ID: id, RepoID: r.ID, Owner: r.Owner, Repo: r.Name, RunID: runID, ArtifactSpec: spec}
	s.artifacts[id] = a
	s.order = append(s.order, a)
	return *a
}

// Artifact returns the artifact with id, deleted ones included.
func (s *Server) Artifact(id int64) (Artifact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.artifacts[id]
	if !ok {
		return Artifact{}, false
	}
	return *a, true
}

// Artifacts returns the artifacts of owner/repo that are not deleted, by
// increasing id.
func (s *Server) Artifacts(owner, repo string) []Artifact {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoKey(owner, repo)]
	if !ok {
		return nil
	}
	var out []Artifact
	for _, a := range s.order {
		if a.RepoID == r.ID && !a.Deleted {
			out = append(out, *a)
		}
	}
	return out
}

// Expire marks the artifact expired: listed with "expired": true, and the
// download answers 410. It reports whether the artifact exists.
func (s *Server) Expire(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.artifacts[id]
	if ok {
		a.Expired = true
	}
	return ok
}

// Deleted reports whether the artifact was deleted (through the API or
// Delete).
func (s *Server) Deleted(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.artifacts[id]
	return ok && a.Deleted
}

// Delete deletes the artifact out of band, as a user in the web UI would.
// It reports whether the artifact existed and was not deleted yet.
func (s *Server) Delete(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.artifacts[id]
	if !ok || a.Deleted {
		return false
	}
	a.Deleted = true
	return true
}

// Content returns the body the blob host serves for the artifact, from
// offset 0.
func (s *Server) Content(id int64) (*Content, error) {
	a, ok := s.Artifact(id)
	if !ok {
		return nil, fmt.Errorf("ghsim: open content of artifact %d: %w", id, ErrNotFound)
	}
	return NewContent(a.Seed, a.Size), nil
}

// SHA256 returns the lowercase hex SHA-256 of the artifact's real body
// (whatever digest it advertises). It is computed once per (seed, size)
// and cached.
func (s *Server) SHA256(id int64) (string, error) {
	a, ok := s.Artifact(id)
	if !ok {
		return "", fmt.Errorf("ghsim: hash artifact %d: %w", id, ErrNotFound)
	}
	return s.contentSHA256(a.Seed, a.Size), nil
}

// MalformedDigest is the "digest" advertised for an artifact with
// ArtifactSpec.MalformedDigest.
const MalformedDigest = "sha256:zz"

// Digest returns the "digest" the API advertises for the artifact:
// "sha256:<hex>", a wrong one for WrongDigest, MalformedDigest, or "" for
// NoDigest (null).
func (s *Server) Digest(id int64) (string, error) {
	a, ok := s.Artifact(id)
	if !ok {
		return "", fmt.Errorf("ghsim: digest of artifact %d: %w", id, ErrNotFound)
	}
	return s.digest(&a), nil
}

func (s *Server) digest(a *Artifact) string {
	switch {
	case a.NoDigest:
		return ""
	case a.MalformedDigest:
		return MalformedDigest
	case a.WrongDigest:
		sum := sha256.Sum256(fmt.Appendf(nil, "ghsim wrong digest %d", a.ID))
		return "sha256:" + hex.EncodeToString(sum[:])
	default:
		return "sha256:" + s.contentSHA256(a.Seed, a.Size)
	}
}

type contentKey struct{ seed, size int64 }

// digestEntry computes one content hash once; concurrent callers wait.
type digestEntry struct {
	once sync.Once
	hex  string
}

func (s *Server) contentSHA256(seed, size int64) string {
	s.mu.Lock()
	e, ok := s.digests[contentKey{seed, size}]
	if !ok {
		e = &digestEntry{}
		s.digests[contentKey{seed, size}] = e
	}
	s.mu.Unlock()
	e.once.Do(func() { e.hex = NewContent(seed, size).SHA256() })
	return e.hex
}

// artifactJSON is the artifact object of the REST API, in GitHub's field
// order.
type artifactJSON struct {
	ID                 int64           `json:"id"`
	NodeID             string          `json:"node_id"`
	Name               string          `json:"name"`
	SizeInBytes        int64           `json:"size_in_bytes"`
	URL                string          `json:"url"`
	ArchiveDownloadURL string          `json:"archive_download_url"`
	Expired            bool            `json:"expired"`
	Digest             *string         `json:"digest"`
	CreatedAt          string          `json:"created_at"`
	ExpiresAt          string          `json:"expires_at"`
	UpdatedAt          string          `json:"updated_at"`
	WorkflowRun        workflowRunJSON `json:"workflow_run"`
}

type workflowRunJSON struct {
	ID               int64  `json:"id"`
	RepositoryID     int64  `json:"repository_id"`
	HeadRepositoryID int64  `json:"head_repository_id"`
	HeadBranch       string `json:"head_branch"`
	HeadSHA          string `json:"head_sha"`
}

// artifactView is what rendering an artifact needs, copied under s.mu.
type artifactView struct {
	a       Artifact
	run     Run
	expired bool
}

// render builds the JSON object; it may hash the body (outside s.mu).
func (s *Server) render(v artifactView) artifactJSON {
	a := &v.a
	url := fmt.Sprintf("%srepos/%s/%s/actions/artifacts/%d", s.apiURL, a.Owner, a.Repo, a.ID)
	j := artifactJSON{
		ID:                 a.ID,
		NodeID:             nodeID("Artifact", a.ID),
		Name:               a.Name,
		SizeInBytes:        a.sizeInBytes(),
		URL:                url,
		ArchiveDownloadURL: url + "/zip",
		Expired:            v.expired,
		CreatedAt:          a.CreatedAt.UTC().Format(time.RFC3339),
		ExpiresAt:          a.ExpiresAt.UTC().Format(time.RFC3339),
		UpdatedAt:          a.CreatedAt.UTC().Format(time.RFC3339),
		WorkflowRun: workflowRunJSON{
			ID:               v.run.ID,
			RepositoryID:     a.RepoID,
			HeadRepositoryID: a.RepoID,
			HeadBranch:       v.run.HeadBranch,
			HeadSHA:          v.run.HeadSHA,
		},
	}
	if d := s.digest(a); d != "" {
		j.Digest = &d
	}
	return j
}

// listArtifacts returns the visible artifacts of repo (of one run when
// runID != 0) named name (any when ""), newest first for the repository
// list and oldest first for a run's list.
func (s *Server) listArtifacts(repoID, runID int64, name string) []artifactView {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []artifactView
	for _, a := range s.order {
		if a.RepoID != repoID || (runID != 0 && a.RunID != runID) || (name != "" && a.Name != name) {
			continue
		}
		if !a.visible(now, s.opts.HideExpired) {
			continue
		}
		out = append(out, artifactView{a: *a, run: *s.runs[a.RunID], expired: a.expired(now)})
	}
	if runID == 0 {
		slices.Reverse(out)
	}
	return out
}
