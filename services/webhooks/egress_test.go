package webhooks

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// connectRecorder stands in for the real connect step. Destinations that the policy
// refuses must never reach it; for the few loopback addresses a test allows it opens
// a real connection, and for anything else it records the address and fails the
// test without opening a socket.
type connectRecorder struct {
	t *testing.T
	// real lists "ip:port" addresses that may be dialed for real (loopback only).
	real map[string]bool
	// expect lists "ip:port" addresses that may reach the recorder but must not be
	// dialed; the recorder returns an error for them.
	expect map[string]bool

	mu   sync.Mutex
	seen []string
}

func newRecorder(t *testing.T) *connectRecorder {
	return &connectRecorder{t: t, real: map[string]bool{}, expect: map[string]bool{}}
}

func (r *connectRecorder) connect(ctx context.Context, network, address string) (net.Conn, error) {
	r.mu.Lock()
	r.seen = append(r.seen, address)
	r.mu.Unlock()
	if r.real[address] {
		ap := netip.MustParseAddrPort(address)
		if !ap.Addr().IsLoopback() {
			r.t.Errorf("test bug: only loopback may be dialed, not %s", address)
			return nil, errors.New("not loopback")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	if r.expect[address] {
		return nil, errors.New("recorder: not dialing " + address)
	}
	r.t.Errorf("connect reached for %s %s: the egress check let it through", network, address)
	return nil, errors.New("recorder: refused to dial " + address)
}

func (r *connectRecorder) addresses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// fakeDNS answers only the names a test lists; real DNS is never asked.
func fakeDNS(t *testing.T, answers map[string][]string) ResolveFunc {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		list, ok := answers[host]
		if !ok {
			t.Errorf("unexpected resolution of %q", host)
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, a := range list {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

func loopbackPolicy() EgressPolicy {
	return EgressPolicy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
}

func TestIsRefusedAddr(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // empty when allowed
	}{
		{"127.0.0.1", "a loopback address"},
		{"127.255.255.254", "a loopback address"},
		{"::1", "a loopback address"},
		{"0.0.0.0", "the unspecified address"},
		{"::", "the unspecified address"},
		{"0.1.2.3", `a "this network" address`},
		{"10.0.0.1", "a private address"},
		{"172.16.0.1", "a private address"},
		{"172.31.255.255", "a private address"},
		{"192.168.1.1", "a private address"},
		{"169.254.1.1", "a link-local address"},
		{"169.254.169.254", "the cloud metadata address"},
		{"fd00:ec2::254", "the cloud metadata address"},
		{"100.100.100.200", "the cloud metadata address"},
		{"100.64.0.1", "a carrier-grade NAT (shared) address"},
		{"100.127.255.255", "a carrier-grade NAT (shared) address"},
		{"fe80::1", "a link-local address"},
		{"fc00::1", "a unique-local address"},
		{"fd12:3456::1", "a unique-local address"},
		{"224.0.0.1", "a multicast address"},
		{"239.255.255.250", "a multicast address"},
		{"ff02::1", "a multicast address"},
		{"255.255.255.255", "the broadcast address"},
		{"240.0.0.1", "a reserved address"},
		{"192.0.2.10", "a documentation address"},
		{"198.51.100.10", "a documentation address"},
		{"203.0.113.10", "a documentation address"},
		{"2001:db8::1", "a documentation address"},
		{"198.18.0.1", "a benchmarking address"},
		{"198.19.255.255", "a benchmarking address"},
		{"::ffff:127.0.0.1", "a loopback address"},
		{"::ffff:10.0.0.1", "a private address"},
		{"::ffff:169.254.169.254", "the cloud metadata address"},
		{"::10.0.0.1", "an IPv4-compatible IPv6 form of a private address"},
		{"::127.0.0.1", "an IPv4-compatible IPv6 form of a loopback address"},
		{"::8.8.8.8", "a deprecated IPv4-compatible IPv6 address"},
		{"64:ff9b::10.0.0.1", "a NAT64 form of a private address"},
		{"64:ff9b::169.254.169.254", "a NAT64 form of the cloud metadata address"},
		{"64:ff9b::127.0.0.1", "a NAT64 form of a loopback address"},
		{"64:ff9b:1::1", "a local-use NAT64 address"},
		{"2002:0a00:0001::1", "a 6to4 form of a private address"},
		{"2002:7f00:0001::1", "a 6to4 form of a loopback address"},
		{"2002:a9fe:a9fe::1", "a 6to4 form of the cloud metadata address"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo tunnel address"},
		{"fec0::1", "a site-local address"},
		{"100::1", "a discard-only address"},
		{"4000::1", "a reserved address"},
		{"fe80::1%eth0", "a scoped (zoned) address"},
		// Public destinations are allowed.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::8.8.8.8", ""},
		{"2002:0808:0808::1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			reason, refused := IsRefusedAddr(netip.MustParseAddr(tt.addr), EgressPolicy{})
			if refused != (tt.reason != "") || reason != tt.reason {
				t.Fatalf("IsRefusedAddr(%s) = (%q, %v), want (%q, %v)", tt.addr, reason, refused, tt.reason, tt.reason != "")
			}
		})
	}
	if _, refused := IsRefusedAddr(netip.Addr{}, EgressPolicy{}); !refused {
		t.Error("the zero netip.Addr is allowed")
	}
}

func TestIsRefusedAddrAllowlist(t *testing.T) {
	p := EgressPolicy{AllowedCIDRs: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("10.20.0.0/16"),
	}}
	tests := []struct {
		addr    string
		refused bool
	}{
		{"127.0.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"10.20.3.4", false},
		{"10.21.3.4", true},
		{"::1", true},
		{"169.254.169.254", true},
		{"64:ff9b::10.20.3.4", true},
		{"2002:0a14:0304::1", true},
	}
	for _, tt := range tests {
		if _, refused := IsRefusedAddr(netip.MustParseAddr(tt.addr), p); refused != tt.refused {
			t.Errorf("IsRefusedAddr(%s) with allowlist refused = %v, want %v", tt.addr, refused, tt.refused)
		}
	}
}

func TestParseAllowedCIDRs(t *testing.T) {
	got, err := ParseAllowedCIDRs("127.0.0.0/8, 10.1.2.3 ::1,fd00::/8 192.168.1.7/16")
	if err != nil {
		t.Fatalf("ParseAllowedCIDRs: %v", err)
	}
	want := []string{"127.0.0.0/8", "10.1.2.3/32", "::1/128", "fd00::/8", "192.168.0.0/16"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	if empty, err := ParseAllowedCIDRs("  "); err != nil || len(empty) != 0 {
		t.Errorf("ParseAllowedCIDRs(blank) = %v, %v; want none", empty, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0/8"} {
		if _, err := ParseAllowedCIDRs(bad); err == nil {
			t.Errorf("ParseAllowedCIDRs(%q) accepted", bad)
		}
	}
}

func TestValidateURL(t *testing.T) {
	prod := EgressPolicy{RequireHTTPS: true}
	dev := EgressPolicy{}
	tests := []struct {
		name    string
		raw     string
		p       EgressPolicy
		wantErr string // substring; empty means accepted
		refused bool   // the error is a *RefusedError
	}{
		{"https host", "https://example.com/hook", prod, "", false},
		{"port and query", "https://example.com:8443/a/b?c=d", prod, "", false},
		{"upper case scheme and host", "HTTPS://Example.COM/x", prod, "", false},
		{"punycode", "https://xn--bcher-kva.example/", prod, "", false},
		{"trailing dot", "https://example.com./", prod, "", false},
		{"public IPv4", "https://8.8.8.8/x", prod, "", false},
		{"public IPv6", "https://[2606:4700:4700::1111]/x", prod, "", false},
		{"http outside production", "http://example.com/hook", dev, "", false},

		{"empty", "", prod, "Enter the endpoint URL", false},
		{"too long", "https://example.com/" + strings.Repeat("a", MaxURLLength), prod, "too long", false},
		{"http in production", "http://example.com/hook", prod, "must use https", false},
		{"ftp", "ftp://example.com/", dev, "must use https", false},
		{"javascript", "javascript:alert(1)", dev, "must use https", false},
		{"relative", "/hook", prod, "absolute", false},
		{"scheme-relative", "//example.com/hook", prod, "absolute", false},
		{"no scheme", "example.com/hook", prod, "absolute", false},
		{"opaque", "https:example.com", prod, "must start with https://", false},
		{"no host", "https:///hook", prod, "must name a host", false},
		{"userinfo", "https://admin:hunter2@example.com/", prod, "user name or password", false},
		{"user only", "https://admin@example.com/", prod, "user name or password", false},
		{"fragment", "https://example.com/hook#part", prod, "fragment", false},
		{"empty fragment", "https://example.com/hook#", prod, "fragment", false},
		{"space", "https://example.com/a b", prod, "spaces", false},
		{"newline", "https://example.com/\nHost: x", prod, "spaces", false},
		{"port zero", "https://example.com:0/", prod, "port", false},
		{"port too big", "https://example.com:70000/", prod, "port", false},
		{"empty port", "https://example.com:/", prod, "port is empty", false},
		{"short IPv4", "https://127.1/", prod, "non-standard form", false},
		{"hex IPv4", "https://0x7f.0.0.1/", prod, "non-standard form", false},
		{"decimal IPv4", "https://2130706433/", prod, "non-standard form", false},
		{"octal IPv4", "https://017.0.0.1/", prod, "non-standard form", false},
		{"hex last label", "https://a.0x7f/", prod, "non-standard form", false},
		{"trailing-dot IPv4", "https://10.0.0.1./", prod, "non-standard form", false},
		{"unicode host", "https://bücher.example/", prod, "xn--", false},
		{"leading hyphen", "https://-bad.example/", prod, "not valid", false},
		{"underscore", "https://a_b.example/", prod, "not valid", false},
		{"empty label", "https://a..example/", prod, "not valid", false},

		{"loopback", "https://127.0.0.1/hook", prod, "refused: a loopback address", true},
		{"IPv6 loopback", "https://[::1]/hook", prod, "refused: a loopback address", true},
		{"private", "https://10.0.0.1/hook", prod, "refused: a private address", true},
		{"metadata", "http://169.254.169.254/latest/meta-data/", dev, "the cloud metadata address", true},
		{"mapped private", "https://[::ffff:10.0.0.1]/", prod, "a private address", true},
		{"mapped hex private", "https://[::ffff:a00:1]/", prod, "a private address", true},
		{"NAT64 private", "https://[64:ff9b::a00:1]/", prod, "a NAT64 form of a private address", true},
		{"6to4 private", "https://[2002:a00:1::]/", prod, "a 6to4 form of a private address", true},
		{"zoned link-local", "https://[fe80::1%25eth0]/", prod, "zoned", true},
		{"unspecified", "https://0.0.0.0/", prod, "the unspecified address", true},
		{"metadata IPv6", "https://[fd00:ec2::254]/", prod, "the cloud metadata address", true},
		{"localhost", "https://localhost/hook", prod, "refused: a loopback address", true},
		{"subdomain of localhost", "https://api.LOCALHOST./hook", prod, "refused: a loopback address", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ValidateURL(tt.raw, tt.p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateURL(%q) = %v, want accepted", tt.raw, err)
				}
				if u == nil || u.Host == "" {
					t.Fatalf("ValidateURL(%q) returned no URL", tt.raw)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateURL(%q) accepted, want %q", tt.raw, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateURL(%q) = %q, want it to contain %q", tt.raw, err, tt.wantErr)
			}
			var refusedErr *RefusedError
			var urlErr *URLError
			if tt.refused && !errors.As(err, &refusedErr) {
				t.Fatalf("error %T is not a *RefusedError", err)
			}
			if !tt.refused && !errors.As(err, &urlErr) {
				t.Fatalf("error %T is not a *URLError", err)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "admin") {
				t.Fatalf("error repeats the URL's credentials: %q", err)
			}
		})
	}
}

func TestValidateURLAllowlistedLiteral(t *testing.T) {
	if _, err := ValidateURL("http://127.0.0.1:8080/hook", loopbackPolicy()); err != nil {
		t.Fatalf("allowlisted loopback refused: %v", err)
	}
	if _, err := ValidateURL("http://localhost:8080/hook", loopbackPolicy()); err != nil {
		t.Fatalf("localhost refused with loopback allowlisted: %v", err)
	}
	if _, err := ValidateURL("https://10.0.0.1/hook", loopbackPolicy()); err == nil {
		t.Fatal("10.0.0.1 accepted with only loopback allowlisted")
	}
}

// TestEgressRefusesBeforeConnecting dials refused destinations through an Egress whose
// connect step is a recorder: the check must stop each one before a socket exists.
func TestEgressRefusesBeforeConnecting(t *testing.T) {
	tests := []struct {
		name    string
		policy  EgressPolicy
		address string
		want    string
	}{
		{"loopback without allowlist", EgressPolicy{}, "127.0.0.1:8080", "refused: a loopback address"},
		{"IPv6 loopback with only 127/8 allowed", EgressPolicy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "[::1]:443", "refused: a loopback address"},
		{"IPv6 loopback without allowlist", EgressPolicy{}, "[::1]:443", "refused: a loopback address"},
		{"private", loopbackPolicy(), "10.0.0.1:443", "refused: a private address"},
		{"metadata", loopbackPolicy(), "169.254.169.254:80", "refused: the cloud metadata address"},
		{"mapped private", loopbackPolicy(), "[::ffff:10.0.0.1]:443", "refused: a private address"},
		{"name resolving to private", loopbackPolicy(), "internal.test:443", "refused: a private address"},
		{"name with one private answer", loopbackPolicy(), "mixed.test:443", "refused: a private address"},
		{"name resolving to mapped metadata", loopbackPolicy(), "meta.test:80", "refused: the cloud metadata address"},
		{"name resolving to loopback without allowlist", EgressPolicy{}, "localhost.test:80", "refused: a loopback address"},
	}
	dns := map[string][]string{
		"internal.test":  {"10.1.2.3"},
		"mixed.test":     {"8.8.8.8", "192.168.0.9"},
		"meta.test":      {"::ffff:169.254.169.254"},
		"localhost.test": {"127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			e := NewEgress(tt.policy, WithConnect(rec.connect), WithResolver(fakeDNS(t, dns)))
			conn, err := e.DialContext(context.Background(), "tcp", tt.address)
			if conn != nil {
				conn.Close()
				t.Fatal("DialContext returned a connection")
			}
			var refusedErr *RefusedError
			if !errors.As(err, &refusedErr) {
				t.Fatalf("DialContext error = %v, want *RefusedError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DialContext error = %q, want %q", err, tt.want)
			}
			if seen := rec.addresses(); len(seen) != 0 {
				t.Fatalf("connect was reached for %v", seen)
			}
		})
	}
}

func TestEgressRejectsOtherNetworks(t *testing.T) {
	rec := newRecorder(t)
	e := NewEgress(loopbackPolicy(), WithConnect(rec.connect), WithResolver(fakeDNS(t, nil)))
	for _, network := range []string{"udp", "unix", "ip4:icmp"} {
		if _, err := e.DialContext(context.Background(), network, "127.0.0.1:53"); err == nil {
			t.Errorf("network %q allowed", network)
		}
	}
	if seen := rec.addresses(); len(seen) != 0 {
		t.Fatalf("connect was reached for %v", seen)
	}
}

// TestEgressChecksEveryResolution models DNS rebinding: the name first resolves to a
// public address, then to a private one. Each dial checks the answer it is about to
// use, so the second dial is refused before connecting.
func TestEgressChecksEveryResolution(t *testing.T) {
	var calls int
	resolver := func(_ context.Context, host string) ([]netip.Addr, error) {
		if host != "rebind.test" {
			t.Errorf("unexpected resolution of %q", host)
			return nil, errors.New("unexpected")
		}
		calls++
		if calls == 1 {
			return []netip.Addr{netip.MustParseAddr("8.8.4.4")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("10.9.8.7")}, nil
	}
	rec := newRecorder(t)
	rec.expect["8.8.4.4:443"] = true
	e := NewEgress(EgressPolicy{}, WithConnect(rec.connect), WithResolver(resolver))

	if _, err := e.DialContext(context.Background(), "tcp", "rebind.test:443"); err == nil || !strings.Contains(err.Error(), "recorder: not dialing") {
		t.Fatalf("first dial error = %v, want the recorder's", err)
	}
	_, err := e.DialContext(context.Background(), "tcp", "rebind.test:443")
	if want := "refused: a private address"; err == nil || err.Error() != want {
		t.Fatalf("second dial error = %v, want %q", err, want)
	}
	if seen := rec.addresses(); len(seen) != 1 || seen[0] != "8.8.4.4:443" {
		t.Fatalf("connect saw %v, want only 8.8.4.4:443", seen)
	}
}

func TestControlFunc(t *testing.T) {
	control := ControlFunc(loopbackPolicy())
	tests := []struct {
		address string
		refused bool
	}{
		{"127.0.0.1:80", false},
		{"[::1]:80", false},
		{"10.0.0.1:443", true},
		{"169.254.169.254:80", true},
		{"[::ffff:10.0.0.1]:443", true},
		{"[fe80::1%eth0]:443", true},
		{"not-an-address:80", true},
	}
	for _, tt := range tests {
		err := control("tcp4", tt.address, nil)
		if (err != nil) != tt.refused {
			t.Errorf("control(%s) = %v, want refused %v", tt.address, err, tt.refused)
		}
		var refusedErr *RefusedError
		if err != nil && !errors.As(err, &refusedErr) {
			t.Errorf("control(%s) error %T is not a *RefusedError", tt.address, err)
		}
	}
}

func listenLoopback(t *testing.T, network, address string) (net.Listener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatalf("listen %s: %v", address, err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	return ln, accepted
}

// TestDialerControlRefusesRealSocket dials a real listener on loopback through
// NewDialer. Without an allowlist the Control hook must stop the connect system call,
// so the listener never sees a connection; with the allowlist it connects.
func TestDialerControlRefusesRealSocket(t *testing.T) {
	ln, accepted := listenLoopback(t, "tcp4", "127.0.0.1:0")
	addr := ln.Addr().String()

	_, err := NewDialer(EgressPolicy{}, 2*time.Second).DialContext(context.Background(), "tcp", addr)
	var refusedErr *RefusedError
	if !errors.As(err, &refusedErr) {
		t.Fatalf("dial without allowlist = %v, want *RefusedError", err)
	}
	if refusedErr.Reason != "a loopback address" {
		t.Fatalf("reason = %q, want a loopback address", refusedErr.Reason)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("the listener accepted a connection that the Control hook should have stopped")
	case <-time.After(200 * time.Millisecond):
	}

	conn, err := NewDialer(loopbackPolicy(), 2*time.Second).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial with allowlist: %v", err)
	}
	conn.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("the allowlisted dial did not reach the listener")
	}
}

func TestEgressDefaultConnectAllowlistedLoopback(t *testing.T) {
	tests := []struct {
		network, listen string
	}{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			if tt.network == "tcp6" {
				probe, err := net.Listen("tcp6", "[::1]:0")
				if err != nil {
					t.Skipf("no IPv6 loopback on this machine: %v", err)
				}
				probe.Close()
			}
			ln, accepted := listenLoopback(t, tt.network, tt.listen)
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			host := "loop.test"
			dns := map[string][]string{host: {"127.0.0.1"}}
			if tt.network == "tcp6" {
				dns[host] = []string{"::1"}
			}

			// Without the allowlist: refused before any socket.
			rec := newRecorder(t)
			e := NewEgress(EgressPolicy{}, WithConnect(rec.connect), WithResolver(fakeDNS(t, dns)))
			if _, err := e.DialContext(context.Background(), "tcp", net.JoinHostPort(host, port)); err == nil {
				t.Fatal("loopback without allowlist was dialed")
			}

			// With the allowlist and the real dialer: connects.
			e = NewEgress(loopbackPolicy(), WithResolver(fakeDNS(t, dns)), WithConnectTimeout(2*time.Second))
			conn, err := e.DialContext(context.Background(), "tcp", net.JoinHostPort(host, port))
			if err != nil {
				t.Fatalf("allowlisted dial: %v", err)
			}
			conn.Close()
			select {
			case c := <-accepted:
				c.Close()
			case <-time.After(2 * time.Second):
				t.Fatal("no connection accepted")
			}
		})
	}
}

func TestRefusedErrorMessage(t *testing.T) {
	tests := []struct {
		err  RefusedError
		want string
	}{
		{RefusedError{Addr: netip.MustParseAddr("10.0.0.1"), Reason: "a private address"}, "refused: a private address"},
		{RefusedError{Host: "h.test", Addr: netip.MustParseAddr("::1"), Reason: "a loopback address"}, "refused: a loopback address"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
