package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

const apiCredentialsPath = "/a/" + harness.DemoSlug + "/api-credentials"

// apiEval runs a JavaScript expression in the browser's page.
func apiEval[T any](t *testing.T, b *harness.Browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// apiDownload clicks a download link and returns the downloaded file's
// name and content.
func apiDownload(t *testing.T, b *harness.Browser, sel string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(b.Context(), 20*time.Second)
	defer cancel()
	on := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &on,
	}); err != nil {
		t.Fatalf("download behaviour: %v", err)
	}
	begun := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	var name string
	for ev, err := range begun {
		if err != nil {
			t.Fatalf("no download began: %v", err)
		}
		name = ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download did not finish: %v", err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatalf("downloaded file: %v", err)
			}
			return name, string(b)
		case browser.DownloadProgressStateCanceled:
			t.Fatal("the browser cancelled the download")
		}
	}
	t.Fatal("no download")
	return "", ""
}

func apiCredentialCount(t *testing.T, c *harness.Console) int64 {
	t.Helper()
	var n int64
	if err := c.DB().Gorm.Model(&models.APICredential{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAPICredentialSecretIsShownOnceInChromium(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.Options{})
	c.SeedDemo()
	b := c.Browser()
	if st := b.SignIn(harness.AdminUser()); st != http.StatusOK {
		t.Fatalf("admin sign-in: %d", st)
	}

	if st := b.Open(apiCredentialsPath); st != http.StatusOK {
		t.Fatalf("list: %d", st)
	}
	if st := b.Click("#new-api-credential"); st != http.StatusOK {
		t.Fatalf("create form: %d", st)
	}
	b.Fill("#name", "Case sync")
	b.Fill("#description", "Nightly export to the case management system")
	if st := b.Click("#create-credential"); st != http.StatusOK {
		t.Fatalf("create: %d", st)
	}
	secret := strings.TrimSpace(b.TextContent("#client-secret"))
	clientID := strings.TrimSpace(b.TextContent("#client-id"))
	if !strings.HasPrefix(secret, "ecds_stg_") || len(secret) < 50 || !strings.HasPrefix(clientID, "ecd_stg_") {
		t.Fatalf("shown credential: %q / %q", clientID, secret[:min(9, len(secret))])
	}
	// The copy button is hidden without JavaScript and shown by app.js.
	if hidden := apiEval[bool](t, b, `document.getElementById("copy-secret").hidden`); hidden {
		t.Error("the copy button stayed hidden with JavaScript on")
	}
	// The .env download is built into the page (a data: URL) and the
	// content security policy lets Chromium save it.
	name, content := apiDownload(t, b, "#download-env")
	if name != "demo-county-case-sync-staging.env" || !strings.Contains(content, "ECD_CLIENT_ID="+clientID+"\n") || !strings.Contains(content, "ECD_CLIENT_SECRET="+secret+"\n") {
		t.Fatalf("downloaded %q with the credential: %v", name, strings.Contains(content, secret))
	}

	// A reload re-submits the form; its one-time token refuses it, so the
	// secret is not shown again and nothing is created.
	if st := b.Reload(); st != http.StatusConflict || !b.Has("#already-shown") {
		t.Fatalf("reload answered %d", st)
	}
	if b.Has("#client-secret") || strings.Contains(apiEval[string](t, b, `document.documentElement.outerHTML`), secret) {
		t.Fatal("the secret is shown again after a reload")
	}
	if n := apiCredentialCount(t, c); n != 1 {
		t.Fatalf("%d credentials after the reload, want 1", n)
	}
	if st := b.Open(apiCredentialsPath); st != http.StatusOK || !strings.Contains(b.Text("#credentials-staging"), clientID) {
		t.Fatalf("list after creation: %d", st)
	}
	if strings.Contains(apiEval[string](t, b, `document.documentElement.outerHTML`), secret) {
		t.Fatal("the list shows the secret")
	}

	// The real binary's token endpoint accepts the credential.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 15 * time.Second})
	tok, err := (&clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: c.URL + "/oauth/token"}).Token(ctx)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("token with the shown secret: %v", err)
	}
	cred, err := models.NewAPIClientStore(c.DB()).AuthByClientID(context.Background(), clientID)
	if err != nil {
		t.Fatal(err)
	}
	detail := apiCredentialsPath + "/" + strconv.FormatInt(cred.ID, 10)

	// A reviewer reads the list without any action, and a request forged
	// with the reviewer's own valid CSRF token is refused like a missing page.
	rb := c.Browser()
	if st := rb.SignIn(harness.ReviewerUser()); st != http.StatusOK {
		t.Fatalf("reviewer sign-in: %d", st)
	}
	if st := rb.Open(apiCredentialsPath); st != http.StatusOK || !strings.Contains(rb.Text("#credentials-staging"), clientID) {
		t.Fatalf("reviewer list: %d", st)
	}
	for _, sel := range []string{"#new-api-credential", `main a[href$="/regenerate"]`, `main a[href$="/revoke"]`, "main form"} {
		if rb.Has(sel) {
			t.Errorf("the reviewer sees %s", sel)
		}
	}
	if st := rb.Open(detail); st != http.StatusOK || rb.Has("#regenerate") || rb.Has("#revoke") || !rb.Has("#credential-history") {
		t.Fatalf("reviewer detail: %d", st)
	}
	token := rb.Value(`input[name="_csrf"]`)
	if token == "" {
		t.Fatal("no CSRF token on the reviewer's page")
	}
	cl := c.Client()
	cl.SetCookies(rb.Cookies())
	forged := []struct {
		path string
		form url.Values
	}{
		{apiCredentialsPath, url.Values{"_csrf": {token}, "nonce": {"forgedforgedforgedforged"}, "name": {"Forged"}, "environment": {"production"}}},
		{detail + "/revoke", url.Values{"_csrf": {token}}},
		{detail + "/regenerate", url.Values{"_csrf": {token}, "version": {"1"}, "confirm_name": {"Case sync"}}},
	}
	for _, f := range forged {
		if r := cl.PostForm(f.path, f.form); r.Status != http.StatusNotFound || strings.Contains(r.Body, "ecds_") {
			t.Errorf("forged POST %s: %d, want 404", f.path, r.Status)
		}
	}
	after, err := models.NewAPIClientStore(c.DB()).Get(context.Background(), cred.AgencyID, cred.ID)
	if err != nil || after.Revoked() || after.SecretVersion != 1 || apiCredentialCount(t, c) != 1 {
		t.Fatalf("forged requests changed the credential: %+v %v", after, err)
	}
	if _, err := (&clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: c.URL + "/oauth/token"}).Token(ctx); err != nil {
		t.Fatalf("the credential stopped working after the forged requests: %v", err)
	}
	var re *oauth2.RetrieveError
	_, err = (&clientcredentials.Config{ClientID: clientID, ClientSecret: secret + "x", TokenURL: c.URL + "/oauth/token"}).Token(ctx)
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}

	// The secret appears nowhere else: not in the logs, the audit log or
	// the pages rendered since.
	if strings.Contains(c.Logs(), secret) {
		t.Error("the secret is in the server's logs")
	}
	var evs []models.AuditEvent
	if err := c.DB().Gorm.Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	created := 0
	for _, e := range evs {
		if strings.Contains(strings.Join([]string{e.ActorID, e.ActorName, e.TargetID, e.TargetName, e.Reason, e.UserAgent, e.Details}, " "), secret) {
			t.Errorf("the secret is in audit record %s", e.Action)
		}
		if e.Action == "api_credential.create" && e.TargetID == clientID {
			created++
		}
	}
	if created != 1 {
		t.Errorf("api_credential.create records: %d", created)
	}
	if strings.Contains(apiEval[string](t, rb, `document.documentElement.outerHTML`), secret) {
		t.Error("the reviewer's detail page shows the secret")
	}
}

