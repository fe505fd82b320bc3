package attest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/attesttest"
	"github.com/artifact-archiver/artifact-archiver/pkg/attest"
)

func TestLoadTrustedRoots(t *testing.T) {
	t.Parallel()
	a, b := attesttest.New(t), attesttest.New(t)
	jsonl := append(append(append(a.TrustedRootJSON(t), '\n'), b.TrustedRootJSON(t)...), '\n')
	roots, err := attest.LoadTrustedRoots(jsonl)
	if err != nil || len(roots) != 2 {
		t.Fatalf("load JSONL: %d roots, %v", len(roots), err)
	}
	// Either instance's bundles verify against the collection.
	sum := digest("x")
	for _, s := range []*attesttest.Sigstore{a, b} {
		if _, err := attest.Verify(s.Bundle(t, "o", "r", wf, sum), roots, attest.Want{SHA256: sum, Repository: "o/r", Workflow: wf}); err != nil {
			t.Fatalf("verify against both roots: %v", err)
		}
	}
	// An indented trusted_root.json (as a file from the web) loads too.
	tr, err := a.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	pretty, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, pretty, "", "  "); err != nil {
		t.Fatal(err)
	}
	if roots, err := attest.LoadTrustedRoots(ind.Bytes()); err != nil || len(roots) != 1 {
		t.Fatalf("load indented: %d roots, %v", len(roots), err)
	}
	for _, bad := range []string{"", "\n", `{"mediaType": "nope"}`, "{not json"} {
		if _, err := attest.LoadTrustedRoots([]byte(bad)); err == nil {
			t.Fatalf("load %q: no error", bad)
		}
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	a, b := attesttest.New(t), attesttest.New(t)
	aj, bj := a.TrustedRootJSON(t), b.TrustedRootJSON(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.json":
			w.Write(aj)
		case "/garbage":
			w.Write([]byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AAAA"}]}}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "b.jsonl")
	if err := os.WriteFile(file, append(bj, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}

	s, err := attest.NewSources(srv.URL+"/a.json, file://"+file, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Describe(); len(d) != 2 || !strings.HasSuffix(d[1], "b.jsonl") {
		t.Fatalf("describe: %q", d)
	}
	got, err := s.TrustedRoots(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := string(aj) + "\n" + string(bj) + "\n"; string(got) != want {
		t.Fatalf("trusted roots:\n%s\nwant\n%s", got, want)
	}
	if roots, err := attest.LoadTrustedRoots(got); err != nil || len(roots) != 2 {
		t.Fatalf("reload: %d, %v", len(roots), err)
	}

	for _, spec := range []string{srv.URL + "/missing", srv.URL + "/garbage", "file://" + file + ".nope"} {
		s, err := attest.NewSources(spec, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		if b, err := s.TrustedRoots(t.Context()); err == nil {
			t.Fatalf("%s: %d bytes, no error", spec, len(b))
		}
	}
	for _, bad := range []string{"ftp://x/y", "https://", "file://host/x", "::"} {
		if _, err := attest.NewSources(bad, nil); err == nil {
			t.Fatalf("NewSources(%q): no error", bad)
		}
	}
	// Empty means Public Good through TUF (not fetched here: no network).
	s, err = attest.NewSources(" ", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Describe(); len(d) != 1 || d[0] != "tuf:https://tuf-repo-cdn.sigstore.dev" {
		t.Fatalf("default describe: %q", d)
	}
}
