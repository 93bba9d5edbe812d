package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

const hygienePath = "/a/" + harness.DemoSlug + "/hygiene"

// hygieneCreateAPICredential creates a staging credential through the console's
// pages and returns its client_id and secret as shown once.
func hygieneCreateAPICredential(t *testing.T, b *harness.Browser, name string) (string, string) {
	t.Helper()
	if st := b.Open("/a/" + harness.DemoSlug + "/api-credentials/new"); st != http.StatusOK {
		t.Fatalf("new credential page: %d", st)
	}
	b.Fill("#name", name)
	b.Click("#create-credential")
	id := strings.TrimSpace(b.Text("#client-id"))
	secret := strings.TrimSpace(b.TextContent("#client-secret"))
	if id == "" || secret == "" {
		t.Fatalf("no client_id/secret shown after creating %s (page %s)", name, b.Location())
	}
	return id, secret
}

// hygieneBackdate moves a credential's creation into the past, as if it had been
// created that long ago.
func hygieneBackdate(t *testing.T, c *harness.Console, table, column, where string, arg any, age time.Duration) {
	t.Helper()
	at := time.Now().UTC().Add(-age).Truncate(time.Microsecond)
	if err := c.DB().Gorm.Exec("UPDATE "+table+" SET "+column+" = ? WHERE "+where, at, arg).Error; err != nil {
		t.Fatalf("backdate %s: %v", table, err)
	}
}

func hygieneScreenshot(t *testing.T, b *harness.Browser, name string) {
	t.Helper()
	dir := os.Getenv("KEYCONSOLE_E2E_SCREENSHOTS")
	if dir == "" {
		return
	}
	b.Screenshot(filepath.Join(dir, name+".png"))
}

