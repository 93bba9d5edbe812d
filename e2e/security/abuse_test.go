package security

import (
	"net/http"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

// TestFailedSignInsPauseOnlyThatAccount: five refused sign-ins of one
// account within 15 minutes pause that account (a sixth attempt is refused
// with a clear page even once its group grants a role), while another
// account signs in from the same address at once. Each refusal is audited.
func TestFailedSignInsPauseOnlyThatAccount(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.Options{})
	seedAgencies(c)
	mallory := harness.User{Subject: "e2e-mallory", Email: "mallory@demo-county.example", EmailVerified: true, Name: "Mallory", Groups: []string{"unmapped-group"}}
	for i := 1; i <= auth.DefaultMaxFailures; i++ {
		r := signIn(t, c, harness.NewClient(t, c.URL), mallory)
		if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "No access") {
			t.Fatalf("failed sign-in %d: %d\n%s", i, r.Status, r.Body)
		}
	}
	// The account is paused even with a group that now grants a role.
	mallory.Groups = []string{harness.GroupAdmins}
	r := signIn(t, c, harness.NewClient(t, c.URL), mallory)
	if r.Status != http.StatusTooManyRequests || !strings.Contains(r.Body, "Sign-in paused") || !strings.Contains(r.Body, "paused until") {
		t.Fatalf("sixth sign-in of the paused account: %d\n%s", r.Status, r.Body)
	}
	for _, h := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, "keyconsole_session=") && !strings.Contains(h, "Max-Age=0") {
			t.Fatalf("paused account got a session cookie: %s", h)
		}
	}
	// Another account, same address, same moment: signs in.
	admin := harness.NewClient(t, c.URL)
	if r := signIn(t, c, admin, harness.AdminUser()); r.Status != http.StatusSeeOther {
		t.Fatalf("another account's sign-in: %d\n%s", r.Status, r.Body)
	}
	if r := admin.Get("/a/" + harness.DemoSlug + "/"); r.Status != http.StatusOK {
		t.Fatalf("another account's dashboard: %d", r.Status)
	}
	var noAccess, paused int
	for _, e := range c.AuditEvents("auth.sign_in_refused") {
		switch e.Reason {
		case auth.RefusedNoAccess:
			noAccess++
		case auth.RefusedThrottled:
			paused++
			if e.Outcome != "denied" || !strings.Contains(e.Details, "paused_until") {
				t.Errorf("pause audit record: %+v", e)
			}
		}
	}
	if noAccess != auth.DefaultMaxFailures || paused != 1 {
		t.Fatalf("audit: %d no_access and %d throttled refusals, want %d and 1", noAccess, paused, auth.DefaultMaxFailures)
	}
	verifyAudit(t, c)
}

// TestTokenEndpointFailuresLockOutNobodyElse: an attacker at one address
// hammering a client_id with wrong secrets is slowed down (429 with
// Retry-After), but the same client from another address and another client
// keep getting tokens; a flood of requests without the secret never drains
// the client's own budget.
func TestTokenEndpointFailuresLockOutNobodyElse(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.Options{})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	victim := createAPICredential(t, admin, harness.DemoSlug, "Victim sync", "production")
	bystander := createAPICredential(t, admin, harness.DemoSlug, "Bystander sync", "staging")

	attacker := fromAddr(t, c.URL, "127.0.0.2")
	slowed := false
	for i := 0; i < 60 && !slowed; i++ {
		r := requestToken(t, attacker, victim.ClientID, "wrong-"+strings.Repeat("x", 40))
		switch r.Status {
		case http.StatusUnauthorized, http.StatusBadRequest:
			if r.Error != "invalid_client" {
				t.Fatalf("wrong secret answered %d %q", r.Status, r.Error)
			}
		case http.StatusTooManyRequests:
			if r.RetryAfter == "" {
				t.Fatalf("429 without Retry-After")
			}
			slowed = true
		default:
			t.Fatalf("wrong secret answered %d %+v", r.Status, r)
		}
	}
	if !slowed {
		t.Fatalf("60 wrong secrets from one address were never slowed down")
	}
	// The attacker is refused even with the right secret while slowed down.
	if r := requestToken(t, attacker, victim.ClientID, victim.Secret); r.Status != http.StatusTooManyRequests {
		t.Fatalf("the slowed-down address got %d", r.Status)
	}
	legit := fromAddr(t, c.URL, "127.0.0.3")
	for _, cr := range []apiCred{victim, bystander} {
		if r := requestToken(t, legit, cr.ClientID, cr.Secret); r.Status != http.StatusOK || r.AccessToken == "" {
			t.Fatalf("%s from another address: %d %+v", cr.Name, r.Status, r)
		}
	}
	// Refusals are audited as summaries, not one record per request.
	if n := len(c.AuditEvents(audit.ActionAPICredentialTokenRefused)); n > 5 {
		t.Fatalf("%d audit records for a burst of failed token requests: the audit log is flooded", n)
	}
}
