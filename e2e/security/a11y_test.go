package security

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"keyconsole/e2e/harness"
)

// axeSHA256 pins the vendored axe-core (testdata/README.md).
const axeSHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"

// axeRun runs axe-core's WCAG 2.0/2.1 A and AA rules on the page and returns
// the violations with their impact and the first offending elements.
const axeRun = `axe.run(document, {
  runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
  resultTypes: ['violations']
}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact || '', help: v.help,
  nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' — ' + (n.failureSummary || '').split('\n').slice(0, 2).join(' '))
})))`

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

func loadAxe(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/axe.min.js")
	if err != nil {
		t.Fatalf("vendored axe-core: %v", err)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != axeSHA256 {
		t.Fatalf("testdata/axe.min.js does not match the pinned axe-core 4.14.1")
	}
	return string(b)
}

// axeCheck opens path in the browser, injects axe-core and returns the
// serious and critical violations.
func axeCheck(t *testing.T, b *harness.Browser, axe, path string) (int, []axeViolation) {
	t.Helper()
	status := 0
	if path != "" {
		status = b.Open(path)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axe+"\n;true")); err != nil {
		t.Fatalf("inject axe-core into %s: %v", path, err)
	}
	all, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe-core on %s: %v", path, err)
	}
	var out []axeViolation
	for _, v := range all {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return status, out
}

var digits = regexp.MustCompile(`\d+`)