func TestHygieneDashboardShowsOverdueCredentialAndRotatesIt(t *testing.T) {
	t.Parallel()
	c := demoConsole(t, harness.Options{})
	b := c.Browser()
	signInAdmin(t, c, b)

	clientID, oldSecret := hygieneCreateAPICredential(t, b, "Case sync")
	hygieneBackdate(t, c, "api_credentials", "created_at", "client_id = ?", clientID, 120*24*time.Hour)

	// The dashboard counts it and links to the review.
	if st := b.Open(dashboardPath); st != http.StatusOK {
		t.Fatalf("dashboard: %d", st)
	}
	tiles := b.Text("ul.usa-card-group")
	if !strings.Contains(tiles, "Overdue credentials") || !strings.Contains(tiles, "1") {
		t.Fatalf("dashboard tiles do not show one overdue credential: %q", tiles)
	}
	if !b.Has(`a[href="` + hygienePath + `#overdue"]`) {
		t.Fatalf("dashboard has no link to the overdue list")
	}

	if st := b.Open(hygienePath); st != http.StatusOK {
		t.Fatalf("hygiene page: %d", st)
	}
	if got := strings.TrimSpace(b.Text("#count-overdue")); got != "1" {
		t.Fatalf("overdue count = %q, want 1", got)
	}
	row := strings.ToLower(b.TextContent("#overdue-table tbody tr"))
	for _, want := range []string{"case sync", clientID, "api credentials", "120 days", "overdue by 30 days", "never used"} {
		if !strings.Contains(row, want) {
			t.Errorf("overdue row %q does not contain %q", row, want)
		}
	}
	// The age chart is an accessible image with a text equivalent.
	if !b.Has(`svg[role="img"][aria-labelledby] > title`) || !b.Has(`svg[role="img"] > desc`) {
		t.Errorf("age chart lacks role=img, title or desc")
	}
	if desc := b.TextContent(`svg[role="img"] > desc`); !strings.Contains(desc, "API credentials: 1 active, oldest 120 days") {
		t.Errorf("chart description = %q", desc)
	}
	if table := b.Text("#chart-table"); !strings.Contains(table, "API credentials") || !strings.Contains(table, "120") {
		t.Errorf("chart table = %q", table)
	}
	hygieneScreenshot(t, b, "hygiene-overdue")

	// Rotate from the row: the feature's regenerate page, then a new secret.
	b.Click("#overdue-table a.kc-rotate")
	if p := pathOf(t, b.Location()); !strings.HasSuffix(p, "/regenerate") {
		t.Fatalf("rotate action led to %s, want the regenerate page", p)
	}
	b.Fill("#confirm_name", "Case sync")
	if st := b.Click("#confirm-regenerate"); st != http.StatusOK {
		t.Fatalf("regenerate answered %d", st)
	}
	newSecret := strings.TrimSpace(b.TextContent("#client-secret"))
	if newSecret == "" || newSecret == oldSecret {
		t.Fatalf("regeneration showed no new secret")
	}

	if st := b.Open(hygienePath); st != http.StatusOK {
		t.Fatalf("hygiene page: %d", st)
	}
	if got := strings.TrimSpace(b.Text("#count-overdue")); got != "0" {
		t.Fatalf("overdue count after rotation = %q, want 0", got)
	}
	if !b.Has("#overdue-empty") {
		t.Errorf("overdue list not empty after rotation")
	}
	hygieneScreenshot(t, b, "hygiene-after-rotation")

	// Bulk revocation from the review: a wrong typed confirmation changes
	// nothing; the agency's slug revokes, linked in one operation.
	hygieneTick(t, b, "never-used-sel-"+hygieneKey(t, c, clientID))
	if st := b.Click("#bulk-revoke"); st != http.StatusOK {
		t.Fatalf("bulk revoke confirmation: %d", st)
	}
	if got := b.Text("#revoke-table"); !strings.Contains(got, "Case sync") {
		t.Fatalf("confirmation lists %q", got)
	}
	b.Fill("#confirm", "demo")
	if st := b.Click("#revoke-submit"); st != http.StatusUnprocessableEntity {
		t.Fatalf("wrong confirmation answered %d, want 422", st)
	}
	if !hygieneTokenIssued(t, c, clientID, newSecret) {
		t.Fatal("a refused confirmation revoked the credential")
	}
	b.Fill("#confirm", harness.DemoSlug)
	if st := b.Click("#revoke-submit"); st != http.StatusOK {
		t.Fatalf("bulk revoke answered %d", st)
	}
	if !strings.Contains(b.Text("#operation-lines"), "Revoke Case sync (API credentials): success") {
		t.Errorf("bulk revoke summary: %q", b.Text("#operation-lines"))
	}
	if hygieneTokenIssued(t, c, clientID, newSecret) {
		t.Error("the revoked credential still gets tokens")
	}
	if len(c.AuditEvents("hygiene.bulk_revoke_start")) != 1 || len(c.AuditEvents("hygiene.revoke")) != 1 || len(c.AuditEvents("hygiene.bulk_revoke_end")) != 1 {
		t.Errorf("bulk revocation records missing")
	}

	// The policy page, IdP tracker and a runbook render for the admin.
	for _, pg := range []struct{ path, heading, shot string }{
		{"/a/" + harness.DemoSlug + "/policy", "#policy-heading", "policy"},
		{"/a/" + harness.DemoSlug + "/policy/idp-secrets", "#idp-heading", "idp-secrets"},
		{"/a/" + harness.DemoSlug + "/runbooks/ssh_key", "#runbook-heading", "runbook-ssh"},
	} {
		if st := b.Open(pg.path); st != http.StatusOK || b.Text(pg.heading) == "" {
			t.Errorf("%s: %d", pg.path, st)
		}
		hygieneScreenshot(t, b, pg.shot)
	}

	var regenerated int
	for _, e := range c.AuditEvents("api_credential.regenerate") {
		if e.TargetID == clientID && e.ActorName == "Ada Admin" && e.Outcome == "success" {
			regenerated++
		}
	}
	if regenerated != 1 {
		t.Errorf("api_credential.regenerate records for %s = %d, want 1", clientID, regenerated)
	}
}

