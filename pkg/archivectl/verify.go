package archivectl

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

var verifyCommand = &command{
	name:     "verify",
	synopsis: "[owner/repo] [--run ID] [--deep] [--attestations [--trusted-root FILE]] [--json]",
	summary:  "audit the archive against its manifests (--deep: re-hash)",
	help: `Audits every manifest of one repository (or of the whole destination):
each archived artifact's object must exist with the size and ETag the
manifest recorded (and, when the object carries one, the same sha256 in its
metadata), and each attempt's SHA256SUMS must exist. An object shared by
several attempts' manifests is checked once against each.

--deep also downloads every object and compares its SHA-256 with the
manifest's, and checks that SHA256SUMS lists exactly the manifest's
archived artifacts with their hashes: this catches corruption that keeps
size and ETag (bit rot in place on a file:// destination).

Prints a report of the problems; exit code 1 if there is any, 0 if none.
Artifacts recorded as failed or expired are counted, not problems. A
progress bar is drawn on stderr when it is a terminal.

On S3, verify also counts the objects in an archive storage class
(Glacier Flexible Retrieval, Deep Archive: HeadObject works on them, so
plain verify checks them like any other), and lists the objects under
Object Lock with their retention mode, retain-until date and legal hold.
--deep cannot read an archived object without a restored copy: each is a
problem naming the "archivectl restore" command that asks for one.

--attestations also verifies, offline with sigstore-go, every Sigstore
bundle archived with an artifact (ARCHIVER_ATTESTATIONS on the worker)
against the artifact's archived SHA-256, the run's repository and its
workflow file, with the trusted-root snapshot the worker stored on the
day of the lookup (_trust/trusted_root/<date>.jsonl, the newest at or
before it, else the newest) or --trusted-root FILE (JSONL, as printed by
"gh attestation trusted-root"). Each bundle that fails (subject digest
mismatch, signer repository or workflow mismatch, signature) is a
problem. A lookup that failed at archiving time is reported ("run a
backfill"), not a problem; an artifact without attestations is "no
attestations".

Examples:
  archivectl verify octo-org/app
  archivectl verify --deep --json > audit.json || alert "archive audit failed"
  archivectl verify --attestations octo-org/app
  archivectl verify --attestations --trusted-root trusted_root.jsonl --run 4242 octo-org/app`,
	env: []envGroup{envDestination, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &verifyOptions{}
		fs.Int64Var(&o.runID, "run", 0, "only this workflow run `ID`")
		fs.BoolVar(&o.deep, "deep", false, "re-download every object and compare SHA-256s; check SHA256SUMS against the manifest")
		fs.IntVar(&o.jobs, "jobs", 4, "objects checked at once")
		fs.BoolVar(&o.json, "json", false, "print the report as JSON")
		fs.BoolVar(&o.attestations, "attestations", false, "verify the archived attestations (Sigstore bundles) of each artifact")
		fs.StringVar(&o.trustedRoot, "trusted-root", "", "verify attestations with the trusted roots of `FILE` (JSONL) instead of the archive's snapshots")
		return o.run
	},
}

type verifyOptions struct {
	runID        int64
	deep, json   bool
	jobs         int
	attestations bool
	trustedRoot  string
}

// objectID names an object and the manifest that records it (in JSON,
// its fields sit beside those of the struct embedding it).
type objectID struct {
	Repository string `json:"repository"`
	RunID      int64  `json:"run_id"`
	Attempt    int    `json:"run_attempt"`
	ArtifactID int64  `json:"artifact_id,omitempty"` // 0 for a manifest or SHA256SUMS
	Artifact   string `json:"artifact,omitempty"`
	Key        string `json:"key"`
}

// entryObject names key, an object of e's run attempt that is no artifact.
func entryObject(e *entry, key string) objectID {
	return objectID{Repository: e.repoName(), RunID: e.RunID, Attempt: e.Attempt, Key: key}
}

// problem is one finding of verify.
type problem struct {
	objectID
	Problem string `json:"problem"`
}

