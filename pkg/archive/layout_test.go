package archive

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300)
	tests := []struct {
		in, want string
	}{
		{"build-output", "build-output"},
		{"my artifact", "my_artifact"},
		{"../../etc/passwd", "______etc_passwd"},
		{"..", "__"},
		{".", "_"},
		{".hidden", "_hidden"},
		{"/abs/path", "_abs_path"},
		{"a\x00b\nc\td", "a_b_c_d"},
		{"back\\slash", "back_slash"},
		{"", "_"},
		{"日本語-ok", "日本語-ok"},
		{"v1.2.3+build@x", "v1.2.3+build@x"},
		{"quote\"'`", "quote___"},
		{"\xff\xfe", "__"},
	}
	for _, tt := range tests {
		if got := SafeName(tt.in); got != tt.want {
			t.Errorf("SafeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	got := SafeName(long)
	if len(got) > MaxNameBytes || !utf8.ValidString(got) {
		t.Errorf("SafeName(long) = %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

func TestObjectName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ct, file, want string
	}{
		{"dist", "application/zip", "", "dist.zip"},
		{"dist.zip", "application/zip", "", "dist.zip"},
		{"report", "application/octet-stream", "report.html", "report.html"},
		{"report", "application/octet-stream", "../../x.sh", "______x.sh"},
		{"report", "application/octet-stream", "", "report"},
		{"a/b", "application/zip", "", "a_b.zip"},
	}
	for _, tt := range tests {
		if got := ObjectName(tt.name, tt.ct, tt.file); got != tt.want {
			t.Errorf("ObjectName(%q, %q, %q) = %q, want %q", tt.name, tt.ct, tt.file, got, tt.want)
		}
	}
}

func TestLayoutKeys(t *testing.T) {
	t.Parallel()
	l := Layout{Owner: "octo-org", Repo: "octo.repo", RunID: 42}
	for got, want := range map[string]string{
		l.ArtifactPrefix(7):              "octo-org/octo.repo/runs/42/artifacts/7/",
		l.ManifestKey(2):                 "octo-org/octo.repo/runs/42/attempt-2/manifest.json",
		l.SumsKey(2):                     "octo-org/octo.repo/runs/42/attempt-2/SHA256SUMS",
		Layout{"..", "x", 1}.RunPrefix(): "__/x/runs/1/",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}

func TestPartSize(t *testing.T) {
	t.Parallel()
	const mib, tib = 1 << 20, 1 << 40
	tests := []struct{ length, min, want int64 }{
		{0, 16 * mib, 16 * mib},
		{1 << 30, 16 * mib, 16 * mib},
		{160000 * mib, 16 * mib, 16 * mib},
		{160001 * mib, 16 * mib, 17 * mib},
		{5 * tib, 16 * mib, 525 * mib},
	}
	for _, tt := range tests {
		got := PartSize(tt.length, tt.min)
		if got != tt.want {
			t.Errorf("PartSize(%d, %d) = %d, want %d", tt.length, tt.min, got, tt.want)
		}
		if parts := (tt.length + got - 1) / got; parts > MaxParts {
			t.Errorf("PartSize(%d) gives %d parts", tt.length, parts)
		}
	}
}

func TestSHA256SumsRelativePaths(t *testing.T) {
	t.Parallel()
	l := Layout{Owner: "o", Repo: "r", RunID: 9}
	m := &Manifest{Artifacts: []ArtifactRecord{
		{ID: 1, Status: StatusArchived, Key: l.ArtifactPrefix(1) + "a.zip", SHA256: "aa"},
		{ID: 2, Status: StatusExpired},
		{ID: 3, Status: StatusArchived, Key: l.ArtifactPrefix(3) + "b c.bin", SHA256: "bb"},
	}}
	m.WorkflowRun.RunAttempt = 2
	want := "aa  ../artifacts/1/a.zip\nbb  ../artifacts/3/b c.bin\n"
	if got := string(m.SHA256Sums(l)); got != want {
		t.Errorf("SHA256Sums =\n%s\nwant\n%s", got, want)
	}
}

func TestManifestComplete(t *testing.T) {
	t.Parallel()
	m := &Manifest{Artifacts: []ArtifactRecord{{Status: StatusArchived}, {Status: StatusExpired}}}
	if !m.Done(false) {
		t.Error("archived+expired should be complete without deletion")
	}
	if m.Done(true) {
		t.Error("undeleted archived artifact should be incomplete with deletion on")
	}
	m.Artifacts[0].DeletedFromGitHub = true
	if !m.Done(true) {
		t.Error("deleted artifact should be complete with deletion on")
	}
	m.Artifacts = append(m.Artifacts, ArtifactRecord{Status: StatusFailed})
	if m.Done(false) {
		t.Error("failed artifact should be incomplete")
	}
}
