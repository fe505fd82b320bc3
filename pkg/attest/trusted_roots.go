package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
)

// MaxTrustedRoots bounds one trusted-root source or snapshot (a
// trusted_root.json is a few tens of KB).
const MaxTrustedRoots = 16 << 20

// LoadTrustedRoots parses trusted roots: JSONL with one trusted_root.json
// per line (what `gh attestation trusted-root` prints), or any sequence
// of JSON documents, such as one indented trusted_root.json.
func LoadTrustedRoots(jsonl []byte) (root.TrustedMaterialCollection, error) {
	docs, err := splitRoots(jsonl)
	if err != nil {
		return nil, err
	}
	var out root.TrustedMaterialCollection
	for i, d := range docs {
		tr, err := root.NewTrustedRootFromJSON(d)
		if err != nil {
			return nil, fmt.Errorf("attest: trusted root %d: %w", i+1, err)
		}
		out = append(out, tr)
	}
	return out, nil
}

// splitRoots returns each JSON document of b, compacted to one line; it
// fails when there is none.
func splitRoots(b []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var out [][]byte
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("attest: trusted root %d: %w", len(out)+1, err)
		}
		var line bytes.Buffer
		if err := json.Compact(&line, raw); err != nil {
			return nil, fmt.Errorf("attest: trusted root %d: %w", len(out)+1, err)
		}
		out = append(out, line.Bytes())
	}
	if len(out) == 0 {
		return nil, errors.New("attest: no trusted root")
	}
	return out, nil
}

// Sources fetches the trusted roots that verification needs, for the
// worker's daily snapshot. It is built from ARCHIVER_TRUSTED_ROOTS: a
// comma-separated list of https://, http:// or file:// URLs, each serving
// a trusted_root.json or JSONL of them. Empty means Sigstore Public Good
// only, through sigstore-go's TUF client (its embedded root and the
// default mirror); GitHub's own instance, which signs attestations of
// private repositories, has no TUF root embedded here, so give it as a
// URL or file (the second line of `gh attestation trusted-root`).
type Sources struct {
	urls   []*url.URL
	client *http.Client
	// publicGood fetches Public Good's trusted_root.json through TUF.
	publicGood func(ctx context.Context) ([]byte, error)
}

// NewSources parses spec (see Sources); client fetches http(s) sources
// (nil: http.DefaultClient).
func NewSources(spec string, client *http.Client) (*Sources, error) {
	s := &Sources{client: client, publicGood: publicGoodTUF}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		u, err := url.Parse(item)
		if err != nil {
			return nil, fmt.Errorf("attest: trusted root source %q: %w", item, err)
		}
		switch u.Scheme {
		case "https", "http":
			if u.Host == "" {
				return nil, fmt.Errorf("attest: trusted root source %q: no host", item)
			}
		case "file":
			if u.Host != "" && u.Host != "localhost" && u.Host != "." {
				return nil, fmt.Errorf("attest: trusted root source %q: want file:///absolute/path or file://./relative", item)
			}
		default:
			return nil, fmt.Errorf("attest: trusted root source %q: want an https://, http:// or file:// URL", item)
		}
		s.urls = append(s.urls, u)
	}
	return s, nil
}

// Describe lists the sources for logs and status pages.
func (s *Sources) Describe() []string {
	if len(s.urls) == 0 {
		return []string{"tuf:" + tuf.DefaultMirror}
	}
	out := make([]string, len(s.urls))
	for i, u := range s.urls {
		out[i] = u.Redacted()
	}
	return out
}

// TrustedRoots fetches every source and returns the roots as JSONL, one
// trusted_root.json per line, in the order of the sources. Each root is
// parsed first: a source that is down or serves something else fails the
// whole call, so a snapshot is never partial.
func (s *Sources) TrustedRoots(ctx context.Context) ([]byte, error) {
	var out bytes.Buffer
	add := func(name string, b []byte) error {
		docs, err := splitRoots(b)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, d := range docs {
			if _, err := root.NewTrustedRootFromJSON(d); err != nil {
				return fmt.Errorf("attest: trusted root from %s: %w", name, err)
			}
			out.Write(d)
			out.WriteByte('\n')
		}
		return nil
	}
	if len(s.urls) == 0 {
		b, err := s.publicGood(ctx)
		if err != nil {
			return nil, err
		}
		if err := add("tuf:"+tuf.DefaultMirror, b); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	for _, u := range s.urls {
		b, err := s.fetch(ctx, u)
		if err != nil {
			return nil, err
		}
		if err := add(u.Redacted(), b); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// fetch reads one source, at most MaxTrustedRoots bytes.
func (s *Sources) fetch(ctx context.Context, u *url.URL) ([]byte, error) {
	var r io.ReadCloser
	if u.Scheme == "file" {
		p := u.Path
		if u.Host == "." {
			p = "." + p
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("attest: trusted root: %w", err)
		}
		r = f
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("attest: get trusted root %s: %w", u.Redacted(), err)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("attest: get trusted root: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("attest: get trusted root %s: %s", u.Redacted(), resp.Status)
		}
		r = resp.Body
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, MaxTrustedRoots+1))
	if err != nil {
		return nil, fmt.Errorf("attest: read trusted root %s: %w", u.Redacted(), err)
	}
	if len(b) > MaxTrustedRoots {
		return nil, fmt.Errorf("attest: trusted root %s: larger than %d bytes", u.Redacted(), MaxTrustedRoots)
	}
	return b, nil
}

// publicGoodTUF fetches Sigstore Public Good's trusted_root.json with
// sigstore-go's TUF client: its embedded root, the default mirror, no
// local cache (the worker needs no writable home).
func publicGoodTUF(ctx context.Context) ([]byte, error) {
	opts := tuf.DefaultOptions().WithContext(ctx).WithDisableLocalCache()
	c, err := tuf.New(opts)
	if err != nil {
		return nil, fmt.Errorf("attest: tuf client for %s: %w", tuf.DefaultMirror, err)
	}
	b, err := c.GetTarget("trusted_root.json")
	if err != nil {
		return nil, fmt.Errorf("attest: tuf get trusted_root.json: %w", err)
	}
	return b, nil
}
