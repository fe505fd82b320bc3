// Command worker archives the artifacts of completed GitHub Actions runs:
// it consumes run events from NATS JetStream and streams every artifact
// into S3 (or a local directory), verified, with a manifest per run
// attempt. Run it with -h for its configuration.
package main

import (
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

// main runs worker.Main until the first SIGTERM or SIGINT, then hands the
// in-flight runs back within the grace period; a second signal ends the
// process at once. It exits 1 on an error.
func main() { service.Exec("worker", worker.Main) }
