package ghclient_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

// stallServer is a blob host that announces 1000 bytes, and then, after
// sendFirst bytes (none: not even the headers when sendFirst < 0), sends
// nothing until the client goes away or the test ends.
func stallServer(t *testing.T, sendFirst int) (srv *httptest.Server, arrived <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	got := make(chan struct{}, 1)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- struct{}{}:
		default:
		}
		if sendFirst >= 0 {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			w.Write(make([]byte, sendFirst))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv, got
}

func TestDownloaderStallIsRetryableNotShutdown(t *testing.T) {
	t.Parallel()
	srv, _ := stallServer(t, 10)
	d := ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true, StallTimeout: 200 * time.Millisecond})
	dl, err := d.Open(t.Context(), srv.URL+"/blob?sig=SECRET", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Body.Close()
	n, err := io.Copy(io.Discard, dl.Body)
	if n != 10 || !errors.Is(err, archive.ErrStalled) {
		t.Fatalf("read %d bytes, err %v; want 10 and ErrStalled", n, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stall error %v matches a context error", err)
	}
	if o, _ := archive.Classify(err); o != archive.OutcomeRetry {
		t.Errorf("stall classified %v, want OutcomeRetry", o)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error leaks the signed URL: %v", err)
	}
}

func TestDownloaderWaitsForHeadersNoLongerThanStallTimeout(t *testing.T) {
	t.Parallel()
	srv, _ := stallServer(t, -1)
	d := ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true, StallTimeout: 200 * time.Millisecond})
	_, err := d.Open(t.Context(), srv.URL+"/blob?sig=SECRET", 0)
	if !errors.Is(err, archive.ErrStalled) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no headers: %v, want ErrStalled and no context error", err)
	}
	if o, _ := archive.Classify(err); o != archive.OutcomeRetry {
		t.Errorf("no headers classified %v, want OutcomeRetry", o)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error leaks the signed URL: %v", err)
	}
}

func TestDownloaderCallerCancelIsShutdown(t *testing.T) {
	t.Parallel()
	d := ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true, StallTimeout: time.Minute})

	t.Run("while reading", func(t *testing.T) {
		t.Parallel()
		srv, _ := stallServer(t, 10)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		dl, err := d.Open(ctx, srv.URL, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer dl.Body.Close()
		if _, err := io.ReadFull(dl.Body, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = io.Copy(io.Discard, dl.Body)
		if !errors.Is(err, context.Canceled) || errors.Is(err, archive.ErrStalled) {
			t.Fatalf("cancelled read: %v, want context.Canceled", err)
		}
		if o, _ := archive.Classify(err); o != archive.OutcomeCanceled {
			t.Errorf("cancelled read classified %v, want OutcomeCanceled", o)
		}
	})
	t.Run("waiting for headers", func(t *testing.T) {
		t.Parallel()
		srv, arrived := stallServer(t, -1)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			<-arrived
			cancel()
		}()
		_, err := d.Open(ctx, srv.URL, 0)
		if !errors.Is(err, context.Canceled) || errors.Is(err, archive.ErrStalled) {
			t.Fatalf("cancelled open: %v, want context.Canceled", err)
		}
		if o, _ := archive.Classify(err); o != archive.OutcomeCanceled {
			t.Errorf("cancelled open classified %v, want OutcomeCanceled", o)
		}
	})
}

// A slow consumer (an upload of the previous part) is not a stalled
// download: the timer only runs while a Read waits.
func TestDownloaderStallTimerRunsOnlyWhileReading(t *testing.T) {
	t.Parallel()
	more := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		w.Write([]byte("a"))
		w.(http.Flusher).Flush()
		select {
		case <-more:
			w.Write([]byte("bc"))
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	d := ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true, StallTimeout: 50 * time.Millisecond})
	dl, err := d.Open(t.Context(), srv.URL, 0)
	if err != nil {
		close(more)
		t.Fatal(err)
	}
	defer dl.Body.Close()
	// The caller is busy elsewhere for four stall timeouts, not reading:
	// the pause is what is under test, not a wait for something.
	<-time.After(200 * time.Millisecond)
	close(more)
	b, err := io.ReadAll(dl.Body)
	if err != nil || string(b) != "abc" {
		t.Fatalf("read %q, %v after a pause; want abc", b, err)
	}
}

func TestDownloaderRefusesNonPublicAddresses(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	su, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := su.Port()

	// The control: with the check lifted, the same downloader setup
	// trusts the server and reads from it.
	open := ghclient.NewDownloader(ghclient.DownloaderConfig{AllowHTTP: true, RootCAs: roots})
	dl, err := open.Open(t.Context(), srv.URL+"/blob", 0)
	if err != nil {
		t.Fatalf("with AllowHTTP: %v", err)
	}
	dl.Body.Close()
	hits.Store(0)

	strict := ghclient.NewDownloader(ghclient.DownloaderConfig{RootCAs: roots})
	tests := []struct{ name, url, host string }{
		{"ip literal", srv.URL + "/blob?sig=SECRET", "127.0.0.1"},
		{"name resolving to loopback", "https://localhost:" + port + "/blob?sig=SECRET", "localhost"},
		{"metadata endpoint", "https://169.254.169.254/latest/meta-data/?sig=SECRET", "169.254.169.254"},
		{"ipv6 loopback", "https://[::1]:" + port + "/blob?sig=SECRET", "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := strict.Open(t.Context(), tt.url, 0)
			if !errors.Is(err, archive.ErrBadRedirect) {
				t.Fatalf("err = %v, want ErrBadRedirect", err)
			}
			if !strings.Contains(err.Error(), tt.host) {
				t.Errorf("error does not name host %s: %v", tt.host, err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks the signed URL: %v", err)
			}
			if o, _ := archive.Classify(err); o == archive.OutcomeCanceled || o == archive.OutcomeOK {
				t.Errorf("classified %v", o)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests", n)
	}
}

// routeTo returns a transport that trusts srv's certificate and connects
// every request to srv, whatever its host: srv's certificate is valid for
// example.com, so "https://example.com/..." reaches srv without the
// loopback address in the URL. It has no address check (a caller's
// Transport is used as-is).
func routeTo(srv *httptest.Server) http.RoundTripper {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return tr
}

// A public host can redirect to an internal one: the redirect is checked
// like the first URL.
func TestDownloaderRefusesRedirectToInternalAddress(t *testing.T) {
	t.Parallel()
	hop := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://10.0.0.1/blob?sig=SECRET", http.StatusFound)
	}))
	t.Cleanup(hop.Close)
	d := ghclient.NewDownloader(ghclient.DownloaderConfig{Transport: routeTo(hop)})
	_, err := d.Open(t.Context(), "https://example.com/x", 0)
	if !errors.Is(err, archive.ErrBadRedirect) || !strings.Contains(err.Error(), "10.0.0.1") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("redirect to 10.0.0.1: %v, want ErrBadRedirect naming the host only", err)
	}
}
