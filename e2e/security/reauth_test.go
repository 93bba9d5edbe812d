package security

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"keyconsole/e2e/harness"
)

// TestFinding04_NewSecretsAndWebhookURLNeedRecentSignIn, through the real
// binary and the mock provider: creating an API credential or a webhook
// endpoint (each shows a new secret) and changing an endpoint's URL need a
// sign-in within the last 10 minutes, like regenerating; the round trip
// through the provider then lets the action through. Re-authentication
// refuses an ID token without auth_time (max_age was sent) and one whose
// auth_time is in the future beyond the clock skew, and keeps the session
// as it was.
func TestFinding04_NewSecretsAndWebhookURLNeedRecentSignIn(t *testing.T) {
	receiver := "http://127.0.0.1:9/hook"
	c := harness.Start(t, harness.Options{Env: map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}})
	c.SeedDemo()
	ada := harness.AdminUser()
	cl := signedIn(t, c, ada)
	base := "/a/" + harness.DemoSlug
	count := func(table string) string {
		t.Helper()
		var n string
		if err := c.DB().Gorm.Raw("SELECT CAST(COUNT(*) AS TEXT) FROM " + table).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	isReauth := func(what string, r harness.Response) {
		t.Helper()
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/auth/reauth?return_to=") {
			t.Fatalf("%s with a sign-in 11 minutes old: %d %q, want the recent-sign-in page", what, r.Status, r.Location())
		}
	}

	// With a fresh sign-in: an endpoint to change later.
	newHook := cl.Get(base + "/webhooks/new")
	if newHook.Status != http.StatusOK {
		t.Fatalf("GET webhooks/new: %d", newHook.Status)
	}
	hookForm := func(csrf, name, url string) map[string]string {
		return map[string]string{"_csrf": csrf, "name": name, "environment": "staging", "url": url, "events": "court_date.scheduled", "secret_source": "generate"}
	}
	post := func(path string, m map[string]string) harness.Response {
		t.Helper()
		var kv []string
		for k, v := range m {
			kv = append(kv, k, v)
		}
		return cl.PostForm(path, form(kv...))
	}
	if r := post(base+"/webhooks", hookForm(csrfOf(newHook.Body), "Case system", receiver)); r.Status != http.StatusOK {
		t.Fatalf("create webhook with a fresh sign-in: %d", r.Status)
	}
	hook := base + "/webhooks/" + (&fixtures{c: c}).scalar(t, "SELECT id FROM webhook_endpoints WHERE name = ?", "Case system")
	csrf := csrfToken(t, cl)
	creds, hooks := count("api_credentials"), count("webhook_endpoints")

	ageSignIn(t, c, ada)
	isReauth("the new-credential page", cl.Get(base+"/api-credentials/new"))
	isReauth("creating a credential", cl.PostForm(base+"/api-credentials", form("_csrf", csrf, "name", "Case sync", "environment", "staging")))
	isReauth("the new-endpoint page", cl.Get(base+"/webhooks/new"))
	isReauth("creating an endpoint", post(base+"/webhooks", hookForm(csrf, "Second system", receiver)))
	isReauth("changing an endpoint's URL", post(hook, hookForm(csrf, "Case system", "http://127.0.0.1:10/elsewhere")))
	if n, m := count("api_credentials"), count("webhook_endpoints"); n != creds || m != hooks {
		t.Fatalf("created without a recent sign-in: credentials %s -> %s, endpoints %s -> %s", creds, n, hooks, m)
	}
	if u := (&fixtures{c: c}).scalar(t, "SELECT url FROM webhook_endpoints WHERE name = ?", "Case system"); u != receiver {
		t.Fatalf("URL changed without a recent sign-in: %s", u)
	}
	// Renaming without touching the URL needs no fresh sign-in.
	if r := post(hook, hookForm(csrf, "Case system", receiver)); r.Status != http.StatusSeeOther || strings.HasPrefix(r.Location(), "/auth/reauth") {
		t.Fatalf("saving an endpoint without a URL change: %d %q", r.Status, r.Location())
	}

	// Re-authentication whose token has no auth_time, or one 10 minutes
	// ahead: refused, and the session stays stale.
	for _, u := range []harness.User{
		func() harness.User { u := ada; u.NoAuthTime = true; return u }(),
		func() harness.User { u := ada; u.AuthTimeShift = 10 * time.Minute; return u }(),
	} {
		if r := reauth(t, c, cl, u, base+"/api-credentials/new"); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "Sign-in refused") {
			t.Fatalf("re-authentication (no auth_time %v, shift %s): %d %q", u.NoAuthTime, u.AuthTimeShift, r.Status, r.Location())
		}
		isReauth("after a refused re-authentication", cl.Get(base+"/api-credentials/new"))
	}

	// A real round trip, auth_time slightly ahead (clock skew): accepted,
	// never stored in the future, and back to the page of the action.
	skewed := ada
	skewed.AuthTimeShift = 20 * time.Second
	if r := reauth(t, c, cl, skewed, base+"/api-credentials/new"); r.Status != http.StatusSeeOther || r.Location() != base+"/api-credentials/new" {
		t.Fatalf("re-authentication: %d %q", r.Status, r.Location())
	}
	var future string
	if err := c.DB().Gorm.Raw("SELECT CAST(COUNT(*) AS TEXT) FROM sessions WHERE revoked_at IS NULL AND auth_time > ?", time.Now().UTC().Add(time.Second)).Scan(&future).Error; err != nil {
		t.Fatal(err)
	}
	if future != "0" {
		t.Fatalf("%s sessions with an auth_time in the future", future)
	}
	page := cl.Get(base + "/api-credentials/new")
	if page.Status != http.StatusOK {
		t.Fatalf("new-credential page after re-authentication: %d", page.Status)
	}
	if r := cl.PostForm(base+"/api-credentials", form("_csrf", csrfOf(page.Body), "nonce", inputValue(page.Body, "nonce"), "name", "Case sync", "environment", "staging")); r.Status != http.StatusOK || !strings.Contains(r.Body, "Case sync") {
		t.Fatalf("create credential after re-authentication: %d", r.Status)
	}
	if r := post(hook, hookForm(csrf, "Case system", "http://127.0.0.1:10/elsewhere")); r.Status != http.StatusSeeOther || strings.HasPrefix(r.Location(), "/auth/reauth") {
		t.Fatalf("URL change after re-authentication: %d %q", r.Status, r.Location())
	}
}
