package testserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryBuildsOnce runs Binary for a missing program from parallel
// subtests, with a fake "go" on PATH that counts its runs: the file lock
// lets exactly one of them build.
func TestBinaryBuildsOnce(t *testing.T) {
	name := "archiver-fake-" + strings.ToLower(t.Name())
	binDir := filepath.Join(RepoRoot(t), ".cache", "bin")
	t.Cleanup(func() {
		os.Remove(filepath.Join(binDir, name))
		os.Remove(filepath.Join(binDir, "."+name+".lock"))
	})
	fakeGo := t.TempDir()
	counter := filepath.Join(t.TempDir(), "runs")
	// A slow fake build (0.2 s), so that the other callers queue on the lock.
	script := "#!/bin/sh\n" +
		"echo \"$@\" >> " + counter + "\n" +
		"sleep 0.2\n" +
		"printf '#!/bin/sh\\n' > \"$GOBIN/" + name + "\"\n" +
		"chmod +x \"$GOBIN/" + name + "\"\n"
	if err := os.WriteFile(filepath.Join(fakeGo, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", fakeGo+string(os.PathListSeparator)+os.Getenv("PATH"))

	t.Run("group", func(t *testing.T) {
		for range 4 {
			t.Run("caller", func(t *testing.T) {
				t.Parallel()
				got := Binary(t, name, "ARCHIVER_FAKE_BIN_UNSET", "example.com/fake@v1.0.0")
				if got != filepath.Join(binDir, name) {
					t.Errorf("Binary = %s, want it in %s", got, binDir)
				}
			})
		}
	})
	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if runs := strings.Split(strings.TrimSpace(string(b)), "\n"); len(runs) != 1 || runs[0] != "install example.com/fake@v1.0.0" {
		t.Errorf("fake go ran %q, want one \"install example.com/fake@v1.0.0\"", runs)
	}
}
