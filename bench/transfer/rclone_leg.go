package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// measureRclone copies the artifact with `rclone copyurl` from a freshly
// signed blob URL.
func (b *bench) measureRclone(ctx context.Context, art ghsim.Artifact, runID int64, want string) (result, error) {
	key := fmt.Sprintf("rclone/%d/%s.zip", runID, art.Name)
	conf := filepath.Join(b.dir, "rclone.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return result{}, err
	}
	provider := "Minio"
	if b.backend != backendMinIO {
		provider = "Other"
	}
	env := append(baseEnv(),
		"RCLONE_CONFIG="+conf,
		"RCLONE_CONFIG_DEST_TYPE=s3",
		"RCLONE_CONFIG_DEST_PROVIDER="+provider,
		"RCLONE_CONFIG_DEST_ENDPOINT="+b.endpoint,
		"RCLONE_CONFIG_DEST_ACCESS_KEY_ID="+b.accessKey,
		"RCLONE_CONFIG_DEST_SECRET_ACCESS_KEY="+b.secretKey,
		"RCLONE_CONFIG_DEST_REGION="+region,
		"RCLONE_CONFIG_DEST_FORCE_PATH_STYLE=true",
	)
	u, err := b.downloadURL(ctx, art.ID)
	if err != nil {
		return result{}, err
	}
	res, err := b.measureChild(ctx, childLeg{tool: legRclone, bin: b.opt.rclone, args: []string{"copyurl", u, "dest:" + bucket + "/" + key}, env: env}, art, runID)
	if err != nil {
		return res, err
	}
	b.checkCopy(ctx, &res, key, want)
	return res, nil
}

// downloadURL asks the simulator's zip endpoint for a fresh signed blob
// URL (valid for a minute).
func (b *bench) downloadURL(ctx context.Context, id int64) (string, error) {
	u := fmt.Sprintf("%srepos/%s/%s/actions/artifacts/%d/zip", b.sim.URL(), owner, repoName, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "token "+ghToken)
	hc := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("GET %s: %s, want 302", u, resp.Status)
	}
	return resp.Header.Get("Location"), nil
}
