package ghclient

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// DefaultStallTimeout is the default [DownloaderConfig.StallTimeout].
const DefaultStallTimeout = 60 * time.Second

// DownloaderConfig configures a [Downloader].
type DownloaderConfig struct {
	// AllowHTTP (ARCHIVER_ALLOW_HTTP_DOWNLOADS, default false) is for
	// simulators only. By default the downloader fetches https:// URLs
	// only, and its transport connects only to public addresses: after DNS
	// resolution, at connect time (so DNS rebinding cannot get around it),
	// it refuses loopback, private (RFC 1918, fc00::/7), shared
	// (100.64.0.0/10), link-local (169.254.0.0/16 with the cloud metadata
	// endpoint 169.254.169.254, fe80::/10), multicast, unspecified and
	// reserved addresses with [archive.ErrBadRedirect]. AllowHTTP permits
	// http:// URLs and lifts the address check, so that a simulator on
	// 127.0.0.1 can be reached.
	//
	// Behind a proxy (HTTPS_PROXY), the proxy resolves host names and
	// connects, so its own egress policy applies; the proxy's address is
	// exempt from the check, and IP literals in the URL are still refused.
	AllowHTTP bool
	// AllowedHosts, when non-empty, restricts download hosts to these
	// names or, for entries starting with ".", their subdomains
	// (ARCHIVER_DOWNLOAD_HOSTS; default empty: any public host).
	AllowedHosts []string
	// StallTimeout aborts a download with [archive.ErrStalled] when a read
	// waits this long for a byte, or the request this long for its
	// response headers (default 60 s). There is no whole-request timeout:
	// large artifacts take as long as they take.
	StallTimeout time.Duration
	// RootCAs, when set, replaces the system roots of the default
	// transport; tests use it to trust an httptest TLS server, with the
	// address check still in place. Default nil: the system roots.
	RootCAs *x509.CertPool
	// Transport, when set, replaces the default transport as-is (tests
	// only). None of the default's settings apply to it, the address
	// check included: the check is part of the default transport's dialer.
	// Default nil: a clone of http.DefaultTransport with compression off
	// and the address check (see AllowHTTP).
	Transport http.RoundTripper
}

// Downloader fetches artifact content from the pre-signed redirect URL. It
// is a plain HTTP client with no credentials: GitHub's token must never
// reach the blob host, and a pre-signed URL rejects extra auth anyway.
// Errors name the host, never the URL: its query is the signature.
type Downloader struct {
	cfg    DownloaderConfig
	client *http.Client
	// proxies holds the "host:port" of every proxy the transport used;
	// dials to them skip the address check.
	proxies sync.Map
}

var _ archive.Downloader = (*Downloader)(nil)

// NewDownloader returns a credential-free downloader.
func NewDownloader(cfg DownloaderConfig) *Downloader {
	cfg.StallTimeout = cmp.Or(cfg.StallTimeout, DefaultStallTimeout)
	d := &Downloader{cfg: cfg}
	rt := cfg.Transport
	if rt == nil {
		rt = d.defaultTransport(http.ProxyFromEnvironment)
	}
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

// defaultTransport is a clone of http.DefaultTransport, with proxy, whose
// dialer refuses non-public addresses unless AllowHTTP is set.
func (d *Downloader) defaultTransport(proxy func(*http.Request) (*url.URL, error)) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Compressed transfer would hide Content-Length.
	t.DisableCompression = true
	if d.cfg.RootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: d.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	t.Proxy = proxy
	if d.cfg.AllowHTTP {
		return t
	}
	if proxy != nil {
		t.Proxy = func(r *http.Request) (*url.URL, error) {
			u, err := proxy(r)
			if u != nil {
				d.proxies.Store(proxyAddr(u), true)
			}
			return u, err
		}
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if _, ok := d.proxies.Load(addr); ok {
			return dialer.DialContext(ctx, network, addr)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		checked := *dialer
		checked.Control = func(_, address string, _ syscall.RawConn) error {
			return checkDialAddress(host, address)
		}
		return checked.DialContext(ctx, network, addr)
	}
	return t
}

// proxyAddr is the "host:port" the transport dials for proxy u.
func proxyAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port)
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
	host := strings.ToLower(u.Hostname())
	if !d.cfg.AllowHTTP {
		// The dialer checks every address it connects to; this refuses IP
		// literals early, and also when a proxy does the connecting.
		if err := checkHostLiteral(host); err != nil {
			return err
		}
	}
	if len(d.cfg.AllowedHosts) == 0 {
		return nil
	}
	for _, h := range d.cfg.AllowedHosts {
		h = strings.ToLower(h)
		if host == h || (strings.HasPrefix(h, ".") && strings.HasSuffix(host, h)) {
			return nil
		}
	}
	return fmt.Errorf("%w: host %s is not in ARCHIVER_DOWNLOAD_HOSTS", archive.ErrBadRedirect, host)
}

