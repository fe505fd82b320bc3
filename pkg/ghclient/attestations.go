package ghclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/golang/snappy"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// DefaultMaxBundleSize is the default [Config.MaxBundleSize]: GitHub's
// predicates reach 16 MB.
const DefaultMaxBundleSize = 32 << 20

// maxAttestationPages bounds the pages of one subject's attestations
// (100 each).
const maxAttestationPages = 100

var _ archive.AttestationLister = (*Client)(nil)

// attestationList is one page of "List attestations": go-github v66 has
// no type for it (and later versions lack bundle_url).
type attestationList struct {
	Attestations []struct {
		// Bundle is the bundle inline (older answers), or null.
		Bundle       json.RawMessage `json:"bundle"`
		RepositoryID int64           `json:"repository_id"`
		// BundleURL is a pre-signed, time-limited blob URL whose body is
		// the bundle, snappy block compressed.
		BundleURL string `json:"bundle_url"`
	} `json:"attestations"`
}

// Attestations lists the attestations of the subject sha256hex in the
// repository, following the Link header's after= cursors with per_page
// 100, and returns each distinct bundle (by the SHA-256 of its compact
// JSON) with its in-toto predicate type. A 404 means none: an empty list,
// no error. A bundle given as a bundle_url is fetched at once through the
// credential-free [Config.Bundles] downloader, its snappy body capped at
// [Config.MaxBundleSize] decoded bytes before it is decoded.
func (c *Client) Attestations(ctx context.Context, owner, repo, sha256hex string) ([]archive.Attestation, error) {
	what := fmt.Sprintf("list attestations of %s/%s sha256:%s", owner, repo, sha256hex)
	base := fmt.Sprintf("repos/%s/%s/attestations/sha256:%s", url.PathEscape(owner), url.PathEscape(repo), url.PathEscape(sha256hex))
	var out []archive.Attestation
	seen := map[[32]byte]bool{}
	after := ""
	for page := 1; ; page++ {
		if page > maxAttestationPages {
			return nil, fmt.Errorf("ghclient: %s: more than %d pages", what, maxAttestationPages)
		}
		q := url.Values{"per_page": {fmt.Sprint(PerPage)}}
		if after != "" {
			q.Set("after", after)
		}
		var list attestationList
		resp, err := c.get(ctx, "attestations", base+"?"+q.Encode(), &list)
		if err != nil {
			if statusOf(resp, err) == http.StatusNotFound {
				return out, nil
			}
			return nil, classify(what, resp, err)
		}
		for i, item := range list.Attestations {
			bundle := []byte(item.Bundle)
			if len(bundle) == 0 || string(bundle) == "null" {
				if item.BundleURL == "" {
					return nil, fmt.Errorf("ghclient: %s: attestation %d of page %d has neither bundle nor bundle_url", what, i, page)
				}
				if bundle, err = c.fetchBundle(ctx, item.BundleURL); err != nil {
					return nil, fmt.Errorf("ghclient: %s: %w", what, err)
				}
			}
			a, err := compactBundle(bundle)
			if err != nil {
				return nil, fmt.Errorf("ghclient: %s: attestation %d of page %d: %w", what, i, page, err)
			}
			if sum := sha256.Sum256(a.Bundle); !seen[sum] {
				seen[sum] = true
				out = append(out, a)
			}
		}
		if resp.After == "" {
			return out, nil
		}
		if resp.After == after {
			return nil, fmt.Errorf("ghclient: %s: page %d links to itself", what, page)
		}
		after = resp.After
	}
}

// compactBundle checks that b is a JSON object and returns it compact, one
// line, with its predicate type.
func compactBundle(b []byte) (archive.Attestation, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return archive.Attestation{}, fmt.Errorf("bundle is not a JSON object: %w", err)
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return archive.Attestation{}, fmt.Errorf("compact bundle: %w", err)
	}
	return archive.Attestation{Bundle: c.Bytes(), PredicateType: archive.BundlePredicateType(c.Bytes())}, nil
}

// errBundleTooLarge: a bundle decodes to more than the cap.
var errBundleTooLarge = errors.New("attestation bundle too large")

// fetchBundle GETs a bundle_url without credentials (the Downloader's
// policy: https only, public addresses, unless AllowHTTP) and decodes its
// snappy block body, refusing one that decodes to more than the cap.
func (c *Client) fetchBundle(ctx context.Context, rawURL string) ([]byte, error) {
	dl, err := c.bundles.Open(ctx, rawURL, 0)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle: %w", err)
	}
	defer dl.Body.Close()
	limit := int64(snappy.MaxEncodedLen(int(c.maxBundle)))
	if limit < 0 || dl.Length > limit {
		return nil, fmt.Errorf("fetch bundle: %d bytes compressed: %w (cap %d decoded)", dl.Length, errBundleTooLarge, c.maxBundle)
	}
	body, err := io.ReadAll(io.LimitReader(dl.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetch bundle: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("fetch bundle: more than %d bytes compressed: %w", limit, errBundleTooLarge)
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle: snappy header: %w", err)
	}
	if int64(n) > c.maxBundle {
		return nil, fmt.Errorf("fetch bundle: decodes to %d bytes: %w (cap %d)", n, errBundleTooLarge, c.maxBundle)
	}
	b, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle: snappy: %w", err)
	}
	return b, nil
}
