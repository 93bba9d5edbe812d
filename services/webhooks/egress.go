package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxURLLength is the longest endpoint URL accepted.
const MaxURLLength = 2048

// EgressPolicy says where deliveries may go. Loopback, private, link-local, metadata
// and other non-public addresses are refused unless they fall inside AllowedCIDRs.
// RequireHTTPS is set in production.
type EgressPolicy struct {
	AllowedCIDRs []netip.Prefix
	RequireHTTPS bool
}

// URLError reports an endpoint URL that is not acceptable. Message never repeats the
// URL, which may carry credentials.
type URLError struct {
	Message string
}

// Error returns the message.
func (e *URLError) Error() string { return e.Message }

// RefusedError reports a destination address refused by the egress policy.
// Host and Addr are for the program only: Error names neither.
type RefusedError struct {
	// Host is the host name that resolved to Addr, or empty for a literal address.
	Host string
	Addr netip.Addr
	// Reason is the kind of address, e.g. "a private address".
	Reason string
}

// Error says that the destination was refused and what kind of address it
// is, never which address: the message lands in the delivery log, the audit
// record and the page, and for a host name the address would tell an
// administrator what the name resolves to inside the platform's network.
// A literal address in the URL gets the same message, so the text does not
// depend on which of the two it was.
func (e *RefusedError) Error() string { return "refused: " + e.Reason }

// ParseAllowedCIDRs parses a comma- or space-separated list of CIDR prefixes (or
// single addresses) for EgressPolicy.AllowedCIDRs.
func ParseAllowedCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("webhooks: allowed CIDRs: %q is not an address or prefix: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("webhooks: allowed CIDRs: %q is not a prefix: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ValidateURL checks an endpoint URL: absolute http or https (https only when the
// policy requires it), a host, no credentials, no fragment, at most MaxURLLength
// bytes. A literal IP host is checked against the egress policy at once; a host name
// is checked on its resolved addresses when connecting. A refusal is a *URLError or,
// for a literal address, a *RefusedError.
func ValidateURL(raw string, p EgressPolicy) (*url.URL, error) {
	if raw == "" {
		return nil, &URLError{Message: "Enter the endpoint URL."}
	}
	if len(raw) > MaxURLLength {
		return nil, &URLError{Message: fmt.Sprintf("The URL is too long; use at most %d characters.", MaxURLLength)}
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7F {
			return nil, &URLError{Message: "The URL must not contain spaces or control characters."}
		}
	}
	if strings.Contains(raw, "#") {
		return nil, &URLError{Message: "The URL must not contain a fragment (#)."}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &URLError{Message: "The URL could not be parsed."}
	}
	switch {
	case u.Scheme == "":
		return nil, &URLError{Message: "The URL must be absolute, starting with https://."}
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, &URLError{Message: "The URL must use https (or http outside production)."}
	case u.Scheme == "http" && p.RequireHTTPS:
		return nil, &URLError{Message: "The URL must use https."}
	case u.Opaque != "":
		return nil, &URLError{Message: "The URL must start with " + u.Scheme + "://."}
	case u.User != nil:
		return nil, &URLError{Message: "The URL must not contain a user name or password."}
	case u.Fragment != "" || u.RawFragment != "":
		return nil, &URLError{Message: "The URL must not contain a fragment (#)."}
	}
	host := u.Hostname()
	if host == "" {
		return nil, &URLError{Message: "The URL must name a host."}
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, &URLError{Message: "The URL's port is empty."}
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, &URLError{Message: "The URL's port must be between 1 and 65535."}
		}
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if reason, refused := IsRefusedAddr(addr, p); refused {
			return nil, &RefusedError{Addr: addr, Reason: reason}
		}
		return u, nil
	}
	if strings.Contains(host, ":") || strings.HasPrefix(u.Host, "[") {
		return nil, &URLError{Message: "The URL's IPv6 address is not valid."}
	}
	if msg := checkHostName(host); msg != "" {
		return nil, &URLError{Message: msg}
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		if reason, refused := IsRefusedAddr(netip.AddrFrom4([4]byte{127, 0, 0, 1}), p); refused {
			return nil, &RefusedError{Host: host, Addr: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Reason: reason}
		}
	}
	return u, nil
}

// checkHostName accepts DNS host names in ASCII (letters, digits, hyphens; punycode
// for international names) and refuses names that a resolver could read as an IPv4
// address in a non-standard form (127.1, 0x7f.1, 2130706433).
func checkHostName(host string) string {
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return "The URL's host name is not valid."
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "The URL's host name is not valid."
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			case c >= 0x80:
				return "The URL's host name must be ASCII; write international names in their xn-- form."
			default:
				return "The URL's host name is not valid."
			}
		}
	}
	if looksNumeric(labels[len(labels)-1]) {
		return "The URL's host looks like an IP address written in a non-standard form; write it as a.b.c.d."
	}
	return ""
}