// hygieneSession signs u in with the browser, hands the session to a new
// client and clears the browser's cookies for the next user. The session
// stays open on the server.
func hygieneSession(t *testing.T, c *harness.Console, b *harness.Browser, u harness.User) *harness.Client {
	t.Helper()
	if st := b.SignIn(u); st != http.StatusOK {
		t.Fatalf("%s sign-in landed with %d on %s", u.Name, st, b.Location())
	}
	cl := harness.NewClient(t, c.URL)
	cl.SetCookies(b.Cookies())
	if _, err := chromedp.Call(b.Context(), network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatalf("clear cookies: %v", err)
	}
	return cl
}

var hygieneCSRF = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// hygieneToken reads the CSRF token of a page the client can open.
func hygieneToken(t *testing.T, cl *harness.Client, path string) string {
	t.Helper()
	r := cl.Get(path)
	m := hygieneCSRF.FindStringSubmatch(r.Body)
	if r.Status != http.StatusOK || m == nil {
		t.Fatalf("GET %s = %d, no CSRF field", path, r.Status)
	}
	return html.UnescapeString(m[1])
}

func hygieneDetails(t *testing.T, e models.AuditEvent) map[string]string {
	t.Helper()
	d := map[string]string{}
	if err := json.Unmarshal([]byte(e.Details), &d); err != nil {
		t.Fatalf("details of %s: %v", e.Action, err)
	}
	return d
}

func policyRows(t *testing.T, c *harness.Console) int64 {
	t.Helper()
	var n int64
	if err := c.DB().Gorm.Model(&models.AgencyPolicy{}).Count(&n).Error; err != nil {
		t.Fatalf("count policies: %v", err)
	}
	return n
}

