package archivectl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

var getCommand = &command{
	name:     "get",
	synopsis: "owner/repo RUN ARTIFACT [-o FILE]",
	summary:  "download an archived artifact, verifying its SHA-256",
	help: `Downloads one artifact of run RUN from the archive. ARTIFACT is the
artifact id, or its name when only one artifact of the run has it
(artifacts of re-run attempts may share a name: the error lists the ids).

The bytes are hashed while they are written to a temporary file next to
FILE, which is renamed to FILE only when size and SHA-256 match the
manifest; on a mismatch nothing is left behind and the exit code is 1.
FILE defaults to the object's file name in the current directory (a
directory as FILE means that name inside it). With "-o -" the bytes go to
stdout as they arrive, and a mismatch is only reported at the end (exit
code 1). A progress bar is drawn on stderr when it is a terminal.

An artifact in an archive storage class (S3 Glacier Flexible Retrieval,
Deep Archive) cannot be read until it is restored: get then fails and
prints the "archivectl restore" command that asks for it.

Examples:
  archivectl get octo-org/app 1234567890 dist -o /tmp/dist.zip
  archivectl get octo-org/app 1234567890 3000000042 -o - | unzip -l /dev/stdin`,
	env: []envGroup{envDestination},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &getOptions{}
		fs.StringVar(&o.output, "o", "", "write to `FILE` (\"-\" for stdout; default: the object's file name)")
		return o.run
	},
}

type getOptions struct{ output string }

// errMismatch: the downloaded bytes do not match the manifest.
var errMismatch = errors.New("downloaded bytes do not match the manifest")

func (o *getOptions) run(ctx context.Context, c *cli, args []string) error {
	if len(args) != 3 {
		return usagef("want owner/repo RUN ARTIFACT, got %d arguments", len(args))
	}
	owner, repo, err := parseRepo(args[0])
	if err != nil {
		return err
	}
	runID, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || runID <= 0 {
		return usagef("RUN %q: want a workflow run id", args[1])
	}
	st, closeStore, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	entries, err := loadManifests(ctx, st, scope{owner: owner, repo: repo, runID: runID})
	if err != nil {
		return err
	}
	rec, err := pickArtifact(entries, args[2])
	if err != nil {
		return fmt.Errorf("%s run %d: %w", args[0], runID, err)
	}
	if err := checkReadable(ctx, st, args[0], runID, rec); err != nil {
		return err
	}
	rc, err := st.Open(ctx, rec.Key)
	if s3store.NeedsRestore(err) { // archived since the check
		return fmt.Errorf("artifact %d (%s) is archived and needs a restore before it can be read: `%s` (add --wait to wait for it): %w",
			rec.ID, rec.Name, restoreCommandLine(args[0], runID, rec.ID), err)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", st.Location(rec.Key), err)
	}
	defer rc.Close()

	prog := newProgress(c.stderr, c.errTTY, rec.Name, rec.Size, true)
	if o.output == "-" {
		n, sum, err := copyHashed(c.stdout, rc, prog)
		prog.Done()
		if err != nil {
			return fmt.Errorf("download %s: %w", rec.Key, err)
		}
		return checkDownload(rec, n, sum, "stdout")
	}
	return o.toFile(c, rec, rc, prog)
}

// checkReadable fails with the archivectl restore command to run when the
// artifact's object is archived (Glacier, Deep Archive) without a restored
// copy. A store without storage classes, or a failed HeadObject (Open then
// reports the problem), passes.
func checkReadable(ctx context.Context, st archive.Store, repo string, runID int64, rec archive.ArtifactRecord) error {
	cs, ok := st.(coldStore)
	if !ok {
		return nil
	}
	state, err := cs.ObjectState(ctx, rec.Key)
	if err != nil {
		return nil
	}
	if p := coldProblem(state, repo, runID, rec.ID); p != "" {
		return fmt.Errorf("artifact %d (%s) is %s", rec.ID, rec.Name, p)
	}
	return nil
}

