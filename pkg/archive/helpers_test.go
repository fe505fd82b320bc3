package archive_test

import (
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// injectForArtifact makes the next blob request for artifact id fail as f.
func injectForArtifact(t *testing.T, sim *ghsim.Server, id int64, f ghsim.Fault) {
	t.Helper()
	sim.Inject(ghsim.RouteBlob, 1, f.ForArtifact(id))
}
