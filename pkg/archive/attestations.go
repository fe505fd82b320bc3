package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Attestation is one of an artifact's attestations: a Sigstore bundle.
type Attestation struct {
	// Bundle is the bundle's JSON.
	Bundle json.RawMessage
	// PredicateType is the in-toto predicate type of the bundle's
	// statement ("https://slsa.dev/provenance/v1"), "" when unknown.
	PredicateType string
}

// AttestationLister is the optional part of a [GitHub] client that looks
// up an artifact's attestations (package ghclient implements it). With
// [Config.Attestations] on, a client without it looks nothing up.
type AttestationLister interface {
	// Attestations returns the distinct bundles whose subject is the
	// SHA-256 sha256hex in the repository: none (and no error) when GitHub
	// has none.
	Attestations(ctx context.Context, owner, repo, sha256hex string) ([]Attestation, error)
}

// TrustedRootSource gives the Sigstore trusted roots that verifying the
// bundles needs, as JSONL: one trusted_root.json per line (package attest
// implements it).
type TrustedRootSource interface {
	TrustedRoots(ctx context.Context) ([]byte, error)
}

// TrustedRootKey is the daily snapshot of the trusted roots, relative to the
// destination: "_trust/trusted_root/<YYYY-MM-DD>.jsonl" for day in UTC.
// Verification years later uses the snapshot of the day a bundle was
// archived (or the nearest one before it).
func TrustedRootKey(day time.Time) string {
	return TrustedRootPrefix + day.UTC().Format(time.DateOnly) + ".jsonl"
}

// TrustedRootPrefix is the folder of the trusted root snapshots.
const TrustedRootPrefix = "_trust/trusted_root/"

// Attestation lookup outcomes, the "outcome" label of
// archiver_attestation_lookups_total.
const (
	attestFound  = "found"  // bundles stored (or already there)
	attestNone   = "none"   // GitHub has none
	attestFailed = "failed" // lookup, bundle fetch or write failed; recorded, retried later
)

// jsonlContentType is the Content-Type of JSONL objects.
const jsonlContentType = "application/jsonl"

// Bounds of an attestations object and of its conditional writes.
const (
	maxAttestationsObject = 256 << 20
	maxAttestationWrites  = 4
)