func TestPolicyPagesAccessAndChanges(t *testing.T) {
	t.Parallel()
	for _, d := range browserDialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			c := demoConsole(t, harness.Options{Dialect: d})
			c.MustCLI("agency", "create", "other-county", "--name", "Other County")
			c.MustCLI("agency", "map", "other-county", "--provider", harness.ProviderID, "--group", "other-admins", "--role", "admin")
			b := c.Browser()
			admin := hygieneSession(t, c, b, harness.AdminUser())
			reviewer := hygieneSession(t, c, b, harness.ReviewerUser())
			outsider := hygieneSession(t, c, b, harness.User{Subject: "e2e-other", Email: "olga@other-county.example", EmailVerified: true, Name: "Olga Other", Groups: []string{"other-admins"}})
			base := "/a/" + harness.DemoSlug

			// Reviewers read everything and change nothing.
			for _, p := range []string{"/policy", "/hygiene", "/policy/idp-secrets", "/runbooks", "/runbooks/api_credential", "/runbooks/ssh_key", "/runbooks/webhook_secret", "/runbooks/idp_secret"} {
				r := reviewer.Get(base + p)
				if r.Status != http.StatusOK {
					t.Errorf("reviewer GET %s = %d, want 200", p, r.Status)
				}
				if strings.Contains(r.Body, `id="policy-form"`) || strings.Contains(r.Body, `id="bulk-form"`) || strings.Contains(r.Body, `name="expires_at"`) {
					t.Errorf("reviewer sees a form on %s", p)
				}
			}
			for _, p := range []string{"/personnel", "/hygiene/revoke", "/personnel/1"} {
				if r := reviewer.Get(base + p); r.Status != http.StatusNotFound {
					t.Errorf("reviewer GET %s = %d, want 404", p, r.Status)
				}
			}
			token := hygieneToken(t, reviewer, base+"/policy")
			for _, f := range []struct {
				path string
				form url.Values
			}{
				{"/policy", url.Values{"preset": {"cjis"}}},
				{"/policy", url.Values{"api_credential": {"365"}, "ssh_key": {"365"}, "webhook_secret": {"365"}, "due_soon_days": {"14"}, "unused_days": {"90"}, "min_rsa_bits": {"2048"}, "idp_warning_days": {"30"}}},
				{"/policy/idp-secrets/" + harness.ProviderID, url.Values{"expires_at": {"2027-01-01"}}},
				{"/hygiene/revoke", url.Values{"item": {"api_credential:1"}, "confirm": {harness.DemoSlug}}},
			} {
				f.form.Set("_csrf", token)
				if r := reviewer.PostForm(base+f.path, f.form); r.Status != http.StatusNotFound {
					t.Errorf("reviewer POST %s = %d, want 404", f.path, r.Status)
				}
			}
			if n := policyRows(t, c); n != 0 {
				t.Fatalf("a reviewer's POST stored a policy (%d rows)", n)
			}

			// Another agency's admin sees nothing of Demo County.
			missing := outsider.Get("/a/no-such-county/policy")
			for _, p := range []string{"/policy", "/hygiene", "/policy/idp-secrets", "/runbooks/api_credential", "/personnel"} {
				if r := outsider.Get(base + p); r.Status != http.StatusNotFound || r.Body != strings.ReplaceAll(missing.Body, missing.Header.Get("X-Request-Id"), r.Header.Get("X-Request-Id")) {
					t.Errorf("outsider GET %s = %d, or differs from a missing agency", p, r.Status)
				}
			}
			otherToken := hygieneToken(t, outsider, "/a/other-county/policy")
			if r := outsider.PostForm(base+"/policy", url.Values{"_csrf": {otherToken}, "preset": {"cis"}}); r.Status != http.StatusNotFound {
				t.Errorf("outsider POST = %d, want 404", r.Status)
			}
			if n := policyRows(t, c); n != 0 {
				t.Fatalf("an outsider's POST stored a policy (%d rows)", n)
			}

			// An admin's refused values: 422, each field's message, nothing changed.
			adminToken := hygieneToken(t, admin, base+"/policy")
			bad := url.Values{"_csrf": {adminToken}, "api_credential": {"3"}, "ssh_key": {"365"}, "webhook_secret": {"180"},
				"due_soon_days": {"14"}, "unused_days": {"lots"}, "min_rsa_bits": {"1024"}, "idp_warning_days": {"30"}}
			r := admin.PostForm(base+"/policy", bad)
			if r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("refused policy answered %d, want 422", r.Status)
			}
			for _, want := range []string{"Maximum age of API credentials must be between 7 and 1095 days.", "Unused after must be a whole number.", "The minimum RSA key size must be 2048, 3072 or 4096 bits."} {
				if !strings.Contains(html.UnescapeString(r.Body), want) {
					t.Errorf("422 page lacks %q", want)
				}
			}
			if n := policyRows(t, c); n != 0 || len(c.AuditEvents("policy.update")) != 0 {
				t.Fatalf("a refused policy changed something: %d rows", n)
			}

			// The CJIS preset: stored, audited with before and after.
			r = admin.PostForm(base+"/policy", url.Values{"_csrf": {adminToken}, "preset": {"cjis"}})
			if r.Status != http.StatusSeeOther {
				t.Fatalf("preset answered %d", r.Status)
			}
			var row models.AgencyPolicy
			if err := c.DB().Gorm.Take(&row).Error; err != nil {
				t.Fatal(err)
			}
			if row.APICredentialMaxAgeDays != 365 || row.SSHKeyMaxAgeDays != 365 || row.WebhookSecretMaxAgeDays != 365 || row.AgencyID != agencyID(t, c, harness.DemoSlug) {
				t.Fatalf("stored policy %+v", row)
			}
			evs := c.AuditEvents("policy.update")
			if len(evs) != 1 || evs[0].ActorName != "Ada Admin" {
				t.Fatalf("policy.update records: %+v", evs)
			}
			dd := hygieneDetails(t, evs[0])
			if dd["before.api_credential"] != "90" || dd["after.api_credential"] != "365" || dd["before.webhook_secret"] != "180" || dd["preset"] != "cjis" {
				t.Errorf("policy.update details = %v", dd)
			}
			if body := reviewer.Get(base + "/policy").Body; !strings.Contains(body, "CJIS: annual rotation") || !strings.Contains(body, `data-field="api_credential">365 days`) {
				t.Errorf("reviewer does not see the new policy")
			}
			if body := reviewer.Get(base + "/runbooks/api_credential").Body; !strings.Contains(body, `id="runbook-max-age">365 days`) || !strings.Contains(body, `id="runbook-warn-from">351`) {
				t.Errorf("runbook does not carry the policy values")
			}

			// An IdP secret expiring within the warning window warns on the
			// hygiene page and the dashboard.
			soon := time.Now().UTC().AddDate(0, 0, 10).Format(time.DateOnly)
			r = admin.PostForm(base+"/policy/idp-secrets/"+harness.ProviderID, url.Values{"_csrf": {adminToken}, "expires_at": {soon}, "note": {"console app"}})
			if r.Status != http.StatusSeeOther {
				t.Fatalf("record IdP expiry answered %d", r.Status)
			}
			if body := reviewer.Get(base + "/hygiene").Body; !strings.Contains(body, "The Mock IdP client secret expires in") {
				t.Errorf("hygiene page has no IdP banner")
			}
			if body := reviewer.Get(base + "/").Body; !strings.Contains(body, "IdP client secret") || !strings.Contains(body, "Action needed") {
				t.Errorf("dashboard has no IdP warning tile")
			}
			if evs := c.AuditEvents("idp_secret.record"); len(evs) != 1 || hygieneDetails(t, evs[0])["after.expires_at"] != soon {
				t.Errorf("idp_secret.record records: %+v", evs)
			}
			if r := admin.PostForm(base+"/policy/idp-secrets/"+harness.ProviderID, url.Values{"_csrf": {adminToken}, "expires_at": {"next tuesday"}}); r.Status != http.StatusUnprocessableEntity {
				t.Errorf("bad date answered %d, want 422", r.Status)
			}
			if r := admin.PostForm(base+"/policy/idp-secrets/no-such-provider", url.Values{"_csrf": {adminToken}, "expires_at": {soon}}); r.Status != http.StatusNotFound {
				t.Errorf("unknown provider answered %d, want 404", r.Status)
			}
		})
	}
}

