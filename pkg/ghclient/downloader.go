package ghclient

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// DownloaderConfig configures a [Downloader].
type DownloaderConfig struct {
	// AllowHTTP permits http:// redirect targets (simulators only;
	// ARCHIVER_ALLOW_HTTP_DOWNLOADS). The default accepts https only.
	AllowHTTP bool
	// AllowedHosts, when non-empty, restricts redirect targets to these
	// host names or, for entries starting with ".", their subdomains.
	AllowedHosts []string
	// StallTimeout cancels a download that delivers no byte for this long
	// (default 60 s). There is no whole-request timeout: large artifacts
	// take as long as they take.
	StallTimeout time.Duration
	// Transport is the base transport (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
}

// Downloader fetches artifact content from the pre-signed redirect URL. It
// is a plain HTTP client with no credentials: GitHub's token must never
// reach the blob host, and a pre-signed URL rejects extra auth anyway.
type Downloader struct {
	cfg    DownloaderConfig
	client *http.Client
}

var _ archive.Downloader = (*Downloader)(nil)

// NewDownloader returns a credential-free downloader.
func NewDownloader(cfg DownloaderConfig) *Downloader {
	cfg.StallTimeout = cmp.Or(cfg.StallTimeout, 60*time.Second)
	rt := cfg.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 30 * time.Second
		// Compressed transfer would hide Content-Length.
		t.DisableCompression = true
		rt = t
	}
	d := &Downloader{cfg: cfg}
	d.client = &http.Client{
		Transport: rt,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return fmt.Errorf("%w: too many redirects", archive.ErrBadRedirect)
			}
			return d.checkURL(r.URL)
		},
	}
	return d
}

// checkURL refuses targets the archiver must not fetch.
func (d *Downloader) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "http" && !d.cfg.AllowHTTP:
		return fmt.Errorf("%w: %s:// is not allowed (only https; set ARCHIVER_ALLOW_HTTP_DOWNLOADS=true for simulators)", archive.ErrBadRedirect, u.Scheme)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%w: scheme %q", archive.ErrBadRedirect, u.Scheme)
	case u.User != nil:
		return fmt.Errorf("%w: credentials in URL", archive.ErrBadRedirect)
	case u.Hostname() == "":
		return fmt.Errorf("%w: no host", archive.ErrBadRedirect)
	}
	if len(d.cfg.AllowedHosts) == 0 {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	for _, h := range d.cfg.AllowedHosts {
		h = strings.ToLower(h)
		if host == h || (strings.HasPrefix(h, ".") && strings.HasSuffix(host, h)) {
			return nil
		}
	}
	return fmt.Errorf("%w: host %s is not in ARCHIVER_DOWNLOAD_HOSTS", archive.ErrBadRedirect, host)
}

// Open GETs rawURL from offset. The returned body aborts with an error if
// no byte arrives for StallTimeout.
func (d *Downloader) Open(ctx context.Context, rawURL string, offset int64) (*archive.Download, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: unparsable location", archive.ErrBadRedirect)
	}
	if err := d.checkURL(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ghclient: blob request: %w", err)
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		cancel()
		// The URL carries a signature: never put it in an error.
		var ue *url.Error
		if asURLError(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("ghclient: blob get %s: %w", u.Host, err)
	}
	dl := &archive.Download{ContentType: resp.Header.Get("Content-Type")}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		dl.FileName = params["filename"]
	}
	switch resp.StatusCode {
	case http.StatusOK:
		dl.Offset, dl.Length = 0, resp.ContentLength
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			resp.Body.Close()
			cancel()
			return nil, fmt.Errorf("ghclient: blob get %s: bad Content-Range %q", u.Host, resp.Header.Get("Content-Range"))
		}
		dl.Offset, dl.Length = start, total
	case http.StatusNotFound, http.StatusGone:
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("ghclient: blob get %s: %d: %w", u.Host, resp.StatusCode, archive.ErrGone)
	default:
		resp.Body.Close()
		cancel()
		// 403 here is usually an expired pre-signed URL: transient, the
		// caller asks GitHub for a fresh one.
		return nil, fmt.Errorf("ghclient: blob get %s: status %d", u.Host, resp.StatusCode)
	}
	if dl.Length < 0 {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("ghclient: blob get %s: no Content-Length", u.Host)
	}
	dl.Body = newStallReader(resp.Body, cancel, d.cfg.StallTimeout)
	return dl, nil
}

func asURLError(err error, target **url.Error) bool {
	ue, ok := err.(*url.Error)
	if ok {
		*target = ue
	}
	return ok
}

// parseContentRange parses "bytes START-END/TOTAL".
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	total, err2 := strconv.ParseInt(tot, 10, 64)
	return start, total, err1 == nil && err2 == nil && start >= 0 && total > start
}

// stallReader cancels the request when no byte arrives for timeout.
type stallReader struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	timer  *time.Timer
	d      time.Duration
}

func newStallReader(rc io.ReadCloser, cancel context.CancelFunc, d time.Duration) *stallReader {
	return &stallReader{rc: rc, cancel: cancel, d: d, timer: time.AfterFunc(d, cancel)}
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("ghclient: blob read: %w", stripURL(err))
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	err := s.rc.Close()
	s.cancel()
	return err
}

func stripURL(err error) error {
	var ue *url.Error
	if asURLError(err, &ue) {
		return ue.Err
	}
	return err
}
