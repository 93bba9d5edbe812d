package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

const (
	dashboardPath = "/a/" + harness.DemoSlug + "/"
	signOutButton = `form[action="/auth/signout"] button[type="submit"]`
	sessionCookie = "keyconsole_session"
)

// demoConsole starts a console with Demo County seeded through the CLI.
func demoConsole(t *testing.T, opts harness.Options) *harness.Console {
	t.Helper()
	c := harness.Start(t, opts)
	c.SeedDemo()
	return c
}

// signInAdmin signs Ada Admin in and checks she lands on the dashboard.
func signInAdmin(t *testing.T, c *harness.Console, b *harness.Browser) {
	t.Helper()
	if st := b.SignIn(harness.AdminUser()); st != http.StatusOK {
		t.Fatalf("admin sign-in landed with status %d on %s", st, b.Location())
	}
	if p := pathOf(t, b.Location()); p != dashboardPath {
		t.Fatalf("admin landed on %s, want %s", p, dashboardPath)
	}
}

func pathOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse URL %q: %v", raw, err)
	}
	return u.Path
}

func agencyID(t *testing.T, c *harness.Console, slug string) int64 {
	t.Helper()
	a, err := models.NewAgencyStore(c.DB()).BySlug(context.Background(), slug)
	if err != nil {
		t.Fatalf("agency %s: %v", slug, err)
	}
	return a.ID
}

// refusals returns the auth.sign_in_refused events with the given reason.
func refusals(c *harness.Console, reason string) []models.AuditEvent {
	var out []models.AuditEvent
	for _, e := range c.AuditEvents("auth.sign_in_refused") {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestAdminSignsInAndSeesDashboard(t *testing.T) {
	t.Parallel()
	for _, d := range []models.Dialect{models.SQLite, models.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			c := demoConsole(t, harness.Options{Dialect: d})
			b := c.Browser()
			signInAdmin(t, c, b)

			if got := b.Text("#dashboard-heading"); got != harness.DemoName {
				t.Errorf("dashboard heading = %q, want %q", got, harness.DemoName)
			}
			header := b.Text("nav.kc-account")
			for _, want := range []string{"Ada Admin", harness.DemoName, "Sign out"} {
				if !strings.Contains(header, want) {
					t.Errorf("header %q does not contain %q", header, want)
				}
			}
			if got := strings.TrimSpace(b.TextContent("nav.kc-account .kc-role")); got != models.RoleAdmin {
				t.Errorf("role in header = %q, want %q", got, models.RoleAdmin)
			}

			checkAuthorizeRequest(t, c)
			for _, ck := range b.Cookies() {
				if ck.Name == sessionCookie && strings.Contains(c.Logs(), ck.Value) {
					t.Error("the server log contains the session cookie")
				}
			}
			if strings.Contains(c.Logs(), c.IdP.ClientSecret) {
				t.Error("the server log contains the OIDC client secret")
			}

			demo := agencyID(t, c, harness.DemoSlug)
			var found bool
			for _, e := range c.AuditEvents("auth.sign_in") {
				if e.AgencyID == demo && e.ActorName == "Ada Admin" && e.Outcome == "success" {
					found = true
				}
			}
			if !found {
				t.Errorf("no successful auth.sign_in audit event for Ada Admin in %s", harness.DemoSlug)
			}
		})
	}
}

// checkAuthorizeRequest checks the one authorization request the provider
// received: code flow with PKCE S256, a fresh state and nonce, the
// configured scopes and the console's callback.
func checkAuthorizeRequest(t *testing.T, c *harness.Console) {
	t.Helper()
	reqs := c.IdP.AuthorizeRequests()
	if len(reqs) != 1 {
		t.Fatalf("authorization requests = %d, want 1", len(reqs))
	}
	q := reqs[0]
	want := map[string]string{
		"response_type":         "code",
		"client_id":             c.IdP.ClientID,
		"redirect_uri":          c.URL + "/auth/callback/" + harness.ProviderID,
		"scope":                 harness.ProviderScopes,
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("authorization request %s = %q, want %q", k, got, v)
		}
	}
	// 43 characters: a base64url SHA-256 challenge, and 256-bit state and nonce.
	for _, k := range []string{"code_challenge", "state", "nonce"} {
		if got := q.Get(k); len(got) < 43 {
			t.Errorf("authorization request %s = %q, want at least 43 characters", k, got)
		}
	}
}