// verifyReport is verify's result (--json prints it).
type verifyReport struct {
	OK        bool  `json:"ok"`
	Deep      bool  `json:"deep"`
	Manifests int   `json:"manifests"`
	Objects   int   `json:"objects"`
	Bytes     int64 `json:"bytes"`
	Hashed    int64 `json:"bytes_hashed"`
	Failed    int   `json:"failed_artifacts"`
	Expired   int   `json:"expired_artifacts"`
	// Archived objects are in an archive storage class (S3 GLACIER,
	// DEEP_ARCHIVE, an Intelligent-Tiering archive tier); NeedRestore of
	// them have no restored copy, so only --deep needs them restored.
	Archived    int `json:"archived_objects"`
	NeedRestore int `json:"objects_needing_restore"`
	// Problems is sorted by repository, run, attempt, key.
	Problems []problem `json:"problems"`
	// Retention lists the objects under Object Lock retention or legal
	// hold, sorted like Problems.
	Retention []retention `json:"retention"`
	// Attestations is set with --attestations.
	Attestations *attestationReport `json:"attestations,omitempty"`
}

// retention is one object's Object Lock state.
type retention struct {
	objectID
	Mode        string     `json:"mode,omitempty"` // GOVERNANCE or COMPLIANCE
	RetainUntil *time.Time `json:"retain_until,omitempty"`
	LegalHold   bool       `json:"legal_hold"`
}

// objectRef is one manifest's record of an object.
type objectRef struct {
	e   *entry
	rec archive.ArtifactRecord
}

func (r objectRef) id() objectID {
	id := entryObject(r.e, r.rec.Key)
	id.ArtifactID, id.Artifact = r.rec.ID, r.rec.Name
	return id
}

func (r objectRef) problem(format string, args ...any) problem {
	return problem{objectID: r.id(), Problem: fmt.Sprintf(format, args...)}
}

func (o *verifyOptions) run(ctx context.Context, c *cli, args []string) error {
	sc, err := scopeFromArgs(args, o.runID)
	if err != nil {
		return err
	}
	if o.jobs < 1 {
		return usagef("--jobs %d: want at least 1", o.jobs)
	}
	if o.trustedRoot != "" && !o.attestations {
		return usagef("--trusted-root needs --attestations")
	}
	st, closeStore, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	var att *attestationVerifier
	if o.attestations {
		if att, err = newAttestationVerifier(st, o.trustedRoot); err != nil {
			return err
		}
	}
	entries, err := loadManifests(ctx, st, sc)
	if err != nil {
		return err
	}
	rep := o.audit(ctx, c, st, entries)
	if att != nil {
		att.check(ctx, rep, readable(entries))
		sortProblems(rep.Problems)
		rep.OK = len(rep.Problems) == 0
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	} else if err := o.print(c, st, rep); err != nil {
		return err
	}
	if !rep.OK {
		return errReported
	}
	return nil
}

