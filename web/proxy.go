package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"
	"github.com/realclientip/realclientip-go"
)

// The forwarding headers a trusted proxy may name the client in.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	// HeaderForwarded is RFC 7239's header; its for= parameters are read.
	HeaderForwarded = "Forwarded"
)

// clientIPExtractor returns how every part of the console learns a
// request's client address (c.RealIP(): rate limits, audit records, logs).
//
// The address is the connection's peer, unless that peer is one of the
// trusted proxies. Only then is the forwarding header believed, and only
// the one named (a proxy that appends X-Forwarded-For passes a client's own
// Forwarded header through untouched, and the other way round). The header
// is read from the right, each trusted proxy having appended the address it
// received the request from: the client is the right-most address that is
// not a trusted proxy. Whatever a client wrote further left is ignored, so
// it can neither choose its own address nor take someone else's. When the
// header is missing, holds only trusted proxies, or the right-most untrusted
// entry is not an address ("unknown", an obfuscated name, garbage), the
// proxy's own address is used.
//
// Addresses are returned in netip's form, IPv4-mapped IPv6 unmapped and
// zones dropped, so one client always has one spelling.
func clientIPExtractor(trusted []netip.Prefix, header string) (echo.IPExtractor, error) {
	if len(trusted) == 0 {
		return func(r *http.Request) string { return peerAddr(r.RemoteAddr) }, nil
	}
	if header == "" {
		header = HeaderXForwardedFor
	}
	ranges := make([]net.IPNet, 0, len(trusted))
	for _, p := range trusted {
		p = p.Masked()
		ranges = append(ranges, net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	strategy, err := realclientip.NewRightmostTrustedRangeStrategy(header, ranges)
	if err != nil {
		return nil, fmt.Errorf("web: trusted proxy header: %w", err)
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer := peerAddr(r.RemoteAddr)
		a, err := netip.ParseAddr(peer)
		if err != nil || !isTrusted(a) {
			return peer
		}
		if ip, err := netip.ParseAddr(strategy.ClientIP(r.Header, r.RemoteAddr)); err == nil {
			return ip.Unmap().WithZone("").String()
		}
		return peer
	}, nil
}

// peerAddr is the connection's peer address from http.Request.RemoteAddr,
// normalised; a value that is not host:port is returned as it is.
func peerAddr(remoteAddr string) string {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("").String()
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return host
}
