package ghclient

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

func TestPublicAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr   string
		public bool
	}{
		{"140.82.112.3", true},
		{"20.60.40.4", true},
		{"8.8.8.8", true},
		{"2606:4700::1111", true},
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fc00::1", false},
		{"fd00:ec2::254", false},
		{"0.0.0.0", false},
		{"::", false},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"255.255.255.255", false},
		{"100.64.0.1", false},
		{"192.0.2.1", false},
		{"198.18.0.1", false},
		{"240.0.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"::127.0.0.1", false},
		{"64:ff9b::a00:1", false}, // NAT64 of 10.0.0.1
		{"64:ff9b::a9fe:a9fe", false},
		{"2002:7f00:1::", false},
		{"2001:db8::1", false},
	}
	for _, tt := range tests {
		if got := publicAddr(netip.MustParseAddr(tt.addr)); got != tt.public {
			t.Errorf("publicAddr(%s) = %v, want %v", tt.addr, got, tt.public)
		}
	}
}

func TestCheckDialAddress(t *testing.T) {
	t.Parallel()
	if err := checkDialAddress("blob.example", "140.82.112.3:443"); err != nil {
		t.Errorf("public address: %v", err)
	}
	for _, a := range []string{"127.0.0.1:443", "[::1]:443", "169.254.169.254:80", "[fe80::1%eth0]:443", "garbage"} {
		if err := checkDialAddress("blob.example", a); !errors.Is(err, archive.ErrBadRedirect) {
			t.Errorf("%s: %v, want ErrBadRedirect", a, err)
		}
	}
}

// A proxy is exempt from the address check (it does the connecting, and
// usually sits on a private address); direct dials are not.
func TestDefaultTransportExemptsTheProxy(t *testing.T) {
	t.Parallel()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A forward proxy sees the absolute URL.
		if r.URL.Host != "blob.example" {
			http.Error(w, "unexpected target "+r.URL.Host, http.StatusBadGateway)
			return
		}
		io.WriteString(w, "via proxy")
	}))
	t.Cleanup(proxy.Close)
	pu, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	d := &Downloader{}
	tr := d.defaultTransport(func(r *http.Request) (*url.URL, error) {
		if r.URL.Host == "blob.example" {
			return pu, nil
		}
		return nil, nil
	})
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}

	resp, err := c.Get("http://blob.example/x")
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "via proxy" {
		t.Fatalf("through the proxy: %d %q", resp.StatusCode, b)
	}
	// The proxy's own address, asked for directly under a name, is only
	// exempt as the proxy; "localhost" resolves to loopback and is refused.
	if _, err := c.Get("http://localhost:" + pu.Port() + "/x"); !errors.Is(err, archive.ErrBadRedirect) {
		t.Fatalf("direct dial to loopback: %v, want ErrBadRedirect", err)
	}
}