// audit checks every object and SHA256SUMS of entries, o.jobs at a time.
func (o *verifyOptions) audit(ctx context.Context, c *cli, st archive.Store, entries []entry) *verifyReport {
	rep := &verifyReport{Deep: o.deep, Problems: []problem{}, Retention: []retention{}}
	objects := map[string][]objectRef{}
	var keys []string
	var manifests []*entry
	for i := range entries {
		e := &entries[i]
		if e.Err != nil {
			rep.Problems = append(rep.Problems, problem{objectID: entryObject(e, e.Key), Problem: "manifest unreadable: " + e.Err.Error()})
			continue
		}
		manifests = append(manifests, e)
		for _, a := range e.Manifest.Artifacts {
			switch a.Status {
			case archive.StatusFailed:
				rep.Failed++
				continue
			case archive.StatusExpired:
				rep.Expired++
				continue
			case archive.StatusArchived:
			default:
				rep.Problems = append(rep.Problems, objectRef{e, a}.problem("unknown status %q", a.Status))
				continue
			}
			if a.Key == "" {
				rep.Problems = append(rep.Problems, objectRef{e, a}.problem("archived without a key"))
				continue
			}
			if _, ok := objects[a.Key]; !ok {
				keys = append(keys, a.Key)
				rep.Bytes += a.Size
			}
			objects[a.Key] = append(objects[a.Key], objectRef{e, a})
		}
	}
	rep.Manifests, rep.Objects = len(manifests), len(keys)

	label := "verify"
	prog := newProgress(c.stderr, c.errTTY, label, int64(len(keys)+len(manifests)), false)
	if o.deep {
		prog = newProgress(c.stderr, c.errTTY, label+" --deep", rep.Bytes, true)
	}
	var mu sync.Mutex
	report := func(ps ...problem) {
		mu.Lock()
		rep.Problems = append(rep.Problems, ps...)
		mu.Unlock()
	}
	jobs := make(chan func(), o.jobs)
	var wg sync.WaitGroup
	for range o.jobs {
		wg.Go(func() {
			for job := range jobs {
				job()
			}
		})
	}
	for _, k := range keys {
		refs := objects[k]
		jobs <- func() {
			ps, hashed, state := o.checkObject(ctx, st, k, refs, prog)
			report(ps...)
			mu.Lock()
			rep.Hashed += hashed
			rep.addState(state, refs[0])
			mu.Unlock()
			if !o.deep {
				prog.Add(1)
			}
		}
	}
	for _, e := range manifests {
		jobs <- func() {
			report(o.checkSums(ctx, st, e)...)
			if !o.deep {
				prog.Add(1)
			}
		}
	}
	close(jobs)
	wg.Wait()
	prog.Done()
	sortProblems(rep.Problems)
	slices.SortFunc(rep.Retention, func(a, b retention) int {
		return cmp.Or(strings.Compare(a.Repository, b.Repository), cmp.Compare(a.RunID, b.RunID), cmp.Compare(a.Attempt, b.Attempt), strings.Compare(a.Key, b.Key))
	})
	rep.OK = len(rep.Problems) == 0
	return rep
}

// sortProblems sorts by repository, run, attempt, key and problem.
func sortProblems(ps []problem) {
	slices.SortFunc(ps, func(a, b problem) int {
		return cmp.Or(strings.Compare(a.Repository, b.Repository), cmp.Compare(a.RunID, b.RunID), cmp.Compare(a.Attempt, b.Attempt), strings.Compare(a.Key, b.Key), strings.Compare(a.Problem, b.Problem))
	})
}

// readable is the entries whose manifest could be read.
func readable(entries []entry) []*entry {
	var out []*entry
	for i := range entries {
		if entries[i].Err == nil {
			out = append(out, &entries[i])
		}
	}
	return out
}

// addState counts an object's storage state (nil: the store has none, or
// the object could not be read) and records its retention.
func (rep *verifyReport) addState(state *s3store.ObjectState, r objectRef) {
	if state == nil {
		return
	}
	if state.Archived {
		rep.Archived++
		if !state.Readable() {
			rep.NeedRestore++
		}
	}
	if state.Retention == "" && !state.LegalHold {
		return
	}
	ret := retention{objectID: r.id(), Mode: string(state.Retention), LegalHold: state.LegalHold}
	if !state.RetainUntil.IsZero() {
		until := state.RetainUntil.UTC()
		ret.RetainUntil = &until
	}
	rep.Retention = append(rep.Retention, ret)
}

// statObject is Stat, or on a store with storage classes ObjectState (the
// same HeadObject), whose state it also returns.
func statObject(ctx context.Context, st archive.Store, key string) (archive.ObjectInfo, *s3store.ObjectState, error) {
	cs, ok := st.(coldStore)
	if !ok {
		info, err := st.Stat(ctx, key)
		return info, nil, err
	}
	state, err := cs.ObjectState(ctx, key)
	if err != nil {
		return archive.ObjectInfo{}, nil, err
	}
	return state.Info, &state, nil
}

