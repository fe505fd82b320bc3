package catalog

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// rebuildConcurrency bounds the manifests Rebuild handles at once.
const rebuildConcurrency = 16

// manifestKeyRE matches the key of a run attempt's manifest.
var manifestKeyRE = regexp.MustCompile(`^[^/]+/[^/]+/runs/[0-9]+/attempt-[0-9]+/manifest\.json$`)

// Rebuild rewrites the catalogue files of every manifest under
// owner/repo (all when empty) from the manifests, several at a time. A
// manifest that fails is counted in RebuildResult.Failed (and logged by
// the caller from the returned error, which joins the first few) without
// stopping the others; the error is nil only when none failed.
func Rebuild(ctx context.Context, st archive.Store, owner, repo string) (RebuildResult, error) {
	var res RebuildResult
	prefix := ""
	if owner != "" {
		prefix = archive.SafeName(owner) + "/"
		if repo != "" {
			prefix += archive.SafeName(repo) + "/"
		}
	}
	infos, err := st.List(ctx, prefix)
	if err != nil {
		return res, fmt.Errorf("catalog: rebuild: list %q: %w", prefix, err)
	}
	keys := make(chan string)
	var (
		written, failed atomic.Int64
		mu              sync.Mutex
		firstErr        error
		wg              sync.WaitGroup
	)
	for range rebuildConcurrency {
		wg.Go(func() {
			for key := range keys {
				if err := Write(ctx, st, key); err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				written.Add(1)
			}
		})
	}
	for _, info := range infos {
		if !manifestKeyRE.MatchString(info.Key) {
			continue
		}
		res.Manifests++
		select {
		case keys <- info.Key:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(keys)
	wg.Wait()
	res.Written, res.Failed = int(written.Load()), int(failed.Load())
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("catalog: rebuild: %w", err)
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("catalog: rebuild: %d of %d manifests failed, first: %w", res.Failed, res.Manifests, firstErr)
	}
	return res, nil
}
