package security

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

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

// TestSFTPFailuresLockOutNobodyElse: an address offering unknown keys for an
// account is slowed down until even the right key is refused from it, while
// the account's owner from another address, and another account, log in.
func TestSFTPFailuresLockOutNobodyElse(t *testing.T) {
	requireLong(t)
	t.Parallel()
	c := harness.Start(t, harness.Options{SFTP: true})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	prodID, prod := createSFTPAccount(t, admin, c, harness.DemoSlug, "prod")
	stgID, stg := createSFTPAccount(t, admin, c, harness.DemoSlug, "stg")
	key := newSSHSigner(t)
	uploadSSHKey(t, admin, c, harness.DemoSlug, prodID, key.PublicKey(), "prod-owner")
	other := newSSHSigner(t)
	uploadSSHKey(t, admin, c, harness.DemoSlug, stgID, other.PublicKey(), "stg-owner")

	var junk []ssh.Signer
	for i := 0; i < 6; i++ {
		junk = append(junk, newSSHSigner(t))
	}
	for i := 0; i < 8; i++ {
		if r := sftpLogin(c.SFTPAddr, "127.0.0.2", prod, junk...); r.Err == nil {
			t.Fatalf("unknown keys were accepted")
		}
	}
	if r := sftpLogin(c.SFTPAddr, "127.0.0.2", prod, key); r.Err == nil {
		t.Fatalf("the attacking address was never slowed down: after about 48 refused keys it still logs in")
	}
	if r := sftpLogin(c.SFTPAddr, "127.0.0.3", prod, key); !r.Listed {
		t.Fatalf("the account's owner from another address is locked out: %v", r.Err)
	}
	if r := sftpLogin(c.SFTPAddr, "127.0.0.3", stg, other); !r.Listed {
		t.Fatalf("another account is locked out: %v", r.Err)
	}
	// Refusals are summarised in the audit log, never one record per key.
	if n := len(c.AuditEvents("sftp.login_refused")); n > 10 {
		t.Fatalf("%d audit records for about 48 refused keys: the audit log is flooded", n)
	}
}