// checkObject compares one object with every manifest record of it; deep,
// it also hashes the object once, unless it is archived without a
// restored copy (a problem naming the archivectl restore command). It
// returns the problems, the bytes hashed and the object's storage state
// (nil on a store without one).
func (o *verifyOptions) checkObject(ctx context.Context, st archive.Store, key string, refs []objectRef, prog *progress) ([]problem, int64, *s3store.ObjectState) {
	var ps []problem
	each := func(f func(r objectRef) *problem) {
		for _, r := range refs {
			if p := f(r); p != nil {
				ps = append(ps, *p)
			}
		}
	}
	info, state, err := statObject(ctx, st, key)
	if err != nil {
		msg := "missing"
		if !errors.Is(err, archive.ErrNotFound) {
			msg = "stat failed: " + err.Error()
		}
		each(func(r objectRef) *problem { p := r.problem("%s", msg); return &p })
		return ps, 0, nil
	}
	each(func(r objectRef) *problem {
		var p problem
		switch meta := info.Metadata[archive.MetaSHA256]; {
		case info.Size != r.rec.Size:
			p = r.problem("size %d, manifest says %d", info.Size, r.rec.Size)
		case r.rec.ETag != "" && info.ETag != r.rec.ETag:
			p = r.problem("etag %q, manifest says %q", info.ETag, r.rec.ETag)
		case meta != "" && meta != r.rec.SHA256:
			p = r.problem("object metadata sha256 %s, manifest says %s", meta, r.rec.SHA256)
		default:
			return nil
		}
		return &p
	})
	if !o.deep {
		return ps, 0, state
	}
	if state != nil && !state.Readable() {
		each(func(r objectRef) *problem {
			p := r.problem("%s", coldProblem(*state, r.e.repoName(), r.e.RunID, r.rec.ID))
			return &p
		})
		return ps, 0, state
	}
	rc, err := st.Open(ctx, key)
	if err != nil {
		each(func(r objectRef) *problem {
			p := r.problem("open failed: %v", err)
			if s3store.NeedsRestore(err) {
				p = r.problem("archived, needs a restore before it can be read: `%s` (%v)", restoreCommandLine(r.e.repoName(), r.e.RunID, r.rec.ID), err)
			}
			return &p
		})
		return ps, 0, state
	}
	defer rc.Close()
	n, sum, err := copyHashed(io.Discard, rc, prog)
	if err != nil {
		each(func(r objectRef) *problem { p := r.problem("read failed after %d bytes: %v", n, err); return &p })
		return ps, n, state
	}
	each(func(r objectRef) *problem {
		var p problem
		switch {
		case n != r.rec.Size:
			p = r.problem("read %d bytes, manifest says %d", n, r.rec.Size)
		case sum != r.rec.SHA256:
			p = r.problem("sha256 %s, manifest says %s", sum, r.rec.SHA256)
		default:
			return nil
		}
		return &p
	})
	return ps, n, state
}

// maxSums bounds a SHA256SUMS read.
const maxSums = 64 << 20

// checkSums checks the attempt's SHA256SUMS: that it exists and, deep,
// that it lists exactly the manifest's archived artifacts and hashes.
func (o *verifyOptions) checkSums(ctx context.Context, st archive.Store, e *entry) []problem {
	key := path.Dir(e.Key) + "/SHA256SUMS"
	fail := func(format string, args ...any) problem {
		return problem{objectID: entryObject(e, key), Problem: fmt.Sprintf(format, args...)}
	}
	if !o.deep {
		if _, err := st.Stat(ctx, key); errors.Is(err, archive.ErrNotFound) {
			return []problem{fail("missing")}
		} else if err != nil {
			return []problem{fail("stat failed: %v", err)}
		}
		return nil
	}
	b, err := readSmall(ctx, st, key, maxSums)
	if errors.Is(err, archive.ErrNotFound) {
		return []problem{fail("missing")}
	} else if err != nil {
		return []problem{fail("read failed: %v", err)}
	}
	want := map[string]string{}
	for _, a := range e.Manifest.Artifacts {
		if a.Status == archive.StatusArchived {
			want[a.Key] = a.SHA256
		}
	}
	got, err := parseSums(path.Dir(e.Key), b)
	if err != nil {
		return []problem{fail("%v", err)}
	}
	var ps []problem
	for k, sum := range got {
		switch w, ok := want[k]; {
		case !ok:
			ps = append(ps, fail("lists %s, which the manifest does not archive", k))
		case w != sum:
			ps = append(ps, fail("says %s for %s, manifest says %s", sum, k, w))
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			ps = append(ps, fail("lacks %s", k))
		}
	}
	return ps
}