func TestSignOutEndsTheSessionOnTheServer(t *testing.T) {
	t.Parallel()
	c := demoConsole(t, harness.Options{})
	b := c.Browser()
	signInAdmin(t, c, b)
	cookies := b.Cookies()

	// While the session lives, the copied cookie opens the dashboard from
	// another client: the replay below is refused for the sign-out alone.
	before := c.Client()
	before.SetCookies(cookies)
	if r := before.Get(dashboardPath); r.Status != http.StatusOK || !strings.Contains(r.Body, `id="dashboard-heading"`) {
		t.Fatalf("copied session cookie before sign-out: status %d, want 200 with the dashboard", r.Status)
	}

	if st := b.Click(signOutButton); st != http.StatusOK {
		t.Fatalf("sign-out landed with status %d", st)
	}
	if p := pathOf(t, b.Location()); p != "/signed-out" {
		t.Errorf("after sign-out the browser is on %s, want /signed-out", p)
	}
	if got := b.Text("main h1"); got != "You are signed out" {
		t.Errorf("signed-out heading = %q", got)
	}

	replay := c.Client()
	replay.SetCookies(cookies)
	r := replay.Get(dashboardPath)
	switch {
	case r.Status == http.StatusUnauthorized:
	case r.Status == http.StatusSeeOther && strings.HasPrefix(r.Location(), "/signin"):
	default:
		t.Errorf("replayed session cookie after sign-out: status %d location %q, want a redirect to /signin or 401", r.Status, r.Location())
	}
	if strings.Contains(r.Body, `id="dashboard-heading"`) {
		t.Error("replayed session cookie after sign-out still reached the dashboard")
	}

	if st := b.Open(dashboardPath); st != http.StatusOK || pathOf(t, b.Location()) != "/signin" {
		t.Errorf("browser after sign-out opening the dashboard: status %d on %s, want the sign-in page", st, b.Location())
	}

	outs := c.AuditEvents("auth.sign_out")
	if len(outs) != 1 {
		t.Fatalf("auth.sign_out events = %d, want 1", len(outs))
	}
	if e := outs[0]; e.ActorName != "Ada Admin" || e.Outcome != "success" || e.AgencyID != agencyID(t, c, harness.DemoSlug) {
		t.Errorf("auth.sign_out event = actor %q outcome %q agency %d", e.ActorName, e.Outcome, e.AgencyID)
	}
}

func TestUserWithoutMappedGroupIsRefused(t *testing.T) {
	t.Parallel()
	c := demoConsole(t, harness.Options{})
	b := c.Browser()
	nobody := harness.NobodyUser()

	if st := b.SignIn(nobody); st != http.StatusForbidden {
		t.Errorf("unmapped user's sign-in answered %d, want 403", st)
	}
	if got := b.Text("#signin-refused"); !strings.Contains(got, "No access") {
		t.Errorf("refusal box = %q, want it to say No access", got)
	}
	for _, ck := range b.Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" {
			t.Error("a refused user got a session cookie")
		}
	}
	if st := b.Open("/"); st != http.StatusOK || pathOf(t, b.Location()) != "/signin" {
		t.Errorf("refused user opening / got status %d on %s, want the sign-in page", st, b.Location())
	}

	evs := refusals(c, "no_access")
	if len(evs) != 1 {
		t.Fatalf("auth.sign_in_refused no_access events = %d, want 1", len(evs))
	}
	if e := evs[0]; e.Outcome != "denied" || e.TargetName != nobody.Name || e.AgencyID != models.PlatformAgencyID {
		t.Errorf("refusal event = outcome %q target %q agency %d", e.Outcome, e.TargetName, e.AgencyID)
	}
}