// hygieneSFTP runs one OpenSSH sftp batch ("pwd") with a private key and
// returns its exit code: 0 logged in, 255 refused.
func hygieneSFTP(t *testing.T, c *harness.Console, keyFile, account string) int {
	t.Helper()
	host, port, err := net.SplitHostPort(c.SFTPAddr)
	if err != nil {
		t.Fatalf("SFTP address %q: %v", c.SFTPAddr, err)
	}
	dir := filepath.Dir(keyFile)
	batch := filepath.Join(dir, "batch.txt")
	if err := os.WriteFile(batch, []byte("pwd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sftp", "-b", batch, "-P", port, "-i", keyFile,
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile="+filepath.Join(dir, "known_hosts"),
		"-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR", account+"@"+host)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		t.Logf("sftp as %s exited %d: %s", account, ee.ExitCode(), strings.TrimSpace(string(out)))
		return ee.ExitCode()
	}
	t.Fatalf("run sftp: %v", err)
	return -1
}

// hygieneTokenIssued asks the console's token endpoint for a token and reports
// whether it was issued.
func hygieneTokenIssued(t *testing.T, c *harness.Console, clientID, secret string) bool {
	t.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 15 * time.Second})
	tok, err := (&clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: c.URL + "/oauth/token"}).Token(ctx)
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
		return tok.AccessToken != ""
	case errors.As(err, &re) && re.Response.StatusCode == http.StatusUnauthorized:
		return false
	}
	t.Fatalf("token request: %v", err)
	return false
}

