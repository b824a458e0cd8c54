package fetch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrRefusedAddress is wrapped by connection errors to an address a safe
// Fetcher does not reach: loopback, link-local, private, unspecified,
// multicast or carrier-grade NAT addresses.
var ErrRefusedAddress = errors.New("refused address")

// errUnsupportedScheme is returned by the redirect check for a redirect to
// anything but http or https.
var errUnsupportedScheme = errors.New("unsupported scheme")

// sharedAddressSpace is 100.64.0.0/10 (RFC 6598), used inside providers'
// networks.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// refusedIP reports whether a safe Fetcher refuses to connect to ip, and
// why.
func refusedIP(ip netip.Addr) (string, bool) {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback", true
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local", true
	case ip.IsPrivate(), sharedAddressSpace.Contains(ip):
		return "private", true
	case ip.IsUnspecified():
		return "unspecified", true
	case ip.IsMulticast():
		return "multicast", true
	}
	return "", false
}

// checkDial is a net.Dialer Control hook: it runs after DNS resolution,
// on the address about to be connected to, for the first request and
// every redirect alike, so a name that resolves to an internal address
// is refused too.
func checkDial(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRefusedAddress, address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %s is not an IP address", ErrRefusedAddress, host)
	}
	if kind, refused := refusedIP(ip); refused {
		return fmt.Errorf("%w %s (%s)", ErrRefusedAddress, ip, kind)
	}
	return nil
}