func TestTamperedAndReplayedCallbacksAreRefused(t *testing.T) {
	t.Parallel()
	c := demoConsole(t, harness.Options{})
	b := c.Browser()

	// A callback whose state was changed.
	held := b.SignInHeld(harness.AdminUser())
	u, err := url.Parse(held)
	if err != nil || u.Path != "/auth/callback/"+harness.ProviderID || u.Query().Get("code") == "" || u.Query().Get("state") == "" {
		t.Fatalf("held callback %q is not /auth/callback/%s?code=…&state=…", held, harness.ProviderID)
	}
	q := u.Query()
	q.Set("state", tamper(q.Get("state")))
	u.RawQuery = q.Encode()
	if st := b.Open(u.String()); st != http.StatusBadRequest {
		t.Errorf("tampered state answered %d, want 400", st)
	}
	if got := b.Text("#signin-refused"); !strings.Contains(got, "could not be completed") {
		t.Errorf("tampered state refusal = %q", got)
	}
	if n := len(refusals(c, "bad_state")); n != 1 {
		t.Errorf("bad_state refusals after the tampered callback = %d, want 1", n)
	}
	if n := len(c.AuditEvents("auth.sign_in")); n != 0 {
		t.Errorf("auth.sign_in events after a tampered callback = %d, want 0", n)
	}

	// A genuine callback delivered once, then replayed.
	held = b.SignInHeld(harness.AdminUser())
	withLoginCookie := b.Cookies()
	if st := b.Open(held); st != http.StatusOK || pathOf(t, b.Location()) != dashboardPath {
		t.Fatalf("first delivery of the callback: status %d on %s, want the dashboard", st, b.Location())
	}
	if st := b.Open(held); st != http.StatusBadRequest {
		t.Errorf("replayed callback in the same browser answered %d, want 400", st)
	}
	if got := b.Text("#signin-refused"); !strings.Contains(got, "could not be completed") {
		t.Errorf("replayed callback refusal = %q", got)
	}
	if n := len(refusals(c, "bad_state")); n != 2 {
		t.Errorf("bad_state refusals after the browser replay = %d, want 2", n)
	}

	// The same callback with a copy of the sign-in cookie taken before the
	// first delivery: the server accepts each state once.
	thief := c.Client()
	thief.SetCookies(withLoginCookie)
	r := thief.Get(held)
	if r.Status != http.StatusBadRequest {
		t.Errorf("replayed callback with the copied sign-in cookie answered %d, want 400", r.Status)
	}
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" && ck.MaxAge >= 0 {
			t.Error("replayed callback with the copied sign-in cookie set a session cookie")
		}
	}
	if n := len(refusals(c, "bad_state")); n != 3 {
		t.Errorf("bad_state refusals after the copied-cookie replay = %d, want 3", n)
	}
	if n := len(c.AuditEvents("auth.sign_in")); n != 1 {
		t.Errorf("auth.sign_in events = %d, want exactly the one genuine sign-in", n)
	}
	heldURL, _ := url.Parse(held)
	if code := heldURL.Query().Get("code"); strings.Contains(c.Logs(), code) {
		t.Error("the server log contains an authorization code")
	}
}

// tamper changes one character of s.
func tamper(s string) string {
	if s == "" {
		return "x"
	}
	last := s[len(s)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return s[:len(s)-1] + string(repl)
}

func TestIdleSessionExpires(t *testing.T) {
	t.Parallel()
	c := demoConsole(t, harness.Options{Env: map[string]string{
		"KEYCONSOLE_SESSION_IDLE_TIMEOUT":     "3s",
		"KEYCONSOLE_SESSION_ABSOLUTE_TIMEOUT": "1h",
	}})
	b := c.Browser()
	signInAdmin(t, c, b)

	time.Sleep(4 * time.Second)
	if st := b.Reload(); st != http.StatusOK {
		t.Errorf("reload after idling answered %d", st)
	}
	u, err := url.Parse(b.Location())
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/signin" || u.Query().Get("reason") != "idle" || u.Query().Get("return_to") != dashboardPath {
		t.Errorf("after idling the browser is on %s, want /signin?return_to=%s&reason=idle", u.RequestURI(), dashboardPath)
	}
	if got := b.Text(".usa-alert--warning"); !strings.Contains(got, "without activity") {
		t.Errorf("idle message = %q", got)
	}
	if b.Has("#dashboard-heading") {
		t.Error("the dashboard is still shown after the idle timeout")
	}

	evs := c.AuditEvents("auth.session_timeout")
	if len(evs) != 1 {
		t.Fatalf("auth.session_timeout events = %d, want 1", len(evs))
	}
	if e := evs[0]; e.Reason != "idle_timeout" || e.ActorName != "Ada Admin" {
		t.Errorf("session timeout event = reason %q actor %q", e.Reason, e.ActorName)
	}
}

