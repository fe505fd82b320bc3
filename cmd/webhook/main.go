// Command webhook receives GitHub workflow_run deliveries and stores every
// completed run as an event in NATS JetStream for the archive workers.
// Run "webhook -h" for its environment variables; see package
// github.com/artifact-archiver/artifact-archiver/pkg/webhook for what it
// answers and measures.
package main

import (
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
)

// main runs webhook.Main until the first SIGTERM or SIGINT, then drains; a
// second signal ends the process at once. It exits 1 on an error.
func main() { service.Exec("webhook", webhook.Main) }