// parseSums reads `sha256sum` output with paths relative to dir into a map
// of key to hex SHA-256.
func parseSums(dir string, b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		sum, rel, ok := strings.Cut(line, "  ")
		if !ok {
			sum, rel, ok = strings.Cut(line, " *") // binary-mode marker
		}
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("line %d: not `sha256sum` format: %q", n, truncateText(line, 80))
		}
		out[path.Join(dir, rel)] = strings.ToLower(sum)
	}
	return out, sc.Err()
}

func (o *verifyOptions) print(c *cli, st archive.Store, rep *verifyReport) error {
	what := fmt.Sprintf("%s, %s (%s)", plural(rep.Manifests, "manifest"), plural(rep.Objects, "object"), humanBytes(rep.Bytes))
	if rep.Deep {
		what += fmt.Sprintf(", %s re-hashed", humanBytes(rep.Hashed))
	}
	if rep.Failed+rep.Expired > 0 {
		what += fmt.Sprintf("; artifacts recorded as failed: %d, as expired: %d", rep.Failed, rep.Expired)
	}
	if rep.Archived > 0 {
		what += fmt.Sprintf("; %d in an archive storage class (%d to restore before they can be read)", rep.Archived, rep.NeedRestore)
	}
	if err := printRetention(c, rep.Retention); err != nil {
		return err
	}
	if err := printAttestations(c, rep.Attestations); err != nil {
		return err
	}
	if rep.OK {
		fmt.Fprintf(c.stdout, "OK: %s in %s\n", what, st.Location(""))
		return nil
	}
	t := newTable(c.stdout, c.color, func(col int, _ string) string {
		if col == 5 {
			return sgrRed
		}
		return sgrNone
	}, "REPO", "RUN", "ATTEMPT", "ARTIFACT", "ID", "PROBLEM", "KEY")
	for _, p := range rep.Problems {
		id := "-"
		if p.ArtifactID != 0 {
			id = strconv.FormatInt(p.ArtifactID, 10)
		}
		t.row(p.Repository, strconv.FormatInt(p.RunID, 10), strconv.Itoa(p.Attempt), orDash(p.Artifact), id, p.Problem, p.Key)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "FAILED: %s in %s in %s\n", plural(len(rep.Problems), "problem"), what, st.Location(""))
	return nil
}

// printRetention prints the objects under Object Lock, if any.
func printRetention(c *cli, rs []retention) error {
	if len(rs) == 0 {
		return nil
	}
	fmt.Fprintf(c.stdout, "Object Lock (%s):\n", plural(len(rs), "object"))
	t := newTable(c.stdout, false, nil, "REPO", "RUN", "ATTEMPT", "ARTIFACT", "ID", "RETENTION", "RETAIN_UNTIL", "LEGAL_HOLD", "KEY")
	for _, r := range rs {
		until, hold := "-", "off"
		if r.RetainUntil != nil {
			until = r.RetainUntil.Format(time.RFC3339)
		}
		if r.LegalHold {
			hold = "on"
		}
		id := "-"
		if r.ArtifactID != 0 {
			id = strconv.FormatInt(r.ArtifactID, 10)
		}
		t.row(r.Repository, strconv.FormatInt(r.RunID, 10), strconv.Itoa(r.Attempt), orDash(r.Artifact), id, orDash(r.Mode), until, hold, r.Key)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	return nil
}
