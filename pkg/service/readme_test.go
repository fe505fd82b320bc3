package service_test

import (
	"bytes"
	"context"
	"errors"
	"go/build"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/demo"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

// The tests run in pkg/service.
const (
	repoRoot = "../.."
	module   = "github.com/artifact-archiver/artifact-archiver"
)

// binary is one of the binaries whose environment the README documents.
type binary struct {
	name string
	main string // its main package, relative to the repository root
	envs []*service.Env
	help func(ctx context.Context, stdout io.Writer) error // runs "-h"
}

func binaries() []binary {
	none := func(string) string { return "" }
	return []binary{
		{"webhook", "cmd/webhook", []*service.Env{webhook.Env()}, func(ctx context.Context, w io.Writer) error {
			return webhook.Main(ctx, []string{"-h"}, none, w, io.Discard)
		}},
		{"worker", "cmd/worker", []*service.Env{worker.Env()}, func(ctx context.Context, w io.Writer) error {
			return worker.Main(ctx, []string{"-h"}, none, w, io.Discard)
		}},
		{"archivectl", "cmd/archivectl", archivectl.Env(), func(ctx context.Context, w io.Writer) error {
			if code := archivectl.Main(ctx, []string{"-h"}, none, nil, w, io.Discard); code != archivectl.ExitOK {
				return errors.New("archivectl -h failed")
			}
			return nil
		}},
		{"demo", "cmd/demo", []*service.Env{demo.Env()}, func(ctx context.Context, w io.Writer) error {
			if code := demo.Main(ctx, []string{"-h"}, none, w, io.Discard); code != 0 {
				return errors.New("demo -h failed")
			}
			return nil
		}},
	}
}

// rows returns the rows of envs, the first of each name.
func rows(envs []*service.Env) []*service.Var {
	var out []*service.Var
	for _, e := range envs {
		for _, v := range e.Vars() {
			if !slices.ContainsFunc(out, func(o *service.Var) bool { return o.Name == v.Name }) {
				out = append(out, v)
			}
		}
	}
	return out
}

// readmeTables returns the README's configuration tables, each under its
// heading: the rows both the webhook and the worker have; each binary's
// own; for archivectl and the demo, the rows whose name and default no
// table above has.
func readmeTables() []struct {
	heading string
	vars    []*service.Var
} {
	bins := binaries()
	// The same row: name, default and help.
	same := func(a, b *service.Var) bool {
		return service.Markdown([]*service.Var{a}) == service.Markdown([]*service.Var{b})
	}
	var shared, hook, work []*service.Var
	hookRows, workRows := rows(bins[0].envs), rows(bins[1].envs)
	for _, v := range hookRows {
		if slices.ContainsFunc(workRows, func(w *service.Var) bool { return same(v, w) }) {
			shared = append(shared, v)
		} else {
			hook = append(hook, v)
		}
	}
	for _, v := range workRows {
		if !slices.ContainsFunc(shared, func(s *service.Var) bool { return same(v, s) }) {
			work = append(work, v)
		}
	}
	above := slices.Concat(shared, hook, work)
	unseen := func(vars []*service.Var) []*service.Var {
		var out []*service.Var
		for _, v := range vars {
			if !slices.ContainsFunc(above, func(a *service.Var) bool { return a.Name == v.Name && a.Default == v.Default }) {
				out = append(out, v)
			}
		}
		above = append(above, out...)
		return out
	}
	return []struct {
		heading string
		vars    []*service.Var
	}{
		{"### Shared by the webhook and the worker", shared},
		{"### Webhook (`cmd/webhook`)", hook},
		{"### Worker (`cmd/worker`)", work},
		{"### archivectl (`cmd/archivectl`)", unseen(rows(bins[2].envs))},
		{"### Demo (`cmd/demo`)", unseen(rows(bins[3].envs))},
	}
}

// configuration returns the Configuration section of README.md.
func configuration(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("README.md has no ## Configuration section")
	}
	section := readme[start+1:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+2]
	}
	return section
}

// firstTable returns the first markdown table after heading in section,
// before the next heading.
func firstTable(section, heading string) (string, bool) {
	i := strings.Index(section, "\n"+heading+"\n")
	if i < 0 {
		return "", false
	}
	sub := section[i+len(heading)+2:]
	if end := strings.Index(sub, "\n#"); end >= 0 {
		sub = sub[:end+1]
	}
	var table strings.Builder
	for line := range strings.Lines(sub) {
		switch {
		case strings.HasPrefix(line, "|"):
			table.WriteString(line)
		case table.Len() > 0:
			return table.String(), true
		}
	}
	return table.String(), true
}

// TestREADMEConfigurationTables: the tables of README.md's Configuration
// section are the binaries' env tables. When they differ, the test prints
// the table to paste.
func TestREADMEConfigurationTables(t *testing.T) {
	t.Parallel()
	section := configuration(t)
	for _, tt := range readmeTables() {
		want := service.Markdown(tt.vars)
		got, ok := firstTable(section, tt.heading)
		switch {
		case !ok:
			t.Errorf("README.md: no heading %q in the Configuration section; add it with this table:\n\n%s", tt.heading, want)
		case got != want:
			t.Errorf("README.md %s: the table is not the env table's; want:\n\n%s", tt.heading, want)
		}
	}
}

// readsEnv matches a read of a variable named by a literal.
var readsEnv = regexp.MustCompile(`\b(?:Getenv|getenv|LookupEnv)\("([^"]+)"\)`)

// literalReads returns the variables that the non-test Go files of pkg and
// of the module's packages it imports read by name, outside env tables.
func literalReads(t *testing.T, pkg string) map[string]string {
	t.Helper()
	reads := map[string]string{} // name → file
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		p, err := build.ImportDir(filepath.Join(repoRoot, dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, f := range p.GoFiles {
			src, err := os.ReadFile(filepath.Join(repoRoot, dir, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range readsEnv.FindAllStringSubmatch(string(src), -1) {
				reads[m[1]] = filepath.Join(dir, f)
			}
		}
		for _, imp := range p.Imports {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				visit(rel)
			}
		}
	}
	visit(pkg)
	if len(seen) < 3 {
		t.Fatalf("%s: found only %d packages of the module", pkg, len(seen))
	}
	return reads
}

// TestEveryVariableIsDocumented: every variable a binary reads, through
// its env table or by name anywhere in the code it links, is listed by its
// -h and documented in README.md's Configuration section.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	section := configuration(t)
	for _, b := range binaries() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var help bytes.Buffer
			if err := b.help(t.Context(), &help); err != nil {
				t.Fatal(err)
			}
			names := map[string]string{}
			for _, e := range b.envs {
				for _, n := range e.Names() {
					names[n] = "its env table"
				}
			}
			for n, file := range literalReads(t, b.main) {
				names[n] = file
			}
			if len(names) < 3 {
				t.Fatalf("only %d variables found", len(names))
			}
			for n, where := range names {
				if !regexp.MustCompile(`\b` + n + `\b`).MatchString(help.String()) {
					t.Errorf("%s -h does not list %s (read in %s)", b.name, n, where)
				}
				if !strings.Contains(section, "`"+n+"`") {
					t.Errorf("README.md's Configuration section does not document %s (read by %s in %s)", n, b.name, where)
				}
			}
		})
	}
}
