package archive

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// ManifestVersion is the schema version of manifest.json. Version 2 added
// "complete" and per-artifact "tries"; version 1 manifests are still read
// (complete when no artifact failed).
const ManifestVersion = 2

// Artifact statuses in a manifest.
const (
	StatusArchived = "archived" // a verified copy is in the store
	StatusExpired  = "expired"  // gone at GitHub before it could be copied
	StatusFailed   = "failed"   // could not be archived; see error
)

// Manifest is manifest.json: the record of one run attempt, written once
// every artifact of a delivery is settled, and updated by later deliveries
// with conditional writes that merge (see [MergeManifests]): a record is
// never dropped, and a failed artifact becomes archived once it is.
type Manifest struct {
	SchemaVersion  int                  `json:"schema_version"`
	Repository     runevent.Repository  `json:"repository"`
	InstallationID int64                `json:"installation_id,omitempty"`
	WorkflowRun    runevent.WorkflowRun `json:"workflow_run"`
	WorkflowName   string               `json:"workflow_name,omitempty"`
	DeliveryID     string               `json:"delivery_id,omitempty"`
	ArchivedAt     time.Time            `json:"archived_at"`
	// Complete is false while some artifact is "failed": later deliveries
	// (retries, a DLQ replay, a backfill) go on and update the manifest.
	Complete  bool             `json:"complete"`
	Artifacts []ArtifactRecord `json:"artifacts"`
}

