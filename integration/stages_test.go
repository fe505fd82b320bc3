//go:build integration

package integration

import (
	"strings"
	"testing"
)

// TestStagesFor checks the reduction of a multi-stage Dockerfile that
// docker mode uses to build one image without the others' stages.
func TestStagesFor(t *testing.T) {
	in := `# comment
ARG BASE=scratch

FROM ${BASE} AS base
USER 65532

FROM base AS webhook
COPY bin/webhook /usr/local/bin/webhook

FROM golang AS tools
RUN true

FROM base AS worker
COPY --from=tools /x /x
COPY bin/worker /usr/local/bin/worker

FROM base AS mkbucket
COPY bin/mkbucket /usr/local/bin/mkbucket
`
	got := string(stagesFor([]byte(in), "worker"))
	for _, want := range []string{"ARG BASE=scratch", "AS base", "AS tools", "AS worker", "bin/worker"} {
		if !strings.Contains(got, want) {
			t.Errorf("reduced Dockerfile lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"AS webhook", "bin/webhook", "AS mkbucket"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("reduced Dockerfile keeps %q:\n%s", unwanted, got)
		}
	}
}