func TestPersonnelChangeWorkflow(t *testing.T) {
	t.Parallel()
	for _, d := range browserDialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			c := demoConsole(t, harness.Options{Dialect: d, SFTP: true})
			base := "/a/" + harness.DemoSlug
			bobUser := harness.User{Subject: "e2e-bob", Email: "bob.departing@demo-county.example", EmailVerified: true, Name: "Bob Departing", Groups: []string{harness.GroupAdmins}}

			// Ada sets up an SFTP account and a webhook endpoint.
			ada := c.Browser()
			signInAdmin(t, c, ada)
			ada.Open(base + "/ssh-keys")
			ada.Fill("#environment", "stg")
			if st := ada.Click("#create-account"); st != http.StatusOK {
				t.Fatalf("create SFTP account: %d", st)
			}
			account := harness.DemoSlug + "-stg"
			ada.Open(base + "/webhooks/new")
			ada.Fill("#name", "Case events")
			ada.Fill("#url", "https://hooks.demo-county.example/ecd")
			check(t, ada, "event-court_date.scheduled")
			if st := ada.Click("#save-webhook"); st != http.StatusOK {
				t.Fatalf("create webhook: %d", st)
			}
			ada.Click("#secret-done")
			hookPath := pathOf(t, ada.Location())

			// Bob creates an API credential, uploads a key and reveals the
			// webhook secret; his session stays open in another client.
			bob := c.Browser()
			if st := bob.SignIn(bobUser); st != http.StatusOK {
				t.Fatalf("Bob's sign-in: %d", st)
			}
			clientID, oldSecret := hygieneCreateAPICredential(t, bob, "Bob's sync")
			keyDir := t.TempDir()
			keyFile := filepath.Join(keyDir, "id_ed25519")
			if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bob@laptop", "-f", keyFile).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v %s", err, out)
			}
			pub, err := os.ReadFile(keyFile + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			bob.Open(base + "/ssh-keys")
			bob.Click("#upload-" + account)
			bob.Fill("#public_key", string(pub))
			if st := bob.Click("#upload-key"); st != http.StatusOK {
				t.Fatalf("upload key: %d", st)
			}
			bob.Open(hookPath + "/reveal")
			bob.Fill("#confirm", "Case events")
			if st := bob.Click("#confirm-button"); st != http.StatusOK {
				t.Fatalf("reveal: %d", st)
			}
			bobSession := harness.NewClient(t, c.URL)
			bobSession.SetCookies(bob.Cookies())
			if r := bobSession.Get(base + "/"); r.Status != http.StatusOK {
				t.Fatalf("Bob's session before the change: %d", r.Status)
			}
			if !hygieneTokenIssued(t, c, clientID, oldSecret) {
				t.Fatal("Bob's API secret does not work before the change")
			}
			if code := hygieneSFTP(t, c, keyFile, account); code != 0 {
				t.Fatalf("Bob's key does not log in before the change: exit %d", code)
			}

			// Ada starts from "deactivate user" and sees all three.
			if st := ada.Open(base + "/personnel"); st != http.StatusOK {
				t.Fatalf("personnel page: %d", st)
			}
			var bobID int64
			if err := c.DB().Gorm.Model(&models.User{}).Where("subject = ?", bobUser.Subject).Select("id").Scan(&bobID).Error; err != nil || bobID == 0 {
				t.Fatalf("Bob's user id: %v", err)
			}
			bobRow := "#member-" + hygieneID(bobID)
			if !strings.Contains(ada.Text(bobRow), "Bob Departing") {
				t.Fatalf("Bob is not listed")
			}
			ada.Click(bobRow + ` a[href$="?deactivate=1"]`)
			review := ada.Text("#review-table")
			for _, want := range []string{"Bob's sync", clientID, "created", account, "uploaded", "Case events", "revealed", "reachable through the admin role"} {
				if !strings.Contains(review, want) {
					t.Errorf("review lacks %q:\n%s", want, review)
				}
			}
			if !ada.Has("#deactivate:checked") {
				t.Errorf("deactivation is not pre-selected when starting from \"deactivate user\"")
			}
			hygieneScreenshot(t, ada, "personnel-review-"+string(d))
			var cred models.APICredential
			if err := c.DB().Gorm.Where("client_id = ?", clientID).Take(&cred).Error; err != nil {
				t.Fatal(err)
			}
			var key models.SSHKey
			if err := c.DB().Gorm.Where("comment = ?", "bob@laptop").Take(&key).Error; err != nil {
				t.Fatal(err)
			}
			hookID := strings.TrimPrefix(hookPath, base+"/webhooks/")
			ada.Fill(`select[name="action.api_credential:`+hygieneID(cred.ID)+`"]`, "rotate")
			ada.Fill(`select[name="action.ssh_key:`+hygieneID(key.ID)+`"]`, "revoke")
			ada.Fill(`select[name="action.webhook_secret:`+hookID+`"]`, "rotate")
			ada.Fill("#reason", "left the agency")
			ada.Fill("#confirm", harness.DemoSlug)
			if st := ada.Click("#personnel-submit"); st != http.StatusOK {
				t.Fatalf("apply personnel change: %d", st)
			}
			summary := ada.Text("#operation-lines")
			for _, want := range []string{"Deactivated Bob Departing", "Ended 1 open sessions", "Rotate Bob's sync", "Revoke " + account, "Rotate Case events"} {
				if !strings.Contains(summary, want) {
					t.Errorf("summary lacks %q:\n%s", want, summary)
				}
			}
			newSecret := strings.TrimSpace(ada.TextContent("#new-secret-0"))
			hygieneScreenshot(t, ada, "personnel-summary-"+string(d))
			opID := strings.TrimSpace(ada.Text("#operation-id"))

			// It took effect: the old API secret fails at the token
			// endpoint, the new one works, the old key fails at the SFTP
			// server, and Bob's open session is refused on its next request.
			if hygieneTokenIssued(t, c, clientID, oldSecret) {
				t.Error("the old API secret still gets tokens")
			}
			if newSecret == "" || !hygieneTokenIssued(t, c, clientID, newSecret) {
				t.Error("the new API secret gets no token")
			}
			if code := hygieneSFTP(t, c, keyFile, account); code != 255 {
				t.Errorf("the revoked key: sftp exit %d, want 255", code)
			}
			if r := bobSession.Get(base + "/"); r.Status == http.StatusOK {
				t.Errorf("Bob's session still opens the dashboard")
			}
			var disabled *time.Time
			if err := c.DB().Gorm.Model(&models.User{}).Where("id = ?", bobID).Select("disabled_at").Scan(&disabled).Error; err != nil || disabled == nil {
				t.Errorf("Bob is not disabled: %v", err)
			}

			// One linked operation, with a printable summary rebuilt from the log.
			var linked []models.AuditEvent
			if err := c.DB().Gorm.Where("details LIKE ?", `%"operation":"`+opID+`"%`).Order("id").Find(&linked).Error; err != nil {
				t.Fatal(err)
			}
			var acts []string
			for _, e := range linked {
				acts = append(acts, e.Action)
			}
			// Seven workflow records plus each feature's own record of its change.
			if len(linked) != 10 || acts[0] != "personnel.start" || acts[len(acts)-1] != "personnel.end" ||
				!strings.Contains(strings.Join(acts, " "), "api_credential.regenerate") || !strings.Contains(strings.Join(acts, " "), "ssh_key.revoke") ||
				!strings.Contains(strings.Join(acts, " "), "webhook.secret_rotate") {
				t.Errorf("linked records: %v", acts)
			}
			if st := ada.Open(base + "/operations/" + opID); st != http.StatusOK || ada.Has("#new-secrets") || !strings.Contains(ada.Text("#operation-subject"), "Bob Departing") {
				t.Errorf("operation summary page: %d", st)
			}
			if strings.Contains(ada.TextContent("main"), newSecret) {
				t.Error("the reopened summary shows the new secret")
			}
		})
	}
}

func hygieneID(n int64) string { return strconv.FormatInt(n, 10) }

// hygieneKey is the inventory key of an API credential.
func hygieneKey(t *testing.T, c *harness.Console, clientID string) string {
	t.Helper()
	var cred models.APICredential
	if err := c.DB().Gorm.Where("client_id = ?", clientID).Take(&cred).Error; err != nil {
		t.Fatal(err)
	}
	return "api_credential:" + hygieneID(cred.ID)
}

// hygieneTick ticks a checkbox whose label shows only the USWDS box (its
// text is for screen readers), by clicking the input as the box does.
func hygieneTick(t *testing.T, b *harness.Browser, id string) {
	t.Helper()
	q, _ := json.Marshal(id)
	ctx, cancel := context.WithTimeout(b.Context(), 15*time.Second)
	defer cancel()
	checked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const el = document.getElementById(`+string(q)+`); el.click(); return el.checked; })()`))
	if err != nil || !checked {
		t.Fatalf("tick %s: checked %v, %v", id, checked, err)
	}
}