// ArtifactRecord is one artifact in a manifest.
type ArtifactRecord struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	// Key is the object key relative to the destination (see Layout).
	Key string `json:"key,omitempty"`
	// Size is the number of bytes archived (the download's length, not
	// GitHub's size_in_bytes, which is the uncompressed size for legacy
	// artifacts).
	Size int64 `json:"size"`
	// SizeInBytes is what GitHub reported.
	SizeInBytes int64 `json:"size_in_bytes"`
	// SHA256 is the hex SHA-256 of the archived bytes, computed while
	// streaming.
	SHA256 string `json:"sha256,omitempty"`
	// GitHubDigest is GitHub's digest ("sha256:<hex>"), or null when
	// GitHub has none; DigestMissing is then true.
	GitHubDigest      *string    `json:"github_digest"`
	DigestMissing     bool       `json:"digest_missing,omitempty"`
	ContentType       string     `json:"content_type,omitempty"`
	FileName          string     `json:"file_name,omitempty"`
	CreatedAt         *time.Time `json:"created_at,omitempty"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
	ETag              string     `json:"etag,omitempty"`
	VersionID         string     `json:"version_id,omitempty"`
	DeletedFromGitHub bool       `json:"deleted_from_github"`
	// Error says why a failed artifact failed.
	Error string `json:"error,omitempty"`
	// Tries counts the transfer tries of a failed artifact, over every
	// delivery so far.
	Tries int `json:"tries,omitempty"`
	// Attestations records the artifact's attestation lookup, when lookups
	// are on (ARCHIVER_ATTESTATIONS) and the artifact has a digest.
	Attestations *AttestationRecord `json:"attestations,omitempty"`

	err error
}

// AttestationRecord is what an attestation lookup found for one artifact:
// the bundles are stored as JSONL (one Sigstore bundle per line) at Key.
type AttestationRecord struct {
	// Count is the number of distinct bundles stored (0: GitHub has none).
	Count int `json:"count"`
	// Key is the attestations.jsonl object, relative to the destination
	// (see Layout.AttestationsKey); empty when Count is 0.
	Key string `json:"key,omitempty"`
	// PredicateTypes are the bundles' in-toto predicate types, sorted and
	// without repeats.
	PredicateTypes []string `json:"predicate_types,omitempty"`
	// CheckedAt is when the lookup ran.
	CheckedAt time.Time `json:"checked_at"`
	// Error says why the lookup failed; a later delivery or a backfill
	// retries it. Count and Key are then empty.
	Error string `json:"error,omitempty"`
}

// Done reports whether nothing is left to do for this attempt: every
// artifact archived or expired and, when deletion is on, deleted.
func (m *Manifest) Done(deleteFromGitHub bool) bool {
	for _, a := range m.Artifacts {
		switch {
		case a.Status == StatusFailed:
			return false
		case deleteFromGitHub && a.Status == StatusArchived && !a.DeletedFromGitHub:
			return false
		}
	}
	return true
}

// Counts returns how many artifacts have each status.
func (m *Manifest) Counts() map[string]int {
	c := map[string]int{}
	for _, a := range m.Artifacts {
		c[a.Status]++
	}
	return c
}

// Encode renders the manifest as indented JSON.
func (m *Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("archive: encode manifest of run %d: %w", m.WorkflowRun.ID, err)
	}
	return append(b, '\n'), nil
}

// DecodeManifest parses manifest.json.
func DecodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("archive: decode manifest: %w", err)
	}
	if m.SchemaVersion < 1 || m.SchemaVersion > ManifestVersion {
		return nil, fmt.Errorf("archive: manifest schema_version %d not supported", m.SchemaVersion)
	}
	if m.SchemaVersion == 1 {
		m.Complete = m.failed() == 0
	}
	return &m, nil
}

func (m *Manifest) failed() int {
	n := 0
	for _, a := range m.Artifacts {
		if a.Status == StatusFailed {
			n++
		}
	}
	return n
}

// MergeManifests returns the union of two versions of one attempt's
// manifest: stored (what the store holds now, written by any worker) and
// ours (this delivery's view). Every artifact of either is kept; for an
// artifact in both, the more settled record wins (archived over expired over
// failed), deletion at GitHub is kept once recorded by either, a failed
// record keeps the highest try count, and the attestation lookup kept is
// one without error, then the later one. Run fields come from ours; Complete
// is true when no artifact is failed. Artifacts are ordered by id.
func MergeManifests(stored, ours *Manifest) *Manifest {
	out := *ours
	out.SchemaVersion = ManifestVersion
	byID := make(map[int64]ArtifactRecord, len(ours.Artifacts)+len(stored.Artifacts))
	for _, r := range stored.Artifacts {
		byID[r.ID] = r
	}
	for _, r := range ours.Artifacts {
		if s, ok := byID[r.ID]; ok {
			r = mergeRecord(s, r)
		}
		byID[r.ID] = r
	}
	out.Artifacts = make([]ArtifactRecord, 0, len(byID))
	for _, r := range byID {
		out.Artifacts = append(out.Artifacts, r)
	}
	slices.SortFunc(out.Artifacts, func(a, b ArtifactRecord) int { return cmp.Compare(a.ID, b.ID) })
	out.Complete = out.failed() == 0
	return &out
}

// statusRank orders statuses by how settled they are.
func statusRank(s string) int {
	switch s {
	case StatusArchived:
		return 3
	case StatusExpired:
		return 2
	default:
		return 1
	}
}

// mergeRecord merges two records of one artifact (see MergeManifests).
func mergeRecord(stored, ours ArtifactRecord) ArtifactRecord {
	rs, ro := statusRank(stored.Status), statusRank(ours.Status)
	out := ours
	if rs > ro {
		out = stored
	}
	if stored.Status == StatusArchived && ours.Status == StatusArchived {
		out.DeletedFromGitHub = stored.DeletedFromGitHub || ours.DeletedFromGitHub
	}
	if out.Status == StatusFailed {
		out.Tries = max(stored.Tries, ours.Tries)
	}
	out.Attestations = mergeAttestations(stored.Attestations, ours.Attestations)
	return out
}

// mergeAttestations picks one of two attestation lookups of an artifact:
// one without Error over one with, then the later CheckedAt (ours on a
// tie); nil only when both are.
func mergeAttestations(stored, ours *AttestationRecord) *AttestationRecord {
	switch {
	case stored == nil:
		return ours
	case ours == nil:
		return stored
	case (stored.Error == "") != (ours.Error == ""):
		if stored.Error == "" {
			return stored
		}
		return ours
	case stored.CheckedAt.After(ours.CheckedAt):
		return stored
	}
	return ours
}

// SHA256Sums renders the archived artifacts in `sha256sum -c` format, with
// paths relative to the attempt folder that holds the file.
func (m *Manifest) SHA256Sums(l Layout) []byte {
	var b bytes.Buffer
	base := l.AttemptPrefix(m.WorkflowRun.RunAttempt)
	for _, a := range m.Artifacts {
		if a.Status != StatusArchived {
			continue
		}
		fmt.Fprintf(&b, "%s  %s\n", a.SHA256, relPath(base, a.Key))
	}
	return b.Bytes()
}

// relPath returns target relative to the folder dir (both slash keys).
func relPath(dir, target string) string {
	d := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	t := strings.Split(target, "/")
	i := 0
	for i < len(d) && i < len(t)-1 && d[i] == t[i] {
		i++
	}
	return path.Join(append(repeat("..", len(d)-i), t[i:]...)...)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