func TestTokenKeysRotateFromTheCLI(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.Options{})
	before := c.MustCLI("token-keys", "list")
	lines := strings.Split(strings.TrimSpace(before), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], " active ") {
		t.Fatalf("keys of a new console:\n%s", before)
	}
	oldKID := strings.Fields(lines[1])[0]

	out := c.MustCLI("token-keys", "rotate")
	if !strings.Contains(out, "new signing key ") {
		t.Fatalf("rotate said:\n%s", out)
	}
	keys, err := models.NewTokenKeyStore(c.DB()).Live(context.Background())
	if err != nil || len(keys) != 2 || keys[1].KID != oldKID || keys[0].Status != models.TokenKeyActive || keys[1].Status != models.TokenKeyRetired {
		t.Fatalf("keys after rotation: %+v %v", keys, err)
	}
	// The new key waits before signing; the old one signs until then and is
	// published until its last token has expired.
	if !keys[1].NotAfter.Equal(keys[0].ActivatesAt) || !keys[1].PublishUntil.Equal(keys[0].ActivatesAt.Add(16*time.Minute)) || time.Until(keys[0].ActivatesAt) < 2*time.Minute {
		t.Fatalf("rotation schedule: new %+v, old %+v", keys[0], keys[1])
	}
	for _, want := range []string{keys[0].KID + "  pending", oldKID + "  active"} {
		if !strings.Contains(out, want) {
			t.Errorf("listing after rotation lacks %q:\n%s", want, out)
		}
	}
	evs := c.AuditEvents("token_key.rotate")
	if len(evs) != 1 || evs[0].TargetID != keys[0].KID || evs[0].ActorID != "cli" || evs[0].AgencyID != models.PlatformAgencyID {
		t.Fatalf("rotation audit: %+v", evs)
	}
	// The running server still publishes the old key and signs with it.
	r := c.Client().Get("/.well-known/jwks.json")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, oldKID) {
		t.Fatalf("jwks: %d %s", r.Status, r.Body)
	}
}
