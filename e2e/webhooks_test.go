package e2e

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

const webhooksPath = "/a/" + harness.DemoSlug + "/webhooks"

// hookReceiver is a receiver on 127.0.0.1 that verifies deliveries with the
// official Standard Webhooks Go library and the one secret it holds: 204 when
// the signature verifies, 401 otherwise.
type hookReceiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	whsec  string
	header []http.Header
	ok     []bool
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rv := &hookReceiver{t: t}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rv.mu.Lock()
		whsec := rv.whsec
		rv.mu.Unlock()
		verified := false
		if whsec != "" {
			wh, err := standardwebhooks.NewWebhook(whsec)
			if err != nil {
				t.Errorf("receiver: NewWebhook: %v", err)
			} else {
				verified = wh.Verify(body, r.Header) == nil
			}
		}
		rv.mu.Lock()
		rv.header = append(rv.header, r.Header.Clone())
		rv.ok = append(rv.ok, verified)
		rv.mu.Unlock()
		if !verified {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "signature not verified")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rv.srv.Close)
	return rv
}

func (rv *hookReceiver) hold(whsec string) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.whsec = whsec
}

func (rv *hookReceiver) last() (http.Header, bool) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.header) == 0 {
		rv.t.Fatal("the receiver got no request")
	}
	return rv.header[len(rv.header)-1], rv.ok[len(rv.ok)-1]
}

// check ticks a checkbox or radio button by clicking its label, as a person
// does (USWDS hides the input itself); no navigation follows.
func check(t *testing.T, b *harness.Browser, id string) {
	sel := `label[for="` + id + `"]`
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// formToken reads the CSRF token of a page through the client.
func formToken(t *testing.T, cl *harness.Client, path string) string {
	t.Helper()
	r := cl.Get(path)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s = %d", path, r.Status)
	}
	m := csrfField.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no CSRF field on %s", path)
	}
	return html.UnescapeString(m[1])
}