// BundlePredicateType returns the in-toto predicate type of a Sigstore
// bundle with a DSSE envelope (its payload is the base64 statement), or ""
// when it has none or cannot be read.
func BundlePredicateType(bundle []byte) string {
	var b struct {
		DSSE *struct {
			Payload string `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if json.Unmarshal(bundle, &b) != nil || b.DSSE == nil {
		return ""
	}
	payload, err := base64.StdEncoding.DecodeString(b.DSSE.Payload)
	if err != nil {
		if payload, err = base64.URLEncoding.DecodeString(b.DSSE.Payload); err != nil {
			return ""
		}
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(payload, &st) != nil {
		return ""
	}
	return st.PredicateType
}

// wantsAttestations reports whether a record is one whose attestations are
// looked up: archived, with GitHub's digest (verified equal to SHA256).
func wantsAttestations(r ArtifactRecord) bool {
	return r.Status == StatusArchived && r.GitHubDigest != nil && r.SHA256 != ""
}

// attestationsSettled reports whether a record needs no lookup: it wants
// none, or has a lookup recorded without error.
func attestationsSettled(r ArtifactRecord) bool {
	return !wantsAttestations(r) || (r.Attestations != nil && r.Attestations.Error == "")
}

// attestationsDue reports whether this delivery has attestation lookups to
// do even though the run's manifest is done: lookups are on, the client
// can do them, and a record of the earlier manifest lacks one or recorded
// an error.
func (a *Archiver) attestationsDue(j *job) bool {
	if !a.cfg.Attestations || j.prev == nil {
		return false
	}
	if _, ok := j.gh.(AttestationLister); !ok {
		return false
	}
	return slices.ContainsFunc(j.prev.Artifacts, func(r ArtifactRecord) bool { return !attestationsSettled(r) })
}

// attestAll records the attestations of every archived artifact with a
// digest, Concurrency lookups at a time: a record whose earlier manifest
// has a lookup without error keeps it; the others are looked up now. A
// failed lookup is recorded in the record (and retried by a later
// delivery), never an error of the artifact; attestAll fails only when ctx
// ends. After a lookup it makes sure today's trusted root snapshot exists.
func (a *Archiver) attestAll(ctx context.Context, j *job, records []ArtifactRecord) error {
	if !a.cfg.Attestations {
		return nil
	}
	lister, ok := j.gh.(AttestationLister)
	if !ok {
		j.log.Debug("attestation lookups are on but the GitHub client cannot do them")
		return nil
	}
	var wg sync.WaitGroup
	looked := false
	for i := range records {
		r := &records[i]
		if p, ok := j.prevRecs[r.ID]; ok && r.Attestations == nil {
			r.Attestations = p.Attestations
		}
		if attestationsSettled(*r) {
			continue
		}
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		looked = true
		wg.Go(func() {
			defer func() { <-a.slots }()
			r.Attestations = a.attest(ctx, j, lister, *r)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if looked {
		a.snapshotTrustedRoots(ctx)
	}
	return nil
}

// attest looks up one artifact's attestations and stores them. A failure
// is logged, counted and returned as a record with Error.
func (a *Archiver) attest(ctx context.Context, j *job, lister AttestationLister, r ArtifactRecord) *AttestationRecord {
	log := j.log.With("artifact_id", r.ID)
	checked := a.cfg.Now().UTC()
	var found []Attestation
	var err error
	for try := 1; ; try++ {
		found, err = lister.Attestations(ctx, j.ev.Repository.Owner, j.ev.Repository.Name, r.SHA256)
		if err == nil || try > maxRateWaits || !a.waitInline(ctx, err) {
			break
		}
	}
	key := j.l.AttestationsKey(r.ID)
	if err == nil && len(found) > 0 {
		found, err = a.storeAttestations(ctx, key, found)
	}
	if err != nil {
		a.m.attestations.WithLabelValues(attestFailed).Inc()
		if ctx.Err() == nil {
			log.Warn("attestation lookup failed; the artifact stays archived and a later delivery retries", "err", err)
		}
		return &AttestationRecord{CheckedAt: checked, Error: err.Error()}
	}
	if len(found) == 0 {
		a.m.attestations.WithLabelValues(attestNone).Inc()
		return &AttestationRecord{CheckedAt: checked}
	}
	a.m.attestations.WithLabelValues(attestFound).Inc()
	var types []string
	for _, b := range found {
		if b.PredicateType != "" {
			types = append(types, b.PredicateType)
		}
	}
	slices.Sort(types)
	log.Info("attestations archived", "key", key, "count", len(found))
	return &AttestationRecord{Count: len(found), Key: key, PredicateTypes: slices.Compact(types), CheckedAt: checked}
}

// storeAttestations writes the bundles (deduplicated) as JSONL at key, one
// compact bundle per line, and returns the bundles the object holds. The
// write is create-only; when the object exists (another worker, an earlier
// lookup) it is kept if it holds every bundle found, else replaced, with
// If-Match, by the union of both.
func (a *Archiver) storeAttestations(ctx context.Context, key string, found []Attestation) ([]Attestation, error) {
	ours, err := distinctBundles(nil, found)
	if err != nil {
		return nil, err
	}
	want, opts := ours, PutOptions{IfAbsent: true}
	for try := 1; ; try++ {
		err := a.putSmall(ctx, key, encodeJSONL(want), jsonlContentType, opts)
		if err == nil {
			return want, nil
		}
		if !errors.Is(err, ErrExists) && !errors.Is(err, ErrConflict) {
			return nil, err
		}
		if try >= maxAttestationWrites {
			return nil, fmt.Errorf("archive: write %s: still changing after %d tries: %w", key, try, err)
		}
		b, etag, err := readVersioned(ctx, a.cfg.Store, key, maxAttestationsObject)
		if errors.Is(err, ErrNotFound) {
			want, opts = ours, PutOptions{IfAbsent: true}
			continue
		}
		if err != nil {
			return nil, err
		}
		existing, err := decodeJSONL(b)
		if err != nil {
			// Not ours to keep: replace it with what GitHub has.
			a.log.Warn("stored attestations unreadable, replacing them", "key", key, "err", err)
			existing = nil
		}
		union, err := distinctBundles(existing, ours)
		if err != nil {
			return nil, err
		}
		if len(existing) > 0 && len(union) == len(existing) {
			return existing, nil
		}
		want, opts = union, PutOptions{IfMatch: etag}
	}
}

// distinctBundles returns have followed by the bundles of add it lacks,
// each bundle compacted to one line and identified by the SHA-256 of that
// line; predicate types missing are read from the bundle.
func distinctBundles(have, add []Attestation) ([]Attestation, error) {
	seen := make(map[[32]byte]bool, len(have)+len(add))
	out := make([]Attestation, 0, len(have)+len(add))
	for i, b := range slices.Concat(have, add) {
		var c bytes.Buffer
		if err := json.Compact(&c, b.Bundle); err != nil {
			return nil, fmt.Errorf("archive: attestation bundle %d: %w", i, err)
		}
		sum := sha256.Sum256(c.Bytes())
		if seen[sum] {
			continue
		}
		seen[sum] = true
		b.Bundle = c.Bytes()
		if b.PredicateType == "" {
			b.PredicateType = BundlePredicateType(b.Bundle)
		}
		out = append(out, b)
	}
	return out, nil
}

// encodeJSONL renders bundles one per line (each already compact).
func encodeJSONL(bundles []Attestation) []byte {
	var b bytes.Buffer
	for _, a := range bundles {
		b.Write(a.Bundle)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// decodeJSONL parses an attestations object.
func decodeJSONL(b []byte) ([]Attestation, error) {
	var out []Attestation
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, fmt.Errorf("archive: attestations line %d is not JSON", i+1)
		}
		out = append(out, Attestation{Bundle: line, PredicateType: BundlePredicateType(line)})
	}
	return out, nil
}

// trustSnapshot remembers the last UTC day whose trusted root snapshot is
// known to be stored.
type trustSnapshot struct {
	mu  sync.Mutex
	day string
}

// snapshotTrustedRoots stores today's trusted root snapshot unless this
// archiver already knows it is stored. A failure is logged and counted and
// retried by the next lookup; it never fails archiving. Two workers may
// both write: the write is create-only, and the loser finds it there.
func (a *Archiver) snapshotTrustedRoots(ctx context.Context) {
	if a.cfg.TrustedRoots == nil {
		return
	}
	now := a.cfg.Now()
	day := now.UTC().Format(time.DateOnly)
	if !a.trust.mu.TryLock() {
		return // another run of this worker is at it
	}
	defer a.trust.mu.Unlock()
	if a.trust.day == day {
		return
	}
	key := TrustedRootKey(now)
	outcome, err := a.writeTrustedRoots(ctx, key)
	a.m.trustedRoots.WithLabelValues(outcome).Inc()
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("trusted root snapshot failed; the next attestation lookup retries", "key", key, "err", err)
		}
		return
	}
	if outcome == "written" {
		a.log.Info("trusted root snapshot written", "key", key)
	}
	a.trust.day = day
}

// writeTrustedRoots writes the snapshot at key if it is not there yet and
// returns the outcome: written, exists or failed.
func (a *Archiver) writeTrustedRoots(ctx context.Context, key string) (string, error) {
	if _, err := a.cfg.Store.Stat(ctx, key); err == nil {
		return "exists", nil
	} else if !errors.Is(err, ErrNotFound) {
		return "failed", fmt.Errorf("archive: stat %s: %w", key, err)
	}
	roots, err := a.cfg.TrustedRoots.TrustedRoots(ctx)
	if err != nil {
		return "failed", fmt.Errorf("archive: trusted roots: %w", err)
	}
	if len(roots) == 0 {
		return "failed", errors.New("archive: trusted roots: empty")
	}
	err = a.putSmall(ctx, key, roots, jsonlContentType, PutOptions{IfAbsent: true})
	switch {
	case errors.Is(err, ErrExists):
		return "exists", nil
	case err != nil:
		return "failed", err
	}
	return "written", nil
}
