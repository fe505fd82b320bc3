package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// measureBare copies the artifact with bareput: a freshly signed blob URL
// streamed by one PutObject with SHA-256 computed on the way, the
// one-stream limit the worker is compared with.
func (b *bench) measureBare(ctx context.Context, art ghsim.Artifact, runID int64, want string) (result, error) {
	key := fmt.Sprintf("bare/%d/%s.zip", runID, art.Name)
	env := append(baseEnv(), b.awsEnv()...)
	u, err := b.downloadURL(ctx, art.ID)
	if err != nil {
		return result{}, err
	}
	var out bytes.Buffer
	res, err := b.measureChild(ctx, childLeg{tool: legBare, bin: b.bareBin, args: []string{"-url", u, "-bucket", bucket, "-key", key}, env: env, stdout: &out}, art, runID)
	if err != nil {
		return res, err
	}
	if got := strings.Fields(out.String()); len(got) == 0 || got[0] != want {
		res.note = fmt.Sprintf("bareput hashed %q, want %s", out.String(), want)
	}
	b.checkCopy(ctx, &res, key, want)
	return res, nil
}
