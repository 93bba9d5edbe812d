package security

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
)

// apiCred is an API credential created through the console.
type apiCred struct {
	ID       int64
	Name     string
	ClientID string
	Secret   string
}

var (
	clientIDCode   = regexp.MustCompile(`<code id="client-id">([^<]+)</code>`)
	clientSecretEl = regexp.MustCompile(`id="client-secret">([^<]+)<`)
	detailLink     = regexp.MustCompile(`id="done" href="/a/[^/]+/api-credentials/(\d+)"`)
)

// createAPICredential creates a credential as the client's user (an admin
// of the agency) through the real form and reads the once-shown secret.
func createAPICredential(t *testing.T, cl *harness.Client, slug, name, env string) apiCred {
	t.Helper()
	base := "/a/" + slug + "/api-credentials"
	page := cl.Get(base + "/new")
	if page.Status != http.StatusOK {
		t.Fatalf("GET %s/new: %d", base, page.Status)
	}
	r := cl.PostForm(base, form("_csrf", csrfOf(page.Body), "nonce", inputValue(page.Body, "nonce"), "name", name, "environment", env))
	if r.Status != http.StatusOK {
		t.Fatalf("create credential %s: %d\n%s", name, r.Status, r.Body)
	}
	return apiCred{ID: atoiMatch(t, detailLink, r.Body), Name: name, ClientID: match(t, clientIDCode, r.Body), Secret: match(t, clientSecretEl, r.Body)}
}

// regenerateAPICredential regenerates the secret as the client's user (a
// recent sign-in is assumed) and returns the response of the POST.
func regenerateAPICredential(t *testing.T, cl *harness.Client, slug string, cr apiCred) harness.Response {
	t.Helper()
	path := "/a/" + slug + "/api-credentials/" + strconv.FormatInt(cr.ID, 10) + "/regenerate"
	page := cl.Get(path)
	if page.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, page.Status, page.Location())
	}
	return cl.PostForm(path, form("_csrf", csrfOf(page.Body), "version", inputValue(page.Body, "version"), "confirm_name", cr.Name))
}

// secretOf reads the secret shown on a create or regenerate answer.
func secretOf(t *testing.T, r harness.Response) string {
	t.Helper()
	return match(t, clientSecretEl, r.Body)
}

// revokeAPICredential revokes a credential as the client's user.
func revokeAPICredential(t *testing.T, cl *harness.Client, slug string, cr apiCred) {
	t.Helper()
	path := "/a/" + slug + "/api-credentials/" + strconv.FormatInt(cr.ID, 10) + "/revoke"
	page := cl.Get(path)
	if page.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", path, page.Status)
	}
	r := cl.PostForm(path, form("_csrf", csrfOf(page.Body), "confirm_name", cr.Name))
	if r.Status != http.StatusSeeOther {
		t.Fatalf("revoke %s: %d\n%s", cr.Name, r.Status, r.Body)
	}
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	Status      int
	AccessToken string `json:"access_token"`
	Error       string `json:"error"`
	RetryAfter  string
}

// requestToken asks the token endpoint for an access token with
// client_secret_basic.
func requestToken(t *testing.T, cl *harness.Client, clientID, secret string) tokenResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, cl.Base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	r := cl.Do(req)
	out := tokenResponse{Status: r.Status, RetryAfter: r.Header.Get("Retry-After")}
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		t.Fatalf("token endpoint answered %d with a body that is not JSON: %q", r.Status, r.Body)
	}
	out.Status = r.Status
	return out
}

func match(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page has no match for %s", re)
	}
	return strings.TrimSpace(m[1])
}

func atoiMatch(t *testing.T, re *regexp.Regexp, body string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(match(t, re, body), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hook is a webhook endpoint created through the console.
type hook struct {
	ID     int64
	Name   string
	Secret string
}

var webhookSecretInput = regexp.MustCompile(`id="webhook-secret" readonly value="([^"]*)"`)

// createWebhook adds an endpoint as the client's user (an admin) with a
// typed secret and returns it.
func createWebhook(t *testing.T, cl *harness.Client, c *harness.Console, slug, name, target, secret string) hook {
	t.Helper()
	page := cl.Get("/a/" + slug + "/webhooks/new")
	if page.Status != http.StatusOK {
		t.Fatalf("GET webhooks/new: %d", page.Status)
	}
	r := cl.PostForm("/a/"+slug+"/webhooks", form("_csrf", csrfOf(page.Body), "name", name, "environment", "staging",
		"url", target, "events", "court_date.scheduled", "secret_source", "typed", "secret", secret))
	if r.Status != http.StatusOK {
		t.Fatalf("create webhook %s: %d\n%s", name, r.Status, mainOf(r))
	}
	if got := webhookSecretOf(r); got != secret {
		t.Fatalf("create webhook %s: shown secret %q, want the typed one", name, got)
	}
	var id int64
	if err := c.DB().Gorm.Raw("SELECT id FROM webhook_endpoints WHERE name = ?", name).Scan(&id).Error; err != nil || id == 0 {
		t.Fatalf("webhook %s id: %v", name, err)
	}
	return hook{ID: id, Name: name, Secret: secret}
}

// webhookSecretOf reads the secret shown once on a webhook secret page, or "".
func webhookSecretOf(r harness.Response) string {
	m := webhookSecretInput.FindStringSubmatch(r.Body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func hookPath(slug string, h hook, suffix string) string {
	return "/a/" + slug + "/webhooks/" + strconv.FormatInt(h.ID, 10) + suffix
}

// revealWebhook reveals the endpoint's secret (recent sign-in assumed).
func revealWebhook(t *testing.T, cl *harness.Client, slug string, h hook) harness.Response {
	t.Helper()
	page := cl.Get(hookPath(slug, h, "/reveal"))
	if page.Status != http.StatusOK {
		return page
	}
	return cl.PostForm(hookPath(slug, h, "/reveal"), form("_csrf", csrfOf(page.Body), "confirm", h.Name))
}

// setWebhookSecret sets a typed secret with the overlap window in hours.
func setWebhookSecret(t *testing.T, cl *harness.Client, slug string, h hook, secret, overlapHours string) harness.Response {
	t.Helper()
	page := cl.Get(hookPath(slug, h, "/secret"))
	if page.Status != http.StatusOK {
		return page
	}
	return cl.PostForm(hookPath(slug, h, "/secret"), form("_csrf", csrfOf(page.Body), "version", inputValue(page.Body, "version"), "confirm", h.Name,
		"secret_source", "typed", "secret", secret, "overlap_hours", overlapHours))
}
