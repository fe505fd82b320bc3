package demo_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/demo"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
)

func TestDemoArchivesEveryRun(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := demo.Run(t.Context(), demo.Options{Destination: "file://" + dir, Logger: slog.New(slog.DiscardHandler), Timeout: time.Minute}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{`"duplicate":true`, "wrong signature:              401", "acme/gadgets.js", "report.html"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, " archived "); n != 7 {
		t.Errorf("%d artifacts archived, want 7:\n%s", n, s)
	}
	if n := strings.Count(s, " expired "); n != 1 {
		t.Errorf("%d artifacts expired, want 1:\n%s", n, s)
	}

	// Every archived artifact is what GitHub would serve: the zips open
	// and their entries read with correct CRC-32s; the "archive: false"
	// report is a plain file.
	manifests := readManifests(t, dir)
	zips := 0
	for _, m := range manifests {
		for _, a := range m.Artifacts {
			if a.Status != "archived" {
				continue
			}
			body, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(a.Key)))
			if err != nil {
				t.Fatal(err)
			}
			if a.FileName == "report.html" {
				if a.ContentType != "application/octet-stream" || bytes.HasPrefix(body, []byte("PK")) {
					t.Errorf("%s: %s, %q...: want a plain file", a.Key, a.ContentType, body[:4])
				}
				continue
			}
			if !strings.HasSuffix(a.Key, ".zip") {
				t.Errorf("%s: not archived as a zip (%s)", a.Key, a.ContentType)
				continue
			}
			zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Errorf("%s: not a zip: %v", a.Key, err)
				continue
			}
			checkZip(t, a.Key, zr)
			zips++
		}
	}
	if zips != 6 {
		t.Errorf("%d zips checked, want 6", zips)
	}

	// What a new user does: archivectl get, then open the zip.
	var runID int64
	for _, m := range manifests {
		if m.Repository.FullName == "acme/widgets" {
			runID = m.WorkflowRun.ID
		}
	}
	target := filepath.Join(t.TempDir(), "dist.zip")
	var stdout, stderr bytes.Buffer
	env := map[string]string{"ARCHIVER_DESTINATION": "file://" + dir}
	args := []string{"get", "acme/widgets", strconv.FormatInt(runID, 10), "dist", "-o", target}
	if code := archivectl.Main(t.Context(), args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("archivectl %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	zr, err := zip.OpenReader(target)
	if err != nil {
		t.Fatalf("open the downloaded dist.zip: %v", err)
	}
	defer zr.Close()
	if len(zr.File) != 3 || zr.File[0].Name != "file-1.bin" {
		t.Errorf("dist.zip holds %d entries, first %q; want 3, file-1.bin", len(zr.File), zr.File[0].Name)
	}
	checkZip(t, target, &zr.Reader)

	// The catalogue answers find --sha, and the attestations verify.
	var release *archive.Manifest
	for _, m := range manifests {
		if m.WorkflowRun.Event == "release" {
			release = m
		}
	}
	if release == nil {
		t.Fatal("no release run archived")
	}
	ctl := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := archivectl.Main(t.Context(), args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	code, found := ctl("find", "--sha", release.WorkflowRun.HeadSHA[:7], "--json")
	var rows []catalog.Row
	if err := json.Unmarshal([]byte(found), &rows); code != 0 || err != nil {
		t.Fatalf("archivectl find: exit %d, %v\n%s", code, err, found)
	}
	if len(rows) != len(release.Artifacts) {
		t.Errorf("find --sha: %d rows, want the release run's %d artifacts:\n%s", len(rows), len(release.Artifacts), found)
	}
	for _, r := range rows {
		if r.RunID != release.WorkflowRun.ID || r.HeadSHA != release.WorkflowRun.HeadSHA {
			t.Errorf("find --sha: row of run %d, sha %s; want run %d", r.RunID, r.HeadSHA, release.WorkflowRun.ID)
		}
	}
	if !strings.Contains(s, fmt.Sprintf("the query catalogue (%d rows", 8)) {
		t.Errorf("output does not report 8 catalogue rows:\n%s", s)
	}
	attested := 0
	for _, m := range manifests {
		for _, a := range m.Artifacts {
			if a.Attestations != nil && a.Attestations.Count > 0 {
				attested++
				if a.Attestations.Error != "" || a.Attestations.PredicateTypes[0] != "https://slsa.dev/provenance/v1" {
					t.Errorf("%s: attestations %+v", a.Name, a.Attestations)
				}
			}
		}
	}
	if attested != 2 {
		t.Errorf("%d artifacts with attestations, want 2 (dist and bundle)", attested)
	}
	if code, report := ctl("verify", "--attestations"); code != 0 || !strings.Contains(report, "2 of 2 bundles verified") {
		t.Errorf("archivectl verify --attestations: exit %d\n%s", code, report)
	}
}

// readManifests returns every run attempt's manifest under dir.
func readManifests(t *testing.T, dir string) []*archive.Manifest {
	t.Helper()
	var out []*archive.Manifest
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "manifest.json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		m, err := archive.DecodeManifest(b)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil || len(out) != 3 {
		t.Fatalf("%d manifests, %v; want 3", len(out), err)
	}
	return out
}

// checkZip reads every entry of a zip, which checks its CRC-32.
func checkZip(t *testing.T, name string, zr *zip.Reader) {
	t.Helper()
	if len(zr.File) == 0 {
		t.Errorf("%s: an empty zip", name)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Errorf("%s: open %s: %v", name, f.Name, err)
			continue
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != int64(f.UncompressedSize64) {
			t.Errorf("%s: read %s: %d bytes, %v", name, f.Name, n, err)
		}
	}
}