func TestOperatorPagesAreForOperatorsOnly(t *testing.T) {
	t.Parallel()
	c := demoConsole(t, harness.Options{})

	// The reviewer is refused.
	{
		b := c.Browser()
		if st := b.SignIn(harness.ReviewerUser()); st != http.StatusOK || pathOf(t, b.Location()) != dashboardPath {
			t.Fatalf("reviewer sign-in: status %d on %s", st, b.Location())
		}
		token := b.Value(`input[name="_csrf"]`)
		if st := b.Open("/operator/agencies"); st != http.StatusNotFound {
			t.Errorf("reviewer opening /operator/agencies got %d, want 404", st)
		}
		if got := b.Text("main h1"); got != "Page not found" {
			t.Errorf("reviewer's refusal heading = %q, want Page not found", got)
		}
		if b.Has("#agency-table") {
			t.Error("reviewer sees the agency table")
		}

		// A well-formed form post with the reviewer's session and CSRF token.
		cl := c.Client()
		cl.SetCookies(b.Cookies())
		r := cl.PostForm("/operator/agencies", url.Values{"_csrf": {token}, "name": {"Rogue County"}, "slug": {"rogue-county"}})
		if r.Status != http.StatusNotFound {
			t.Errorf("reviewer posting an agency got %d, want 404", r.Status)
		}
		if _, err := models.NewAgencyStore(c.DB()).BySlug(context.Background(), "rogue-county"); err == nil {
			t.Error("the reviewer's post created an agency")
		}
	}

	// The operator creates an agency through the form.
	{
		b := c.Browser()
		if st := b.SignIn(c.OperatorUser()); st != http.StatusOK || pathOf(t, b.Location()) != "/operator/agencies" {
			t.Fatalf("operator sign-in: status %d on %s, want /operator/agencies", st, b.Location())
		}
		if got := b.Text("#agency-table"); !strings.Contains(got, harness.DemoName) {
			t.Errorf("agency table %q does not list %s", got, harness.DemoName)
		}
		b.Fill("#name", "Harbor City")
		b.Fill("#slug", "harbor-city")
		if st := b.Click(`form[action="/operator/agencies"] button[type="submit"]`); st != http.StatusOK {
			t.Fatalf("creating an agency landed with status %d", st)
		}
		if p := pathOf(t, b.Location()); p != "/operator/agencies/harbor-city" {
			t.Errorf("after creating an agency the browser is on %s", p)
		}
		if got := b.Text(".usa-alert--success"); !strings.Contains(got, "Harbor City created") {
			t.Errorf("success message = %q", got)
		}
		a, err := models.NewAgencyStore(c.DB()).BySlug(context.Background(), "harbor-city")
		if err != nil || a.Name != "Harbor City" {
			t.Fatalf("agency harbor-city in the database: %+v, %v", a, err)
		}
		var audited bool
		for _, e := range c.AuditEvents("agency.create") {
			if e.AgencyID == a.ID && e.ActorName == "Otto Operator" && e.Outcome == "success" {
				audited = true
			}
		}
		if !audited {
			t.Error("no agency.create audit event by Otto Operator for harbor-city")
		}
	}
}

func TestSecurityHeadersAndCSRF(t *testing.T) {
	t.Parallel()
	c := demoConsole(t, harness.Options{})
	b := c.Browser()
	signInAdmin(t, c, b)

	resp := b.OpenResponse(dashboardPath)
	csp := header(resp, "Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy = %q, want one without unsafe-inline/unsafe-eval", csp)
	}
	for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if got := header(resp, "X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}

	cookies := b.Cookies()
	var sess *http.Cookie
	for _, ck := range cookies {
		if ck.Name == sessionCookie {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode {
		t.Errorf("session cookie = %+v, want HttpOnly and SameSite=Lax", sess)
	}

	token := b.Value(`input[name="_csrf"]`)
	if token == "" {
		t.Fatal("no _csrf field on the dashboard")
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
	}{
		{"no token", url.Values{"agency": {harness.DemoSlug}}, http.StatusForbidden},
		{"forged token", url.Values{"agency": {harness.DemoSlug}, "_csrf": {tamper(token)}}, http.StatusForbidden},
		{"empty token", url.Values{"agency": {harness.DemoSlug}, "_csrf": {""}}, http.StatusForbidden},
		{"the page's token", url.Values{"agency": {harness.DemoSlug}, "_csrf": {token}}, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := harness.NewClient(t, c.URL)
			cl.SetCookies(cookies)
			r := cl.PostForm("/switch-agency", tt.form)
			if r.Status != tt.status {
				t.Errorf("POST /switch-agency: status %d, want %d", r.Status, tt.status)
			}
			if tt.status == http.StatusSeeOther && r.Location() != dashboardPath {
				t.Errorf("POST /switch-agency redirected to %q, want %s", r.Location(), dashboardPath)
			}
		})
	}
}

// header reads a response header case-insensitively.
func header(resp *network.Response, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}
