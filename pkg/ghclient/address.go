package ghclient

import (
	"fmt"
	"net/netip"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// nonPublic are the special-purpose ranges (IANA registries) that a blob
// host never lives in, beyond what netip.Addr's predicates cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds any IPv4 address
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// nat64 is the well-known NAT64 prefix: its addresses stand for the IPv4
// address in their last 32 bits, which decides.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// publicAddr reports whether a is a globally reachable unicast address: not
// loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16,
// fe80::/10), multicast, unspecified or another special-purpose range.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if nat64.Contains(a) {
		b := a.As16()
		return publicAddr(netip.AddrFrom4([4]byte(b[12:])))
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// checkDialAddress is the dialer's Control hook: it runs after DNS
// resolution, on the address about to be connected to, so that a host name
// that resolves (or is rebound) to an internal address is refused.
func checkDialAddress(host, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: host %s: unparsable address %q", archive.ErrBadRedirect, host, address)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: host %s resolves to %s, not a public address (set ARCHIVER_ALLOW_HTTP_DOWNLOADS=true for simulators)", archive.ErrBadRedirect, host, ap.Addr())
	}
	return nil
}

// checkHostLiteral refuses a URL host that is a non-public IP literal.
func checkHostLiteral(host string) error {
	a, err := netip.ParseAddr(host)
	if err != nil || publicAddr(a) {
		return nil
	}
	return fmt.Errorf("%w: host %s is not a public address (set ARCHIVER_ALLOW_HTTP_DOWNLOADS=true for simulators)", archive.ErrBadRedirect, host)
}