func webhookAudit(t *testing.T, c *harness.Console) []models.AuditEvent {
	t.Helper()
	var evs []models.AuditEvent
	if err := c.DB().Gorm.Where("action LIKE ?", "webhook.%").Order("id").Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestWebhookSecretTestEventAndMask(t *testing.T) {
	t.Parallel()
	for _, d := range browserDialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			rv := newHookReceiver(t)
			c := harness.Start(t, harness.Options{Dialect: d, Env: map[string]string{
				"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
				"KEYCONSOLE_WEBHOOK_EGRESS_IPS":    "198.51.100.7, 2001:db8::7",
			}})
			c.SeedDemo()
			b := c.Browser()
			if st := b.SignIn(harness.AdminUser()); st != http.StatusOK {
				t.Fatalf("admin sign-in: %d", st)
			}

			// Add an endpoint; the console generates its first secret and shows it once.
			if st := b.Open(webhooksPath); st != http.StatusOK {
				t.Fatalf("webhooks page: %d", st)
			}
			if ips := b.Text("#egress-ips"); !strings.Contains(ips, "198.51.100.7") || !strings.Contains(ips, "2001:db8::7") {
				t.Fatalf("egress addresses not listed: %q", ips)
			}
			if st := b.Click("#new-webhook"); st != http.StatusOK {
				t.Fatalf("new endpoint form: %d", st)
			}
			b.Fill("#name", "Case system")
			b.Fill("#environment", "staging")
			b.Fill("#url", rv.srv.URL+"/hooks")
			b.Fill("#description", "Court case management")
			check(t, b, "event-court_date.scheduled")
			check(t, b, "event-court_date.changed")
			check(t, b, "secret-generate")
			if st := b.Click("#save-webhook"); st != http.StatusOK {
				t.Fatalf("create endpoint: %d on %s: %s", st, b.Location(), b.Text("main"))
			}
			first := b.Value("#webhook-secret")
			if len(first) != 24 || b.Value("#webhook-whsec") == "" {
				t.Fatalf("generated secret %q", first)
			}
			if st := b.Click("#secret-done"); st != http.StatusOK {
				t.Fatalf("endpoint page: %d", st)
			}
			showPath := pathOf(t, b.Location())

			// Set a secret typed by the admin, with the default 24 h window.
			const typed = "e2e-Typed-Secret-42!"
			if st := b.Click("#set-secret"); st != http.StatusOK {
				t.Fatalf("secret form: %d on %s", st, b.Location())
			}
			check(t, b, "secret-typed")
			b.Fill("#secret", typed)
			b.Fill("#confirm", "Case system")
			if st := b.Click("#save-secret"); st != http.StatusOK {
				t.Fatalf("set secret: %d", st)
			}
			if got := b.Value("#webhook-secret"); got != typed {
				t.Fatalf("secret page shows %q, want the typed secret", got)
			}
			whsec := b.Value("#webhook-whsec")
			if !strings.HasPrefix(whsec, "whsec_") {
				t.Fatalf("whsec form %q", whsec)
			}
			if !strings.Contains(b.Text("#overlap-note"), "UTC") {
				t.Fatal("the window's end is not shown")
			}
			rv.hold(whsec)

			// A test event, signed with both secrets: the new-only receiver verifies it.
			b.Click("#secret-done")
			if st := b.Click("#send-test"); st != http.StatusOK {
				t.Fatalf("send test: %d", st)
			}
			if h := b.Text("#test-result h2"); h != "The receiver accepted the test event" {
				t.Fatalf("test result heading %q", h)
			}
			if st := b.Text("#result-status"); st != "204 No Content" {
				t.Fatalf("test result status %q", st)
			}
			hdr, ok := rv.last()
			if !ok || len(strings.Fields(hdr.Get("webhook-signature"))) != 2 {
				t.Fatalf("receiver verified %v, signature %q", ok, hdr.Get("webhook-signature"))
			}
			logHeaders(t, "test event during the window", hdr)

			// A test signed with the new secret alone: the page says it was verified.
			if st := b.Click("#send-test-new"); st != http.StatusOK {
				t.Fatalf("send new-only test: %d", st)
			}
			if h := b.Text("#test-result h2"); h != "The receiver verified the new secret" {
				t.Fatalf("new-only result heading %q", h)
			}
			if v := b.Text("#verified-new"); !strings.HasPrefix(v, "Receiver verified the new secret at ") {
				t.Fatalf("verification line %q", v)
			}
			hdr, ok = rv.last()
			if !ok || len(strings.Fields(hdr.Get("webhook-signature"))) != 1 {
				t.Fatalf("new-only test: verified %v, signature %q", ok, hdr.Get("webhook-signature"))
			}
			logHeaders(t, "test event signed with the new secret only", hdr)

			// After a reload the secret is masked and appears nowhere on the page.
			if st := b.Reload(); st != http.StatusOK {
				t.Fatalf("reload: %d", st)
			}
			if m := b.Text("#secret-masked"); m != "••••••••••••••••••••••••" {
				t.Fatalf("masked secret shows %q", m)
			}
			cl := c.Client()
			cl.SetCookies(b.Cookies())
			page := cl.Get(showPath)
			if page.Status != http.StatusOK || strings.Contains(page.Body, typed) || strings.Contains(page.Body, html.EscapeString(typed)) || strings.Contains(page.Body, whsec) || strings.Contains(page.Body, first) {
				t.Fatalf("endpoint page (status %d) shows a secret", page.Status)
			}

			// Reveal: no-store, typed confirmation, audited.
			token := formToken(t, cl, showPath+"/reveal")
			r := cl.PostForm(showPath+"/reveal", url.Values{"_csrf": {token}, "confirm": {"Case system"}})
			if r.Status != http.StatusOK || !strings.Contains(r.Body, html.EscapeString(typed)) || !strings.Contains(r.Body, whsec) {
				t.Fatalf("reveal = %d", r.Status)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("reveal page Cache-Control %q, want no-store", cc)
			}

			// Bad secrets through the HTTP form: each its own message, nothing changed.
			ep := endpointByName(t, c, "Case system")
			before := len(webhookAudit(t, c))
			bad := []struct{ secret, want string }{
				{strings.Repeat("x", 25), "The secret is too long; use at most 24 characters, the platform's limit."},
				{strings.Repeat("y", 15), "The secret is too short; use at least 16 characters."},
				{"has spaces in it 123", "The secret contains a space or other whitespace; spaces are not allowed."},
				{"non-ascii-sécret-1234", "The secret contains a non-ASCII character; use printable ASCII characters only."},
				{"", "Enter a secret of 16 to 24 characters."},
			}
			for _, tt := range bad {
				token := formToken(t, cl, showPath+"/secret")
				r := cl.PostForm(showPath+"/secret", url.Values{"_csrf": {token}, "secret_source": {"typed"}, "secret": {tt.secret}, "overlap_hours": {"24"}, "confirm": {"Case system"}})
				if r.Status != http.StatusUnprocessableEntity || !strings.Contains(r.Body, html.EscapeString(tt.want)) {
					t.Fatalf("bad secret %q: status %d, message %q not on the page", tt.secret, r.Status, tt.want)
				}
				if tt.secret != "" && strings.Contains(r.Body, html.EscapeString(tt.secret)) {
					t.Fatalf("the refusal page repeats the secret %q", tt.secret)
				}
				for _, other := range bad {
					if other.want != tt.want && strings.Contains(r.Body, html.EscapeString(other.want)) {
						t.Fatalf("refusal of %q also says %q", tt.secret, other.want)
					}
				}
			}
			after := endpointByName(t, c, "Case system")
			if after.SecretVersion != ep.SecretVersion || after.PreviousVersion != ep.PreviousVersion || !after.UpdatedAt.Equal(ep.UpdatedAt) {
				t.Fatalf("a refused secret changed the endpoint: %+v -> %+v", ep, after)
			}
			if n := len(webhookAudit(t, c)); n != before {
				t.Fatalf("refused secrets wrote %d audit records", n-before)
			}

			// The audit trail: every step, never a secret.
			var actions []string
			for _, ev := range webhookAudit(t, c) {
				actions = append(actions, ev.Action)
				row := ev.Details + ev.Reason + ev.TargetName + ev.ActorName
				if strings.Contains(row, typed) || strings.Contains(row, first) || strings.Contains(row, whsec) {
					t.Fatalf("audit %s carries a secret", ev.Action)
				}
			}
			want := "webhook.endpoint_create webhook.secret_rotate webhook.test_event webhook.test_event webhook.secret_reveal"
			if strings.Join(actions, " ") != want {
				t.Fatalf("audit actions %v, want %s", actions, want)
			}

			// Ending the window early destroys the old secret.
			if st := b.Click("#end-rotation"); st != http.StatusOK {
				t.Fatalf("end rotation: %d", st)
			}
			if b.Has("#rotation-window") {
				t.Fatal("the rotation window is still shown")
			}
			if len(c.AuditEvents("webhook.rotation_ended")) != 1 {
				t.Fatal("rotation end not audited")
			}
		})
	}
}