// toFile writes to a temporary file next to the target and renames it into
// place only when size and SHA-256 match.
func (o *getOptions) toFile(c *cli, rec archive.ArtifactRecord, rc io.Reader, prog *progress) error {
	target := o.output
	base := path.Base(rec.Key) // a sanitised key segment: a safe file name
	if target == "" {
		target = base
	} else if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		target = filepath.Join(target, base)
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*.part")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, sum, err := copyHashed(tmp, rc, prog)
	prog.Done()
	if err != nil {
		return fmt.Errorf("download %s: %w", rec.Key, err)
	}
	if err := checkDownload(rec, n, sum, target); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("rename into %s: %w", target, err)
	}
	renamed = true
	fmt.Fprintf(c.stderr, "wrote %s (%s, sha256 %s verified)\n", target, humanBytes(n), sum)
	return nil
}

// copyHashed copies src to dst, counting into prog, and returns the bytes
// copied and their hex SHA-256.
func copyHashed(dst io.Writer, src io.Reader, prog *progress) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h, prog), src)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

func checkDownload(rec archive.ArtifactRecord, n int64, sum, where string) error {
	switch {
	case n != rec.Size:
		return fmt.Errorf("%w: %s: %d bytes, manifest says %d (nothing written to %s)", errMismatch, rec.Key, n, rec.Size, noneUnlessStdout(where))
	case rec.SHA256 == "" || sum != rec.SHA256:
		return fmt.Errorf("%w: %s: sha256 %s, manifest says %q (nothing written to %s)", errMismatch, rec.Key, sum, rec.SHA256, noneUnlessStdout(where))
	}
	return nil
}

func noneUnlessStdout(where string) string {
	if where == "stdout" {
		return "stdout is NOT trustworthy: the bytes were already written"
	}
	return where
}

// pickArtifact finds the artifact named by id or name among a run's
// manifests (the latest attempt's record of each id).
func pickArtifact(entries []entry, want string) (archive.ArtifactRecord, error) {
	byID := map[int64]archive.ArtifactRecord{}
	var ids []int64
	read := 0
	for _, e := range entries {
		if e.Err != nil {
			continue
		}
		read++
		for _, a := range e.Manifest.Artifacts {
			if _, ok := byID[a.ID]; !ok {
				ids = append(ids, a.ID)
			}
			byID[a.ID] = a // entries are sorted by attempt: the latest wins
		}
	}
	if read == 0 {
		if len(entries) > 0 {
			return archive.ArtifactRecord{}, fmt.Errorf("no readable manifest: %v", entries[0].Err)
		}
		return archive.ArtifactRecord{}, errors.New("not in the archive (no manifest)")
	}
	slices.Sort(ids)
	rec, found := archive.ArtifactRecord{}, false
	if id, err := strconv.ParseInt(want, 10, 64); err == nil {
		rec, found = byID[id]
	}
	if !found {
		var same []string
		for _, id := range ids {
			if a := byID[id]; a.Name == want {
				rec, found = a, true
				same = append(same, fmt.Sprintf("%d (%s, %s)", a.ID, a.Status, humanBytes(a.Size)))
			}
		}
		if len(same) > 1 {
			return archive.ArtifactRecord{}, fmt.Errorf("artifact name %q is ambiguous: ids %s; pass the id", want, strings.Join(same, ", "))
		}
	}
	if !found {
		var names []string
		for _, id := range ids {
			names = append(names, fmt.Sprintf("%s (%d)", byID[id].Name, id))
		}
		if len(names) == 0 {
			return archive.ArtifactRecord{}, fmt.Errorf("no artifact %q; the run's manifests list none", want)
		}
		return archive.ArtifactRecord{}, fmt.Errorf("no artifact %q; the run has: %s", want, strings.Join(names, ", "))
	}
	if rec.Status != archive.StatusArchived {
		msg := fmt.Sprintf("artifact %d (%s) is %s, not in the archive", rec.ID, rec.Name, rec.Status)
		if rec.Error != "" {
			msg += ": " + rec.Error
		}
		return archive.ArtifactRecord{}, errors.New(msg)
	}
	return rec, nil
}
