package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/guard"
)

var testProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}

// TestFinding05_ClientAddressIsBelievedOnlyFromTrustedProxies: the client
// address is the connection's peer unless that peer is a trusted proxy;
// then it is the right-most address of the configured header that is not a
// trusted proxy, and whatever a client wrote to its left is ignored.
func TestFinding05_ClientAddressIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	type hdr = map[string][]string
	tests := []struct {
		name    string
		trusted []netip.Prefix
		header  string
		peer    string
		headers hdr
		want    string
	}{
		{"no trusted proxies: headers ignored", nil, "", "192.0.2.10:5000", hdr{"X-Forwarded-For": {"198.51.100.20"}, "Forwarded": {"for=198.51.100.20"}}, "192.0.2.10"},
		{"no trusted proxies: mapped peer unmapped", nil, "", "[::ffff:127.0.0.1]:80", nil, "127.0.0.1"},
		{"untrusted peer: X-Forwarded-For ignored", testProxies, "", "192.0.2.10:5000", hdr{"X-Forwarded-For": {"198.51.100.20"}}, "192.0.2.10"},
		{"untrusted peer: Forwarded ignored", testProxies, HeaderForwarded, "192.0.2.10:5000", hdr{"Forwarded": {"for=198.51.100.20"}}, "192.0.2.10"},
		{"trusted peer without a header", testProxies, "", "10.0.0.1:443", nil, "10.0.0.1"},
		{"trusted peer names the client", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"198.51.100.20"}}, "198.51.100.20"},
		{"a client's own entries are ignored", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"198.51.100.20, 192.0.2.10"}}, "192.0.2.10"},
		{"two proxies", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"192.0.2.10, 10.0.0.7"}}, "192.0.2.10"},
		{"several header lines in order", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"198.51.100.20", "192.0.2.10"}}, "192.0.2.10"},
		{"only trusted entries", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"10.0.0.5, 10.0.0.7"}}, "10.0.0.1"},
		{"garbage from the proxy", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"198.51.100.20, not-an-address"}}, "10.0.0.1"},
		{"garbage left of the client", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"not-an-address, 192.0.2.10"}}, "192.0.2.10"},
		{"mapped client unmapped", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"::ffff:192.0.2.10"}}, "192.0.2.10"},
		{"IPv6 client", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"2001:db8::7"}}, "2001:db8::7"},
		{"IPv6 client with a port", testProxies, "", "10.0.0.1:443", hdr{"X-Forwarded-For": {"[2001:db8::7]:4711"}}, "2001:db8::7"},
		{"IPv6 proxy", testProxies, "", "[fd00::1]:443", hdr{"X-Forwarded-For": {"192.0.2.10"}}, "192.0.2.10"},
		{"mapped proxy address", testProxies, "", "[::ffff:10.0.0.1]:443", hdr{"X-Forwarded-For": {"192.0.2.10"}}, "192.0.2.10"},
		{"X-Forwarded-For proxy: Forwarded ignored", testProxies, "", "10.0.0.1:443", hdr{"Forwarded": {"for=198.51.100.20"}}, "10.0.0.1"},
		{"Forwarded", testProxies, HeaderForwarded, "10.0.0.1:443", hdr{"Forwarded": {"for=192.0.2.60;proto=https;by=10.0.0.1"}}, "192.0.2.60"},
		{"Forwarded IPv6 with a port", testProxies, HeaderForwarded, "10.0.0.1:443", hdr{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"Forwarded: a client's own element ignored", testProxies, HeaderForwarded, "10.0.0.1:443", hdr{"Forwarded": {"for=198.51.100.20, For=192.0.2.43"}}, "192.0.2.43"},
		{"Forwarded lines in order", testProxies, HeaderForwarded, "10.0.0.1:443", hdr{"Forwarded": {"for=198.51.100.20", "for=192.0.2.43;proto=https"}}, "192.0.2.43"},
		{"Forwarded unknown", testProxies, HeaderForwarded, "10.0.0.1:443", hdr{"Forwarded": {"for=198.51.100.20, for=unknown"}}, "10.0.0.1"},
		{"Forwarded obfuscated", testProxies, HeaderForwarded, "10.0.0.1:443", hdr{"Forwarded": {"for=_hidden"}}, "10.0.0.1"},
		{"Forwarded proxy: X-Forwarded-For ignored", testProxies, HeaderForwarded, "10.0.0.1:443", hdr{"X-Forwarded-For": {"198.51.100.20"}}, "10.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extract, err := clientIPExtractor(tc.trusted, tc.header)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for k, vs := range tc.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := extract(r); got != tc.want {
				t.Fatalf("client address %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := clientIPExtractor(testProxies, "X-Real-IP"); err == nil {
		t.Fatal("an unknown forwarding header was accepted")
	}
}

// acServeVia runs one token request through the real stack as if it came
// from peer with the given forwarding header, without a network hop.
func acServeVia(st acStack, peer, header, value, clientID, secret string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	if header != "" {
		req.Header.Set(header, value)
	}
	req.RemoteAddr = peer + ":40000"
	rec := httptest.NewRecorder()
	st.web.Echo.ServeHTTP(rec, req)
	return rec
}

// TestFinding05_TokenLimitsAuditAndLogsFollowTheForwardedClient: behind a
// trusted proxy, an attacker's failures slow down the attacker alone (even
// when it names the legitimate client in its own X-Forwarded-For), a
// header from an untrusted peer changes nothing, and refusals are audited
// and requests logged under each client's own address.
func TestFinding05_TokenLimitsAuditAndLogsFollowTheForwardedClient(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := t.Context()
		st := newACStack(t, db, acOptions{TrustedProxies: testProxies, Limits: guard.LimiterConfig{
			ClientRate: rate.Inf, AddrRate: rate.Inf, PairFailureThreshold: 5, AddrFailureThreshold: 5, BaseDelay: 30 * time.Second,
		}})
		cred, secret := st.create(t, "Case sync", "staging")
		const proxy, legit, attacker, outsider = "10.0.0.1", "198.51.100.20", "192.0.2.10", "203.0.113.30"
		xff := HeaderXForwardedFor

		for i := 0; i < 5; i++ {
			if r := acServeVia(st, proxy, xff, legit+", "+attacker, cred.ClientID, "ecds_stg_guess"); r.Code != http.StatusUnauthorized {
				t.Fatalf("attacker's guess %d: %d", i, r.Code)
			}
			if r := acServeVia(st, proxy, xff, legit, cred.ClientID, secret); r.Code != http.StatusOK {
				t.Fatalf("legitimate request %d behind the proxy during the attack: %d %s", i, r.Code, r.Body)
			}
		}
		if r := acServeVia(st, proxy, xff, legit+", "+attacker, cred.ClientID, secret); r.Code != http.StatusTooManyRequests {
			t.Fatalf("the attacker behind the proxy was not slowed down: %d", r.Code)
		}
		// A peer that is not a trusted proxy cannot borrow the legitimate
		// client's address, nor lend it its failures.
		for i := 0; i < 5; i++ {
			if r := acServeVia(st, outsider, xff, legit, cred.ClientID, "ecds_stg_guess"); r.Code != http.StatusUnauthorized {
				t.Fatalf("outsider's guess %d: %d", i, r.Code)
			}
		}
		if r := acServeVia(st, outsider, xff, legit, cred.ClientID, secret); r.Code != http.StatusTooManyRequests {
			t.Fatalf("the outsider was not slowed down under its own address: %d", r.Code)
		}
		if r := acServeVia(st, proxy, xff, legit, cred.ClientID, secret); r.Code != http.StatusOK {
			t.Fatalf("legitimate request after the attacks: %d %s", r.Code, r.Body)
		}

		st.failures.Flush(ctx)
		evs, err := st.audits.Page(ctx, models.AuditFilter{AgencyID: st.demo.ID, Action: audit.ActionAPICredentialTokenRefused}, 50)
		if err != nil {
			t.Fatal(err)
		}
		var sources []string
		for _, e := range evs {
			if !slices.Contains(sources, e.SourceIP) {
				sources = append(sources, e.SourceIP)
			}
		}
		slices.Sort(sources)
		if want := []string{attacker, outsider}; !slices.Equal(sources, want) {
			t.Fatalf("refusals audited from %v, want %v", sources, want)
		}

		logged := map[string]int{}
		for _, line := range strings.Split(st.log.String(), "\n") {
			var rec struct {
				Msg      string `json:"msg"`
				Path     string `json:"path"`
				RemoteIP string `json:"remote_ip"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && rec.Path == "/oauth/token" {
				logged[rec.RemoteIP]++
			}
		}
		if logged[attacker] != 6 || logged[legit] != 6 || logged[outsider] != 6 || len(logged) != 3 {
			t.Fatalf("token requests logged by remote_ip: %v", logged)
		}
	})
}