// pageShapes crawls what a client can reach and keeps one page per shape
// (ids replaced), with the query string only for the audit filters, so each
// kind of page is checked once.
func pageShapes(t *testing.T, cl *harness.Client, start []string) []string {
	t.Helper()
	shapes := map[string]string{}
	for p := range crawl(t, cl, start, 250) {
		u, err := url.Parse(p)
		if err != nil || strings.HasPrefix(u.Path, "/dev/") || strings.HasSuffix(u.Path, ".csv") || strings.HasSuffix(u.Path, ".pdf") || strings.HasSuffix(u.Path, ".jsonl") {
			continue
		}
		shape := digits.ReplaceAllString(u.Path, "N")
		if strings.Contains(p, "?") && !strings.Contains(u.Path, "/audit") {
			shape += "?"
		}
		if old, ok := shapes[shape]; !ok || len(p) < len(old) {
			shapes[shape] = p
		}
	}
	var out []string
	for _, p := range shapes {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// a11yConsole is a console with records on every page, for the checks.
func a11yConsole(t *testing.T) *harness.Console {
	t.Helper()
	c := harness.Start(t, harness.Options{SFTP: true, Env: map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	cred := createAPICredential(t, admin, harness.DemoSlug, "Accessible sync", "staging")
	regenerateAPICredential(t, admin, harness.DemoSlug, cred)
	createAPICredential(t, admin, harness.DemoSlug, "Accessible prod", "production")
	acc, _ := createSFTPAccount(t, admin, c, harness.DemoSlug, "prod")
	uploadSSHKey(t, admin, c, harness.DemoSlug, acc, newSSHSigner(t).PublicKey(), "a11y-key")
	createWebhook(t, admin, c, harness.DemoSlug, "Accessible hook", "https://receiver.demo-county.example/hook", "AccessibleSecret01234567")
	return c
}

// TestAccessibility injects axe-core into Chromium on every kind of page
// each role reaches (anonymous, viewer, reviewer, admin, platform
// operator), including error pages, refused forms and the once-only secret
// pages, and fails on any serious or critical WCAG 2.1 A/AA violation.
func TestAccessibility(t *testing.T) {
	requireLong(t)
	t.Parallel()
	axe := loadAxe(t)
	c := a11yConsole(t)
	slug := harness.DemoSlug
	start := []string{"/a/" + slug + "/", "/a/" + slug + "/api-credentials", "/a/" + slug + "/ssh-keys", "/a/" + slug + "/webhooks",
		"/a/" + slug + "/audit", "/a/" + slug + "/reports", "/a/" + slug + "/policy", "/a/" + slug + "/hygiene",
		"/a/" + slug + "/personnel", "/a/" + slug + "/runbooks", "/operator/agencies"}
	var failures []string
	report := func(role, path string, vs []axeViolation) {
		for _, v := range vs {
			failures = append(failures, fmt.Sprintf("%s %s: %s (%s) %s\n      %s", role, path, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n      ")))
		}
	}

	t.Run("anonymous", func(t *testing.T) {
		b := harness.NewBrowser(t, c)
		for _, p := range []string{"/signin", "/signin?reason=idle", "/signed-out", "/no-such-page", "/auth/callback/" + harness.ProviderID + "?state=forged&code=x"} {
			_, vs := axeCheck(t, b, axe, p)
			report("anonymous", p, vs)
		}
	})
	users := map[string]harness.User{"viewer": harness.ViewerUser(), "reviewer": harness.ReviewerUser(), "admin": harness.AdminUser(), "operator": c.OperatorUser()}
	for _, role := range []string{"viewer", "reviewer", "admin", "operator"} {
		t.Run(role, func(t *testing.T) {
			cl := signedIn(t, c, users[role])
			pages := append(pageShapes(t, cl, start), "/a/"+slug+"/no-such-page")
			b := harness.NewBrowser(t, c)
			if st := b.SignIn(users[role]); st != http.StatusOK {
				t.Fatalf("%s sign-in in Chromium: %d", role, st)
			}
			for _, p := range pages {
				_, vs := axeCheck(t, b, axe, p)
				report(role, p, vs)
			}
			if role != "admin" {
				return
			}
			// Pages that only a form submission shows: a refused form and
			// the once-only secret page.
			b.Open("/a/" + slug + "/api-credentials/new")
			b.Click(`form[action$="/api-credentials"] button[type="submit"]`)
			_, vs := axeCheck(t, b, axe, "")
			report(role, "refused credential form", vs)
			b.Open("/a/" + slug + "/api-credentials/new")
			b.Fill("#name", "Axe checked")
			b.Click(`form[action$="/api-credentials"] button[type="submit"]`)
			if !b.Has("#client-secret") {
				t.Fatalf("no secret page after creating a credential")
			}
			_, vs = axeCheck(t, b, axe, "")
			report(role, "credential secret page", vs)
		})
	}
	t.Run("development provider", func(t *testing.T) {
		dev := startDev(t)
		b := harness.NewBrowser(t, &harness.Console{URL: dev.url})
		_, vs := axeCheck(t, b, axe, dev.url+"/signin")
		report("dev", "/signin", vs)
		if st := b.Click("#signin-dev"); st != http.StatusOK {
			t.Fatalf("development sign-in: %d", st)
		}
		_, vs = axeCheck(t, b, axe, "")
		report("dev", "development provider's user choice", vs)
		if st := b.Click("#devuser-dev-admin"); st != http.StatusOK {
			t.Fatalf("development sign-in as dev-admin: %d", st)
		}
		_, vs = axeCheck(t, b, axe, "")
		report("dev", "dashboard after development sign-in", vs)
	})
	if len(failures) > 0 {
		t.Fatalf("serious or critical accessibility violations (%d):\n  %s", len(failures), strings.Join(failures, "\n  "))
	}
}

// keyboard drives the focused element with keys only.
type keyboard struct {
	t *testing.T
	b *harness.Browser
}

func (k keyboard) press(keys string) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(k.b.Context(), 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.KeyEvent(keys)); err != nil {
		k.t.Fatalf("press %q: %v", keys, err)
	}
}

func (k keyboard) focused(sel string) bool {
	k.t.Helper()
	q, _ := json.Marshal(sel)
	ctx, cancel := context.WithTimeout(k.b.Context(), 15*time.Second)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.activeElement && document.activeElement.matches(`+string(q)+`)`))
	if err != nil {
		k.t.Fatalf("focus check: %v", err)
	}
	return ok
}

// tabTo presses Tab until the element matching sel has the focus; it fails
// if that takes more than max presses (the element is not reachable).
func (k keyboard) tabTo(sel string, max int) {
	k.t.Helper()
	for i := 0; i < max; i++ {
		k.press(kb.Tab)
		if k.focused(sel) {
			return
		}
	}
	k.t.Fatalf("%s is not reachable with Tab within %d presses (page %s)", sel, max, k.b.Location())
}

// waitPath waits until the browser shows a page whose path is want.
func (k keyboard) waitPath(want string) {
	k.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		u, err := url.Parse(k.b.Location())
		if err == nil && u.Path == want {
			return
		}
	}
	k.t.Fatalf("the browser did not reach %s (it is on %s)", want, k.b.Location())
}

// TestKeyboardOnlySignInAndCredentialCreation signs in and creates an API
// credential in Chromium with the keyboard alone: the skip link is the
// first stop, every control is reached with Tab, and Enter submits.
func TestKeyboardOnlySignInAndCredentialCreation(t *testing.T) {
	requireLong(t)
	t.Parallel()
	c := harness.Start(t, harness.Options{})
	seedAgencies(c)
	b := harness.NewBrowser(t, c)
	k := keyboard{t: t, b: b}
	c.Queue(harness.AdminUser())
	b.Open("/signin")
	k.press(kb.Tab)
	if !k.focused("a.usa-skipnav") {
		t.Fatalf("the first Tab stop is not the skip link")
	}
	k.press(kb.Enter)
	k.tabTo("#signin-"+harness.ProviderID, 10)
	k.press(kb.Enter)
	k.waitPath("/a/" + harness.DemoSlug + "/")

	b.Open("/a/" + harness.DemoSlug + "/api-credentials")
	k.tabTo(`a[href="/a/`+harness.DemoSlug+`/api-credentials/new"]`, 40)
	k.press(kb.Enter)
	k.waitPath("/a/" + harness.DemoSlug + "/api-credentials/new")
	k.tabTo("#name", 40)
	for _, r := range "Keyboard sync" {
		k.press(string(r))
	}
	k.tabTo("#environment-staging, #environment-production", 10)
	k.press(kb.ArrowDown) // radio group: the arrow key picks production
	if !k.focused("#environment-production:checked") {
		t.Fatalf("the arrow key did not choose the production environment")
	}
	k.tabTo(`form[action$="/api-credentials"] button[type="submit"]`, 20)
	k.press(kb.Enter)
	for deadline := time.Now().Add(20 * time.Second); !b.Has("#client-secret"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no secret page after submitting with Enter (page %s)", b.Location())
		}
	}
	if got := b.Text("#secret-heading"); !strings.Contains(got, "Keyboard sync") {
		t.Fatalf("secret page heading %q", got)
	}
	if !strings.HasPrefix(b.Text("#client-id"), "ecd_prd_") {
		t.Fatalf("the credential was not created for production: %s", b.Text("#client-id"))
	}
	// The way on from the secret page is reachable too.
	k.tabTo("#done", 30)
}
