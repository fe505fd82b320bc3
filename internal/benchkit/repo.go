package benchkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RepoRoot returns the directory holding go.mod, found by walking up from
// the working directory.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("benchkit: find repo root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("benchkit: no go.mod above %s", wd)
		}
	}
}

// FindBinary returns the path of the executable name: $envVar if envVar is
// not empty and the variable is set (not checked), else
// <root>/.cache/bin/name if root is not empty and that is an executable
// file (where the tests and "make tools" put the pinned versions), else name
// on PATH.
func FindBinary(root, name, envVar string) (string, error) {
	if envVar != "" {
		if p := os.Getenv(envVar); p != "" {
			return p, nil
		}
	}
	if root != "" {
		if p := filepath.Join(root, ".cache", "bin", name); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("benchkit: no %s binary in <repo>/.cache/bin or on PATH", name)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
