package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestFinding05_ConfigCheckRefusesMalformedTrustedProxies: `keyconsole
// config check` lists the trusted proxies it will believe, and refuses a
// malformed or all-trusting KEYCONSOLE_TRUSTED_PROXIES (or an unknown
// KEYCONSOLE_TRUSTED_PROXY_HEADER) with a message naming the variable and
// the value at fault.
func TestFinding05_ConfigCheckRefusesMalformedTrustedProxies(t *testing.T) {
	check := func(t *testing.T, vars map[string]string) (int, string, string) {
		t.Helper()
		env := prodEnv()
		for k, v := range vars {
			env[k] = v
		}
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"config", "check"}, envOf(env), &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, tc := range []struct {
		value, header, want string
	}{
		{"10.0.0.0/8, fd00:1::/64", "", "proxies:   10.0.0.0/8, fd00:1::/64 (X-Forwarded-For)"},
		{"192.0.2.7,2001:db8::1", "forwarded", "proxies:   192.0.2.7/32, 2001:db8::1/128 (Forwarded)"},
		{"10.1.2.3/16", "X-Forwarded-For", "proxies:   10.1.0.0/16 (X-Forwarded-For)"},
		{"::ffff:10.0.0.0/104", "", "proxies:   10.0.0.0/8 (X-Forwarded-For)"},
	} {
		t.Run("accepts "+tc.value, func(t *testing.T) {
			vars := map[string]string{"KEYCONSOLE_TRUSTED_PROXIES": tc.value}
			if tc.header != "" {
				vars["KEYCONSOLE_TRUSTED_PROXY_HEADER"] = tc.header
			}
			code, out, errb := check(t, vars)
			if code != 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %q in\n%s%s", code, tc.want, out, errb)
			}
		})
	}
	if code, out, _ := check(t, nil); code != 0 || !strings.Contains(out, "proxies:   none") {
		t.Fatalf("without trusted proxies: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		name, variable, value, want string
	}{
		{"prefix too long", "KEYCONSOLE_TRUSTED_PROXIES", "10.0.0.0/33", `KEYCONSOLE_TRUSTED_PROXIES: "10.0.0.0/33" is not a CIDR prefix`},
		{"truncated address", "KEYCONSOLE_TRUSTED_PROXIES", "10.0.0.0/8,10.0.0", `KEYCONSOLE_TRUSTED_PROXIES: "10.0.0" is not a CIDR prefix`},
		{"host name", "KEYCONSOLE_TRUSTED_PROXIES", "lb.internal", `KEYCONSOLE_TRUSTED_PROXIES: "lb.internal" is not a CIDR prefix`},
		{"zone", "KEYCONSOLE_TRUSTED_PROXIES", "fe80::1%eth0", `KEYCONSOLE_TRUSTED_PROXIES: "fe80::1%eth0" is not a CIDR prefix`},
		{"IPv6 too long", "KEYCONSOLE_TRUSTED_PROXIES", "fd00::/129", `KEYCONSOLE_TRUSTED_PROXIES: "fd00::/129" is not a CIDR prefix`},
		{"every IPv4 address", "KEYCONSOLE_TRUSTED_PROXIES", "0.0.0.0/0", "KEYCONSOLE_TRUSTED_PROXIES: 0.0.0.0/0 trusts every address"},
		{"every IPv6 address", "KEYCONSOLE_TRUSTED_PROXIES", "10.0.0.0/8,::/0", "KEYCONSOLE_TRUSTED_PROXIES: ::/0 trusts every address"},
		{"unknown header", "KEYCONSOLE_TRUSTED_PROXY_HEADER", "X-Real-IP", `KEYCONSOLE_TRUSTED_PROXY_HEADER: must be X-Forwarded-For or Forwarded, not "X-Real-IP"`},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			code, out, errb := check(t, map[string]string{tc.variable: tc.value})
			if code == 0 || !strings.Contains(errb, tc.want) {
				t.Fatalf("exit %d, want %q in stderr\n%s%s", code, tc.want, out, errb)
			}
		})
	}
}