// looksNumeric reports whether a label is a decimal, octal or hexadecimal number,
// which IPv4 parsers in the wild accept as part of an address.
func looksNumeric(l string) bool {
	s := strings.ToLower(l)
	if strings.HasPrefix(s, "0x") {
		s = s[2:]
		for i := 0; i < len(s); i++ {
			if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

type refusedRange struct {
	prefix netip.Prefix
	reason string
}

func v4(a, b, c, d byte, bits int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{a, b, c, d}), bits)
}

// refusedV4 lists IPv4 ranges that deliveries never reach, most specific first.
func refusedV4() []refusedRange {
	return []refusedRange{
		{v4(169, 254, 169, 254, 32), "the cloud metadata address"},
		{v4(168, 63, 129, 16, 32), "a cloud platform host address"},
		{v4(100, 100, 100, 200, 32), "the cloud metadata address"},
		{v4(255, 255, 255, 255, 32), "the broadcast address"},
		{v4(0, 0, 0, 0, 32), "the unspecified address"},
		{v4(0, 0, 0, 0, 8), `a "this network" address`},
		{v4(127, 0, 0, 0, 8), "a loopback address"},
		{v4(10, 0, 0, 0, 8), "a private address"},
		{v4(172, 16, 0, 0, 12), "a private address"},
		{v4(192, 168, 0, 0, 16), "a private address"},
		{v4(169, 254, 0, 0, 16), "a link-local address"},
		{v4(100, 64, 0, 0, 10), "a carrier-grade NAT (shared) address"},
		{v4(192, 0, 0, 0, 24), "an IETF protocol assignment address"},
		{v4(192, 0, 2, 0, 24), "a documentation address"},
		{v4(198, 51, 100, 0, 24), "a documentation address"},
		{v4(203, 0, 113, 0, 24), "a documentation address"},
		{v4(198, 18, 0, 0, 15), "a benchmarking address"},
		{v4(192, 88, 99, 0, 24), "a 6to4 relay anycast address"},
		{v4(224, 0, 0, 0, 4), "a multicast address"},
		{v4(240, 0, 0, 0, 4), "a reserved address"},
	}
}

// refusedV6 lists IPv6 ranges that deliveries never reach, most specific first.
// IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms are handled before this list.
func refusedV6() []refusedRange {
	return []refusedRange{
		{netip.MustParsePrefix("::/128"), "the unspecified address"},
		{netip.MustParsePrefix("::1/128"), "a loopback address"},
		{netip.MustParsePrefix("fd00:ec2::254/128"), "the cloud metadata address"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
		{netip.MustParsePrefix("100::/64"), "a discard-only address"},
		{netip.MustParsePrefix("2001::/32"), "a Teredo tunnel address"},
		{netip.MustParsePrefix("2001:2::/48"), "a benchmarking address"},
		{netip.MustParsePrefix("2001::/23"), "an IETF protocol assignment address"},
		{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
		{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
		{netip.MustParsePrefix("fc00::/7"), "a unique-local address"},
		{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
		{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
		{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	}
}

// IsRefusedAddr reports whether a delivery to ip is refused by the policy, with a
// reason that completes "destination X is ..." (e.g. "a private address"). Loopback,
// unspecified, private, link-local, shared (CGNAT), unique-local, multicast,
// broadcast, cloud metadata, documentation, benchmarking and reserved addresses are
// refused, as are IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 forms of refused
// IPv4 addresses. An address inside one of p.AllowedCIDRs is allowed.
func IsRefusedAddr(ip netip.Addr, p EgressPolicy) (reason string, refused bool) {
	if !ip.IsValid() {
		return "an invalid address", true
	}
	if ip.Zone() != "" {
		return "a scoped (zoned) address", true
	}
	unmapped := ip.Unmap()
	for _, pfx := range p.AllowedCIDRs {
		if pfx.Contains(ip) || pfx.Contains(unmapped) {
			return "", false
		}
	}
	if unmapped.Is4() {
		return refusedV4Reason(unmapped)
	}
	a := ip.As16()
	switch {
	case netip.MustParsePrefix("::/96").Contains(ip) && !ip.IsUnspecified() && !ip.IsLoopback():
		if r, bad := refusedV4Reason(netip.AddrFrom4([4]byte(a[12:16]))); bad {
			return "an IPv4-compatible IPv6 form of " + r, true
		}
		return "a deprecated IPv4-compatible IPv6 address", true
	case netip.MustParsePrefix("::ffff:0:0:0/96").Contains(ip):
		if r, bad := refusedV4Reason(netip.AddrFrom4([4]byte(a[12:16]))); bad {
			return "an IPv4-translated IPv6 form of " + r, true
		}
		return "an IPv4-translated IPv6 address", true
	case netip.MustParsePrefix("64:ff9b::/96").Contains(ip):
		if r, bad := refusedV4Reason(netip.AddrFrom4([4]byte(a[12:16]))); bad {
			return "a NAT64 form of " + r, true
		}
		return "", false
	case netip.MustParsePrefix("2002::/16").Contains(ip):
		if r, bad := refusedV4Reason(netip.AddrFrom4([4]byte(a[2:6]))); bad {
			return "a 6to4 form of " + r, true
		}
		return "", false
	}
	for _, r := range refusedV6() {
		if r.prefix.Contains(ip) {
			return r.reason, true
		}
	}
	if !netip.MustParsePrefix("2000::/3").Contains(ip) {
		return "a reserved address", true
	}
	return "", false
}

func refusedV4Reason(ip netip.Addr) (string, bool) {
	for _, r := range refusedV4() {
		if r.prefix.Contains(ip) {
			return r.reason, true
		}
	}
	return "", false
}

// ControlFunc returns a net.Dialer Control hook that refuses to connect a socket to
// an address the policy refuses. It runs on the resolved address right before the
// connect system call, so a host name that re-resolves to another address (DNS
// rebinding) is still checked on the address actually used.
func ControlFunc(p EgressPolicy) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &RefusedError{Reason: "not a numeric address"}
		}
		if reason, refused := IsRefusedAddr(ap.Addr(), p); refused {
			return &RefusedError{Addr: ap.Addr(), Reason: reason}
		}
		return nil
	}
}

// NewDialer returns a net.Dialer whose Control hook enforces the policy on every
// socket it connects.
func NewDialer(p EgressPolicy, connectTimeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:   connectTimeout,
		KeepAlive: 30 * time.Second,
		Control:   ControlFunc(p),
	}
}

// ConnectFunc opens a connection to a numeric "ip:port" address.
type ConnectFunc func(ctx context.Context, network, address string) (net.Conn, error)

// ResolveFunc returns the addresses of a host name.
type ResolveFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// EgressOption changes how an Egress resolves or connects.
type EgressOption func(*Egress)

// WithConnect replaces the connect step (by default a NewDialer dialer). Every address
// handed to it has already passed the policy.
func WithConnect(fn ConnectFunc) EgressOption {
	return func(e *Egress) { e.connect = fn }
}

// WithResolver replaces host name resolution (by default the system resolver).
func WithResolver(fn ResolveFunc) EgressOption {
	return func(e *Egress) { e.resolve = fn }
}

// WithConnectTimeout sets the timeout of the default dialer (10 seconds otherwise).
func WithConnectTimeout(d time.Duration) EgressOption {
	return func(e *Egress) { e.connectTimeout = d }
}

// Egress opens outgoing connections for deliveries: it resolves the host, checks
// every resolved address against the policy and connects only to checked numeric
// addresses, through a dialer that checks again at connect time.
type Egress struct {
	policy         EgressPolicy
	connect        ConnectFunc
	resolve        ResolveFunc
	connectTimeout time.Duration
}

// NewEgress builds an Egress for the policy.
func NewEgress(p EgressPolicy, opts ...EgressOption) *Egress {
	e := &Egress{
		policy:         EgressPolicy{AllowedCIDRs: append([]netip.Prefix(nil), p.AllowedCIDRs...), RequireHTTPS: p.RequireHTTPS},
		connectTimeout: 10 * time.Second,
	}
	for _, o := range opts {
		o(e)
	}
	if e.connect == nil {
		e.connect = NewDialer(e.policy, e.connectTimeout).DialContext
	}
	if e.resolve == nil {
		r := &net.Resolver{}
		e.resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return r.LookupNetIP(ctx, "ip", host)
		}
	}
	return e
}

// Policy returns the egress policy in force.
func (e *Egress) Policy() EgressPolicy {
	return EgressPolicy{AllowedCIDRs: append([]netip.Prefix(nil), e.policy.AllowedCIDRs...), RequireHTTPS: e.policy.RequireHTTPS}
}

// DialContext connects to address ("host:port") over TCP. All resolved addresses are
// checked before any connection is attempted; if one is refused the dial fails with a
// *RefusedError and nothing is sent.
func (e *Egress) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	want := 0
	switch network {
	case "tcp":
	case "tcp4":
		want = 4
	case "tcp6":
		want = 6
	default:
		return nil, fmt.Errorf("webhooks: dial: network %q is not allowed", network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("webhooks: dial: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("webhooks: dial: invalid port %q", portStr)
	}
	var addrs []netip.Addr
	name := ""
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		name = host
		addrs, err = e.resolve(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("webhooks: resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("webhooks: resolve %s: %w", host, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true})
		}
	}
	var candidates []netip.Addr
	for _, a := range addrs {
		if reason, refused := IsRefusedAddr(a, e.policy); refused {
			return nil, &RefusedError{Host: name, Addr: a, Reason: reason}
		}
		a = a.Unmap()
		if (want == 4 && !a.Is4()) || (want == 6 && !a.Is6()) {
			continue
		}
		candidates = append(candidates, a)
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("webhooks: dial %s: no address of network %s", host, network)
	}
	var errs []error
	for _, a := range candidates {
		conn, err := e.connect(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
