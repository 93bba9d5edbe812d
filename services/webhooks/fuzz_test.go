package webhooks

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// legacyIPv4 parses a host the way inet_aton and many URL parsers do: one to four
// dot-separated parts in decimal, octal (leading 0) or hex (0x). It reports whether
// the host would be read as an IPv4 address by some resolver.
func legacyIPv4(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(host, ".")
	parts := strings.Split(host, ".")
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 1 && (strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X")):
			p, base = p[2:], 16
			if p == "" {
				p = "0"
			}
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	switch len(vals) {
	case 1:
		n = vals[0]
	case 2:
		if vals[0] > 0xff || vals[1] > 0xffffff {
			return netip.Addr{}, false
		}
		n = vals[0]<<24 | vals[1]
	case 3:
		if vals[0] > 0xff || vals[1] > 0xff || vals[2] > 0xffff {
			return netip.Addr{}, false
		}
		n = vals[0]<<24 | vals[1]<<16 | vals[2]
	case 4:
		for _, v := range vals {
			if v > 0xff {
				return netip.Addr{}, false
			}
		}
		n = vals[0]<<24 | vals[1]<<16 | vals[2]<<8 | vals[3]
	}
	if n > 0xffffffff {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

func TestLegacyIPv4(t *testing.T) {
	tests := map[string]string{
		"127.1":      "127.0.0.1",
		"0x7f.0.0.1": "127.0.0.1",
		"2130706433": "127.0.0.1",
		"017.0.0.1":  "15.0.0.1",
		"10.0.0.1.":  "10.0.0.1",
		"example":    "",
		"1.2.3.4.5":  "",
	}
	for in, want := range tests {
		got, ok := legacyIPv4(in)
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("legacyIPv4(%q) = %v, %v; want %q", in, got, ok, want)
		}
	}
}

// FuzzValidateURL checks that ValidateURL never panics, and that an accepted URL is
// absolute http(s) without credentials or fragment, and never names a refused address,
// neither as a literal IP nor in a legacy numeric form a resolver could read as one.
func FuzzValidateURL(f *testing.F) {
	for _, seed := range []string{
		"https://example.com/hook",
		"http://127.0.0.1:8080/",
		"https://[::ffff:10.0.0.1]/",
		"https://[64:ff9b::a9fe:a9fe]/",
		"https://0x7f.1/",
		"https://user:pass@example.com/",
		"https://example.com/#x",
		"https://[fe80::1%25eth0]:443/",
	} {
		f.Add(seed)
	}
	policies := []EgressPolicy{
		{RequireHTTPS: true},
		{},
		{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, p := range policies {
			u, err := ValidateURL(raw, p)
			if err != nil {
				if u != nil {
					t.Fatalf("ValidateURL(%q) returned a URL with error %v", raw, err)
				}
				var refusedErr *RefusedError
				var urlErr *URLError
				switch {
				case errors.As(err, &refusedErr):
					if _, refused := IsRefusedAddr(refusedErr.Addr, p); !refused {
						t.Fatalf("ValidateURL(%q) refused %s, which the policy allows", raw, refusedErr.Addr)
					}
				case errors.As(err, &urlErr):
				default:
					t.Fatalf("ValidateURL(%q) error %T is neither *URLError nor *RefusedError", raw, err)
				}
				// Messages are fixed sentences, whose words are all shorter than this.
				if len(raw) > 16 && !strings.ContainsAny(raw, " \t\r\n") && strings.Contains(err.Error(), raw) {
					t.Fatalf("error repeats the URL: %q", err)
				}
				continue
			}
			if len(raw) > MaxURLLength {
				t.Fatalf("accepted a URL of %d bytes", len(raw))
			}
			if u.Scheme != "https" && (u.Scheme != "http" || p.RequireHTTPS) {
				t.Fatalf("ValidateURL(%q) accepted scheme %q (RequireHTTPS %v)", raw, u.Scheme, p.RequireHTTPS)
			}
			if u.User != nil || u.Fragment != "" || u.Opaque != "" {
				t.Fatalf("ValidateURL(%q) accepted userinfo, fragment or opaque part", raw)
			}
			host := u.Hostname()
			if host == "" {
				t.Fatalf("ValidateURL(%q) accepted an empty host", raw)
			}
			if ip, err := netip.ParseAddr(host); err == nil {
				if reason, refused := IsRefusedAddr(ip, p); refused {
					t.Fatalf("ValidateURL(%q) accepted %s, %s", raw, ip, reason)
				}
				if _, refused := IsRefusedAddr(ip.Unmap(), p); refused {
					t.Fatalf("ValidateURL(%q) accepted %s whose unmapped form is refused", raw, ip)
				}
				continue
			}
			if ip, ok := legacyIPv4(host); ok {
				t.Fatalf("ValidateURL(%q) accepted host %q, which resolvers may read as %s", raw, host, ip)
			}
		}
	})
}