// Open GETs rawURL from offset. The request, and then each read of the
// returned body, fails with [archive.ErrStalled] when nothing arrives for
// StallTimeout; a cancelled ctx fails it with ctx's error.
func (d *Downloader) Open(ctx context.Context, rawURL string, offset int64) (*archive.Download, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: unparsable location", archive.ErrBadRedirect)
	}
	if err := d.checkURL(u); err != nil {
		return nil, fmt.Errorf("ghclient: blob get %s: %w", u.Host, err)
	}
	b := newBlobRequest(ctx, u.Host, d.cfg.StallTimeout)
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		b.stop()
		return nil, fmt.Errorf("ghclient: blob request %s: %w", u.Host, err)
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := d.client.Do(req)
	b.timer.Stop()
	if err != nil {
		err = b.transferError("blob get", err)
		b.stop()
		return nil, err
	}
	fail := func(err error) (*archive.Download, error) {
		resp.Body.Close()
		b.stop()
		return nil, err
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
			return fail(fmt.Errorf("ghclient: blob get %s: bad Content-Range %q", u.Host, resp.Header.Get("Content-Range")))
		}
		dl.Offset, dl.Length = start, total
	case http.StatusNotFound, http.StatusGone:
		return fail(fmt.Errorf("ghclient: blob get %s: %d: %w", u.Host, resp.StatusCode, archive.ErrGone))
	default:
		// 403 here is usually an expired pre-signed URL: transient, the
		// caller asks GitHub for a fresh one.
		return fail(fmt.Errorf("ghclient: blob get %s: status %d", u.Host, resp.StatusCode))
	}
	if dl.Length < 0 {
		return fail(fmt.Errorf("ghclient: blob get %s: no Content-Length", u.Host))
	}
	b.body = resp.Body
	dl.Body = b
	return dl, nil
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

// blobRequest is one download: its request context, which the stall timer
// cancels with a cause wrapping archive.ErrStalled, and, once the headers
// are in, its body. The timer runs while the request waits for headers and
// while a Read waits for bytes, not while the caller is busy elsewhere (a
// slow upload of the previous part is not a stalled download).
type blobRequest struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	stall  time.Duration
	host   string
	body   io.ReadCloser
}

func newBlobRequest(parent context.Context, host string, stall time.Duration) *blobRequest {
	ctx, cancel := context.WithCancelCause(parent)
	b := &blobRequest{parent: parent, ctx: ctx, cancel: cancel, stall: stall, host: host}
	cause := fmt.Errorf("nothing received for %s: %w", stall, archive.ErrStalled)
	b.timer = time.AfterFunc(stall, func() { cancel(cause) })
	return b
}

// Read reads the body, failing with archive.ErrStalled when no byte comes
// for the stall timeout.
func (b *blobRequest) Read(p []byte) (int, error) {
	b.timer.Reset(b.stall)
	n, err := b.body.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF {
		err = b.transferError("blob read", err)
	}
	return n, err
}

// Close closes the body and releases the request.
func (b *blobRequest) Close() error {
	err := b.body.Close()
	b.stop()
	return err
}

func (b *blobRequest) stop() {
	b.timer.Stop()
	b.cancel(nil)
}

// transferError is the error the archive classifies for a failed request
// or read, named by host, never by URL:
//   - the stall timer fired: archive.ErrStalled (retry);
//   - the caller's ctx ended: its error (a shutdown);
//   - any other timeout, such as connect or TLS handshake: also
//     archive.ErrStalled, never a context error, since net/http's timeouts
//     match context.DeadlineExceeded and would read as a shutdown;
//   - anything else as it is, minus the *url.Error that names the URL.
func (b *blobRequest) transferError(op string, err error) error {
	err = stripURL(err)
	var ne net.Error
	switch cause := context.Cause(b.ctx); {
	case errors.Is(cause, archive.ErrStalled):
		return fmt.Errorf("ghclient: %s %s: %w", op, b.host, cause)
	case b.parent.Err() != nil:
		return fmt.Errorf("ghclient: %s %s: %w", op, b.host, b.parent.Err())
	case b.ctx.Err() != nil:
		// Closed while a read was in flight.
		return fmt.Errorf("ghclient: %s %s: %w", op, b.host, http.ErrBodyReadAfterClose)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("ghclient: %s %s: %v: %w", op, b.host, err, archive.ErrStalled)
	default:
		return fmt.Errorf("ghclient: %s %s: %w", op, b.host, err)
	}
}

// stripURL drops the *url.Error around err: its URL carries the signature.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
