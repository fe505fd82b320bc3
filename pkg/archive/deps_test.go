package archive_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTransportDependency: the archive core depends on the event
// contract (runevent), never on the NATS transport.
func TestNoTransportDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "nats-io") || strings.HasSuffix(dep, "/pkg/events") {
			t.Errorf("pkg/archive depends on %s", dep)
		}
	}
}
