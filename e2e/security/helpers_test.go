package security

import (
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

// LongEnv names the variable that turns the long tests on (make test-long).
const LongEnv = "KEYCONSOLE_TEST_LONG"

// Other County: the second agency every multi-agency test uses.
const (
	OtherSlug        = "other-county"
	OtherName        = "Other County"
	GroupOtherAdmins = "other-admins"
)

// requireLong skips a long test unless KEYCONSOLE_TEST_LONG=1; `make
// test-long` (run by CI) sets it.
func requireLong(t *testing.T) {
	t.Helper()
	if os.Getenv(LongEnv) != "1" {
		t.Skipf("long security test: run with `make test-long` (%s=1)", LongEnv)
	}
}

// OtherAdminUser is Olga, admin of Other County and nothing else.
func OtherAdminUser() harness.User {
	return harness.User{Subject: "e2e-other-admin", Email: "olga.admin@other-county.example", EmailVerified: true, Name: "Olga Other", Groups: []string{GroupOtherAdmins}}
}

// seedAgencies creates Demo County (with its admin, reviewer and viewer
// groups) and Other County (with its admin group) through the real CLI.
func seedAgencies(c *harness.Console) {
	c.SeedDemo()
	c.MustCLI("agency", "create", OtherSlug, "--name", OtherName)
	c.MustCLI("agency", "map", OtherSlug, "--provider", harness.ProviderID, "--group", GroupOtherAdmins, "--role", "admin")
}

// signIn runs the whole OIDC sign-in of u with plain HTTP requests (console,
// provider, console) in the client's cookie jar and returns the console's
// answer to the callback.
func signIn(t *testing.T, c *harness.Console, cl *harness.Client, u harness.User) harness.Response {
	t.Helper()
	c.Queue(u)
	start := cl.Get("/auth/login/" + harness.ProviderID)
	if start.Status != http.StatusFound {
		t.Fatalf("GET /auth/login/%s: %d", harness.ProviderID, start.Status)
	}
	authz := cl.Get(start.Location())
	if authz.Status != http.StatusFound || !strings.Contains(authz.Location(), "/auth/callback/") {
		t.Fatalf("provider authorization: %d %q", authz.Status, authz.Location())
	}
	return cl.Get(authz.Location())
}

// signedIn returns a client signed in as u; the sign-in must succeed.
func signedIn(t *testing.T, c *harness.Console, u harness.User) *harness.Client {
	t.Helper()
	cl := harness.NewClient(t, c.URL)
	if r := signIn(t, c, cl, u); r.Status != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: %d\n%s", u.Subject, r.Status, r.Body)
	}
	return cl
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token rendered in a page, or "".
func csrfOf(body string) string {
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// csrfToken returns the client's CSRF token, read from a page that renders
// it (the sign-in page for anonymous clients, the home page otherwise).
func csrfToken(t *testing.T, cl *harness.Client) string {
	t.Helper()
	for _, p := range []string{"/signin", "/a/" + harness.DemoSlug + "/", "/operator/agencies", "/a/" + OtherSlug + "/"} {
		if tok := csrfOf(cl.Get(p).Body); tok != "" {
			return tok
		}
	}
	t.Fatalf("no page rendered a CSRF token for this client")
	return ""
}

// inputValue returns the value of the named input in a page, or "".
func inputValue(body, name string) string {
	re := regexp.MustCompile(`<input[^>]*name="` + regexp.QuoteMeta(name) + `"[^>]*>`)
	tag := re.FindString(body)
	if tag == "" {
		return ""
	}
	m := regexp.MustCompile(`value="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// fromAddr returns an HTTP client whose connections leave from the given
// loopback address (127.0.0.2, 127.0.0.3 ...), so the console sees distinct
// source addresses while every packet stays on the loopback interface.
func fromAddr(t *testing.T, base, local string) *harness.Client {
	t.Helper()
	cl := harness.NewClient(t, base)
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	cl.HTTP.Jar = jar
	cl.HTTP.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || (host != "127.0.0.1" && host != "::1") {
			return nil, &net.AddrError{Err: "tests only dial loopback", Addr: addr}
		}
		return d.DialContext(ctx, network, addr)
	}}
	return cl
}

// sources counts the loopback source addresses handed out by uniqueSource.
var sources atomic.Int64

// uniqueSource returns a client whose connections leave from a loopback
// address (127.0.x.y) no other uniqueSource client of this test process
// uses, so per-address limits of one request never touch another.
func uniqueSource(t *testing.T, base string) *harness.Client {
	t.Helper()
	n := sources.Add(1)
	if n >= 250*250 {
		t.Fatalf("out of loopback source addresses")
	}
	return fromAddr(t, base, fmt.Sprintf("127.0.%d.%d", 1+n/250, 1+n%250))
}

// agencyIDOf returns an agency's id from the console's database.
func agencyIDOf(t *testing.T, c *harness.Console, slug string) int64 {
	t.Helper()
	a, err := models.NewAgencyStore(c.DB()).BySlug(context.Background(), slug)
	if err != nil {
		t.Fatalf("agency %s: %v", slug, err)
	}
	return a.ID
}

// verifyAudit runs `keyconsole audit verify` against the console's data: it
// must report every chain intact (exit 0).
func verifyAudit(t *testing.T, c *harness.Console) {
	t.Helper()
	if r := c.CLI("audit", "verify"); r.Code != 0 {
		t.Fatalf("audit verify: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// form builds url.Values from pairs.
func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// reauth runs the recent-sign-in round trip of cl as u (the console's
// confirm page, the provider asked with max_age=0 and prompt=login, the
// callback) and returns the console's answer to the callback.
func reauth(t *testing.T, c *harness.Console, cl *harness.Client, u harness.User, returnTo string) harness.Response {
	t.Helper()
	page := cl.Get("/auth/reauth?return_to=" + url.QueryEscape(returnTo))
	if page.Status != http.StatusOK {
		t.Fatalf("GET /auth/reauth: %d", page.Status)
	}
	c.Queue(u)
	start := cl.PostForm("/auth/reauth", form("_csrf", csrfOf(page.Body), "return_to", returnTo))
	if start.Status != http.StatusFound {
		t.Fatalf("POST /auth/reauth: %d", start.Status)
	}
	if q := queryOf(t, start.Location()); q.Get("max_age") != "0" || q.Get("prompt") != "login" {
		t.Fatalf("re-authentication request without max_age=0 and prompt=login: %s", start.Location())
	}
	authz := cl.Get(start.Location())
	if authz.Status != http.StatusFound || !strings.Contains(authz.Location(), "/auth/callback/") {
		t.Fatalf("provider authorization: %d %q", authz.Status, authz.Location())
	}
	return cl.Get(authz.Location())
}

func queryOf(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return u.Query()
}

// ageSignIn makes every session of the user look signed in 11 minutes ago,
// past the recent-sign-in window.
func ageSignIn(t *testing.T, c *harness.Console, u harness.User) {
	t.Helper()
	err := c.DB().Gorm.Exec("UPDATE sessions SET auth_time = ? WHERE user_id IN (SELECT id FROM users WHERE provider = ? AND subject = ?)",
		time.Now().UTC().Add(-11*time.Minute), harness.ProviderID, u.Subject).Error
	if err != nil {
		t.Fatal(err)
	}
}