func endpointByName(t *testing.T, c *harness.Console, name string) models.WebhookEndpoint {
	t.Helper()
	var e models.WebhookEndpoint
	if err := c.DB().Gorm.Where("name = ?", name).Take(&e).Error; err != nil {
		t.Fatalf("endpoint %s: %v", name, err)
	}
	return e
}

// logHeaders prints a delivery's headers exactly as the receiver saw them.
func logHeaders(t *testing.T, what string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range h[k] {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	t.Logf("%s, headers as received:\n%s", what, b.String())
}

func TestWebhookPagesForOtherRoles(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.Options{Env: map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}})
	c.SeedDemo()
	c.MustCLI("agency", "create", "other-county", "--name", "Other County")
	c.MustCLI("agency", "map", "other-county", "--provider", harness.ProviderID, "--group", "other-admins", "--role", "admin")

	admin := c.Browser()
	if st := admin.SignIn(harness.AdminUser()); st != http.StatusOK {
		t.Fatalf("admin sign-in: %d", st)
	}
	admin.Open(webhooksPath + "/new")
	admin.Fill("#name", "Reminders")
	admin.Fill("#url", "https://hooks.example.gov/in")
	check(t, admin, "event-reminder.sent")
	if st := admin.Click("#save-webhook"); st != http.StatusOK {
		t.Fatalf("create: %d", st)
	}
	admin.Click("#secret-done")
	showPath := pathOf(t, admin.Location())

	viewer := c.Browser()
	if st := viewer.SignIn(harness.ViewerUser()); st != http.StatusOK {
		t.Fatalf("viewer sign-in: %d", st)
	}
	if st := viewer.Open(showPath); st != http.StatusOK {
		t.Fatalf("viewer reads the endpoint: %d", st)
	}
	if viewer.Has("#set-secret") || viewer.Has("#send-test") || viewer.Has("#reveal-secret") {
		t.Fatal("a viewer is offered admin actions")
	}
	if !viewer.Has("#snippet-go") || !viewer.Has("#snippet-python") || !viewer.Has("#snippet-node") || !viewer.Has("#snippet-csharp") {
		t.Fatal("verification snippets missing")
	}
	for _, p := range []string{showPath + "/secret", showPath + "/reveal", showPath + "/edit", webhooksPath + "/new"} {
		if st := viewer.Open(p); st != http.StatusNotFound {
			t.Fatalf("viewer GET %s = %d, want 404", p, st)
		}
	}
	vc := c.Client()
	vc.SetCookies(viewer.Cookies())
	token := formToken(t, vc, showPath)
	if r := vc.PostForm(showPath+"/test", url.Values{"_csrf": {token}}); r.Status != http.StatusNotFound {
		t.Fatalf("viewer POST test = %d, want 404", r.Status)
	}

	// An admin of another agency: the endpoint id under their agency is a 404,
	// exactly like a missing id.
	other := c.Browser()
	if st := other.SignIn(harness.User{Subject: "e2e-other", Email: "olga@other.example", EmailVerified: true, Name: "Olga Other", Groups: []string{"other-admins"}}); st != http.StatusOK {
		t.Fatalf("other admin sign-in: %d", st)
	}
	id := showPath[strings.LastIndex(showPath, "/")+1:]
	foreign := "/a/other-county/webhooks/" + id
	if st := other.Open(foreign); st != http.StatusNotFound {
		t.Fatalf("other agency's endpoint = %d, want 404", st)
	}
	missing := other.Open("/a/other-county/webhooks/999999")
	if missing != http.StatusNotFound {
		t.Fatalf("missing endpoint = %d", missing)
	}
	oc := c.Client()
	oc.SetCookies(other.Cookies())
	token = formToken(t, oc, "/a/other-county/webhooks")
	for _, p := range []string{"/test", "/delete", "/disable", "/end-rotation"} {
		if r := oc.PostForm(foreign+p, url.Values{"_csrf": {token}, "confirm": {"Reminders"}}); r.Status != http.StatusNotFound {
			t.Fatalf("other agency POST %s = %d, want 404", p, r.Status)
		}
	}
	if e := endpointByName(t, c, "Reminders"); !e.Enabled {
		t.Fatal("another agency's admin changed the endpoint")
	}
}
