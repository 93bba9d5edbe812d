package security

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
	"keyconsole/services/audit"
)

// gatewayClientHeader tells the test gateway which client address to
// report for a request. A real balancer takes it from the connection; here
// every packet stays between 127.0.0.1 and 127.0.0.1 and only the headers
// name other loopback addresses.
const gatewayClientHeader = "X-Test-Gateway-Client"

// startGateway runs a forwarding reverse proxy on 127.0.0.1 in front of the
// console. Like most load balancers it appends the client's address to the
// X-Forwarded-For the client sent, so a client can put anything to the left
// of its own address but never to the right.
func startGateway(t *testing.T, console string) string {
	t.Helper()
	target, err := url.Parse(console)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = target.Host
		client := pr.In.Header.Get(gatewayClientHeader)
		pr.Out.Header.Del(gatewayClientHeader)
		pr.Out.Header.Set("X-Forwarded-For", strings.Join(append(pr.In.Header.Values("X-Forwarded-For"), client), ", "))
	}})
	t.Cleanup(gw.Close)
	return gw.URL
}

// gatewayToken asks for a token through the gateway as the client at addr;
// spoof, when set, is the X-Forwarded-For the client itself sends.
func gatewayToken(t *testing.T, gw, addr, spoof, clientID, secret string) tokenResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, gw+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(gatewayClientHeader, addr)
	if spoof != "" {
		req.Header.Set("X-Forwarded-For", spoof)
	}
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	r := harness.NewClient(t, gw).Do(req)
	out := tokenResponse{Status: r.Status, RetryAfter: r.Header.Get("Retry-After")}
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		t.Fatalf("token endpoint answered %d through the gateway with a body that is not JSON: %q", r.Status, r.Body)
	}
	out.Status = r.Status
	return out
}

// TestFinding05_GatewayLetsLegitimateClientsThroughAnAttack: behind a
// forwarding proxy named in KEYCONSOLE_TRUSTED_PROXIES, one client sending
// bad token requests (wrong secrets for a real client_id, made-up ids, and
// an X-Forwarded-For naming a legitimate client) is slowed down by itself,
// while the legitimate clients behind the same proxy get every token they
// ask for. Refusals are audited, and requests logged, under the client's
// own address, never the proxy's or a spoofed one.
func TestFinding05_GatewayLetsLegitimateClientsThroughAnAttack(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.Options{Env: map[string]string{"KEYCONSOLE_TRUSTED_PROXIES": "127.0.0.1/32"}})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	victim := createAPICredential(t, admin, harness.DemoSlug, "Victim sync", "production")
	bystander := createAPICredential(t, admin, harness.DemoSlug, "Bystander sync", "staging")
	gw := startGateway(t, c.URL)

	const attacker, legitA, legitB = "127.0.0.2", "127.0.0.3", "127.0.0.4"
	slowed, failed := 0, 0
	for i := 0; i < 30; i++ {
		var bad tokenResponse
		switch i % 3 {
		case 0:
			bad = gatewayToken(t, gw, attacker, legitA, victim.ClientID, "ecds_prd_wrong"+strings.Repeat("x", 40))
		case 1:
			bad = gatewayToken(t, gw, attacker, "", "ecd_stg_"+strings.Repeat("q", 20), "ecds_stg_guess")
		default:
			bad = gatewayToken(t, gw, attacker, legitB, bystander.ClientID, "ecds_stg_wrong")
		}
		switch bad.Status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			slowed++
		default:
			t.Fatalf("bad request %d answered %d %+v", i, bad.Status, bad)
		}
		// The legitimate clients take turns, each well within its own budget.
		legit, cred := legitA, victim
		if i%2 == 1 {
			legit, cred = legitB, bystander
		}
		if r := gatewayToken(t, gw, legit, "", cred.ClientID, cred.Secret); r.Status != http.StatusOK || r.AccessToken == "" {
			failed++
			t.Errorf("round %d: %s at %s during the attack: %d %q (retry after %q)", i, cred.Name, legit, r.Status, r.Error, r.RetryAfter)
		}
	}
	if failed > 0 {
		t.Fatalf("%d legitimate token requests behind the gateway failed while one client sent bad ones", failed)
	}
	if slowed == 0 {
		t.Fatalf("the attacking client behind the gateway was never slowed down")
	}

	// Stopping flushes the aggregated refusals into the audit log.
	c.Stop()
	refused := c.AuditEvents(audit.ActionAPICredentialTokenRefused)
	if len(refused) == 0 {
		t.Fatal("no refusal was audited")
	}
	for _, e := range refused {
		if e.SourceIP != attacker {
			t.Errorf("refusal audited from %q, want the attacking client %s: %s %s", e.SourceIP, attacker, e.Reason, e.Details)
		}
	}
	logged := map[string]int{}
	for _, line := range strings.Split(c.Logs(), "\n") {
		var rec struct {
			Msg      string `json:"msg"`
			Path     string `json:"path"`
			RemoteIP string `json:"remote_ip"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && rec.Path == "/oauth/token" {
			logged[rec.RemoteIP]++
		}
	}
	if logged[attacker] != 30 || logged[legitA] != 15 || logged[legitB] != 15 || len(logged) != 3 {
		t.Fatalf("token requests logged by remote_ip: %v, want 30 from %s and 15 each from %s and %s", logged, attacker, legitA, legitB)
	}
}
