package web

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/agencies"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

const secSessionKey = "security-web-test-session-key-0123456789abcdef"

// secClock is the auth service's clock, moved forward to end sessions.
type secClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *secClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *secClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// secUser is a mockoidc user whose ID token carries auth_time, as a provider
// answering max_age must send it.
type secUser struct{ mockoidc.MockUser }

func (u *secUser) Claims(scope []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c, err := u.MockUser.Claims(scope, base)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	m := jwt.MapClaims{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["auth_time"] = time.Now().Unix()
	return m, nil
}

// secStack is the real console (web.New over real SQLite) with one real
// OIDC provider, mockoidc on 127.0.0.1. Its discovery document also names an
// end-session endpoint on a second 127.0.0.1 listener, so the provider's
// endpoints are on two origins, one of them not its issuer's.
type secStack struct {
	srv          *httptest.Server
	web          *Server
	idp          *mockoidc.MockOIDC
	idpOrigin    string
	logoutOrigin string
	agencies     *models.AgencyStore
	clock        *secClock
	sessions     map[string]string
}

func newSecStack(t *testing.T) secStack {
	t.Helper()
	ctx := context.Background()

	logout := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "signed out of the provider")
	}))
	t.Cleanup(logout.Close)
	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			doc := map[string]any{}
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			doc["end_session_endpoint"] = logout.URL + "/logout"
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
		})
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })

	db := modelstest.Open(t, models.SQLite)
	audits := models.NewAuditStore(db)
	rec := audit.NewRecorder(db, audits, nil)
	as := models.NewAgencyStore(db)
	ag := agencies.NewService(db, as, rec, nil)
	users := models.NewUserStore(db)
	clock := &secClock{}
	asvc := auth.NewService(db, users, as, models.NewSessionStore(db), rec, auth.Config{Operators: []string{"okta:ops@example.gov"}, Clock: clock.now})
	sys := audit.Actor{Type: audit.ActorSystem, ID: "test"}
	demo, err := ag.Create(ctx, sys, audit.Origin{}, "demo-county", "Demo County")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ag.Map(ctx, sys, audit.Origin{}, demo.ID, "mock", "demo-admins", models.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	mock := auth.ProviderInfo{ID: "mock", Kind: auth.KindGeneric, Label: "Mock", GroupsClaim: "groups"}
	st := secStack{idp: idp, logoutOrigin: logout.URL, agencies: as, clock: clock, sessions: map[string]string{}}
	for name, u := range map[string]struct {
		p auth.ProviderInfo
		c auth.Claims
	}{
		"admin":    {mock, auth.Claims{Subject: "ada", Email: "ada@example.gov", EmailVerified: true, Name: "Ada Admin", Groups: []string{"demo-admins"}}},
		"admin2":   {mock, auth.Claims{Subject: "bea", Email: "bea@example.gov", EmailVerified: true, Name: "Bea Admin", Groups: []string{"demo-admins"}}},
		"operator": {auth.ProviderInfo{ID: "okta", Kind: auth.KindOkta}, auth.Claims{Subject: "ops", Email: "ops@example.gov", EmailVerified: true, Name: "Otto Operator"}},
	} {
		_, token, err := asvc.SignIn(ctx, u.p, u.c, audit.Origin{})
		if err != nil {
			t.Fatalf("sign-in of %s: %v", name, err)
		}
		st.sessions[name] = token
	}

	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := handlers.New(handlers.Deps{Logger: log, Auth: asvc, Agencies: ag, Users: users, Audit: audits})
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	cfg := idp.Config()
	u, _ := url.Parse(cfg.Issuer)
	st.idpOrigin = u.Scheme + "://" + u.Host
	prov := &OIDCProvider{Info: mock, Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Scopes: []string{"openid", "email", "profile", "groups"}, HTTPClient: &http.Client{Timeout: 10 * time.Second}}
	s, err := New(Config{BaseURL: base, SessionKeys: []string{secSessionKey}, Providers: []*OIDCProvider{prov}},
		Deps{Logger: log, Auth: asvc, Handlers: h})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Echo
	ts.Start()
	t.Cleanup(ts.Close)
	st.srv, st.web = ts, s
	return st
}

// browser returns a client with a cookie jar that follows no redirect.
func (st secStack) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// client returns a browser holding the named user's session cookie.
func (st secStack) client(t *testing.T, user string) *http.Client {
	t.Helper()
	v, err := st.web.jar.encodeSessionToken(st.sessions[user])
	if err != nil {
		t.Fatal(err)
	}
	c := st.browser(t)
	u, _ := url.Parse(st.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: st.web.jar.sessionName, Value: v, Path: "/"}})
	return c
}

// cookie returns the value of the client's cookie of that name, or "".
func (st secStack) cookie(c *http.Client, name string) string {
	u, _ := url.Parse(st.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

var secCSRFField = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)

// csrfOf returns the CSRF token of the first form in a page.
func csrfOf(t *testing.T, r acReply) string {
	t.Helper()
	m := secCSRFField.FindStringSubmatch(r.body)
	if m == nil || m[1] == "" {
		t.Fatalf("no CSRF token in the page (status %d)", r.status)
	}
	return html.UnescapeString(m[1])
}

// follow makes the request and, while the answer is a redirect to the
// provider or back to the console's callback, follows it: a browser's
// round trip through the IdP. It returns the first answer that is neither.
func (st secStack) follow(t *testing.T, c *http.Client, req *http.Request) acReply {
	t.Helper()
	r := acDo(t, c, req)
	for i := 0; i < 5 && (r.status == http.StatusFound || r.status == http.StatusSeeOther); i++ {
		loc := r.header.Get("Location")
		if !strings.HasPrefix(loc, st.idpOrigin) && !strings.HasPrefix(loc, st.srv.URL+"/auth/callback/") && !strings.HasPrefix(loc, "/auth/callback/") {
			return r
		}
		if strings.HasPrefix(loc, "/") {
			loc = st.srv.URL + loc
		}
		r = acGet(t, c, loc)
	}
	return r
}

// signIn signs the browser in through the provider as u, starting from the
// sign-in page the way a person does, and returns the callback's answer.
func (st secStack) signIn(t *testing.T, c *http.Client, u mockoidc.MockUser, returnTo string) acReply {
	t.Helper()
	page := acGet(t, c, st.srv.URL+"/signin")
	if page.status == http.StatusSeeOther {
		// Signed in already: /signin sends the browser on, so sign in
		// again from the dashboard's token.
		page = acGet(t, c, st.srv.URL+"/a/demo-county/")
	}
	st.idp.QueueUser(&secUser{u})
	req, _ := http.NewRequest(http.MethodPost, st.srv.URL+"/auth/login/mock",
		strings.NewReader(url.Values{"_csrf": {csrfOf(t, page)}, "return_to": {returnTo}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return st.follow(t, c, req)
}

var ada = mockoidc.MockUser{Subject: "ada", Email: "ada@example.gov", EmailVerified: true, Groups: []string{"demo-admins"}}

// formAction returns the sources of a CSP's form-action directive, sorted.
func formAction(t *testing.T, csp string) []string {
	t.Helper()
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 && f[0] == "form-action" {
			out := slices.Clone(f[1:])
			slices.Sort(out)
			return out
		}
	}
	t.Fatalf("no form-action in %q", csp)
	return nil
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestFinding02_ReturnToStaysOnTheConsole(t *testing.T) {
	st := newSecStack(t)
	base := st.srv.URL
	host := strings.TrimPrefix(base, "http://")
	kept := []string{
		"/",
		"/a/demo-county/",
		"/a/demo-county/api-credentials?environment=production&page=2",
		"/a/demo-county/audit?q=a%20b&from=2026-01-01",
	}
	refused := []string{
		// What browsers read as //evil.example once they drop tabs and
		// newlines and read a backslash as a slash (WHATWG URL).
		"/\t/evil.example", "\t//evil.example", "/\n/evil.example", "/\r\n/evil.example", " //evil.example",
		"/\\evil.example", "\\\\evil.example", "\\/evil.example", "/\\/evil.example",
		"//evil.example", "///evil.example", "//evil.example/a/demo-county/",
		// Encoded slashes and backslashes that decode to the same.
		"%2f%2fevil.example", "/%2f%2fevil.example", "/%2F/evil.example", "/%5cevil.example", "/%5C%5Cevil.example",
		// Other origins, userinfo, other schemes.
		"https://evil.example/", "http://evil.example", "https:evil.example", "http:/\\evil.example",
		"//user@evil.example", "http://user:pw@" + host + "/a/demo-county/", "http://" + host + "@evil.example/",
		"https://" + host + "/a/demo-county/", "javascript:alert(1)", "data:text/html,x",
		// Not a page to come back to, or not clean.
		"/auth/signout", "/a//evil.example", "/a/demo-county/" + strings.Repeat("x", 1000),
		"a/demo-county/", "",
	}
	type tc struct{ raw, want string }
	var cases []tc
	for _, k := range kept {
		cases = append(cases, tc{k, k})
	}
	// An absolute URL of the console itself comes back as its path.
	cases = append(cases, tc{base + "/a/demo-county/api-credentials?page=2", "/a/demo-county/api-credentials?page=2"})
	for _, r := range refused {
		cases = append(cases, tc{r, "/"})
	}

	// A signed-in visitor of /signin is sent straight to return_to.
	admin := st.client(t, "admin")
	for _, c := range cases {
		r := acGet(t, admin, base+"/signin?return_to="+url.QueryEscape(c.raw))
		if r.status != http.StatusSeeOther || r.header.Get("Location") != c.want {
			t.Errorf("return_to %q: %d to %q, want %q", c.raw, r.status, r.header.Get("Location"), c.want)
		}
	}
	// The sign-in page carries only the safe target into its form.
	browser := st.browser(t)
	if r := acGet(t, browser, base+"/signin?return_to=%2F%09%2Fevil.example"); !strings.Contains(r.body, `name="return_to" value="/"`) {
		t.Errorf("sign-in page keeps the tab form:\n%s", acMain.FindString(r.body))
	}

	// Through the whole round trip: a link starting the sign-in with the
	// tab form ends on the console's home page ...
	req, _ := http.NewRequest(http.MethodGet, base+"/auth/login/mock?return_to=%2F%09%2Fevil.example", nil)
	st.idp.QueueUser(&secUser{ada})
	if r := st.follow(t, browser, req); r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		t.Errorf("sign-in with return_to /<TAB>/evil.example: %d to %q, want /", r.status, r.header.Get("Location"))
	}
	// ... and a good target is kept through it.
	other := st.browser(t)
	if r := st.signIn(t, other, ada, "/a/demo-county/api-credentials?page=2"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/a/demo-county/api-credentials?page=2" {
		t.Errorf("sign-in with a good return_to: %d to %q", r.status, r.header.Get("Location"))
	}
	// Re-authentication the same (the browser is signed in now).
	for _, c := range []tc{{"/\t/evil.example", "/"}, {"/\\evil.example", "/"}, {"/a/demo-county/?x=1", "/a/demo-county/?x=1"}} {
		page := acGet(t, browser, base+"/auth/reauth?return_to="+url.QueryEscape(c.raw))
		if !strings.Contains(page.body, `name="return_to" value="`+html.EscapeString(c.want)+`"`) {
			t.Errorf("re-auth page for %q does not carry %q", c.raw, c.want)
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/auth/reauth", strings.NewReader(url.Values{"_csrf": {csrfOf(t, page)}, "return_to": {c.raw}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		st.idp.QueueUser(&secUser{ada})
		if r := st.follow(t, browser, req); r.status != http.StatusSeeOther || r.header.Get("Location") != c.want {
			t.Errorf("re-auth with return_to %q: %d to %q, want %q\n%s", c.raw, r.status, r.header.Get("Location"), c.want, acMain.FindString(r.body))
		}
	}
}

// postForm posts a form as the client, with extra headers.
func postForm(t *testing.T, c *http.Client, u string, form url.Values, hdr http.Header) acReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header[k] = v
	}
	return acDo(t, c, req)
}

func TestFinding11_CSRFTokenOnlyFromTheBodyOrAHeader(t *testing.T) {
	st := newSecStack(t)
	base := st.srv.URL
	admin := st.client(t, "admin")
	token := csrfOf(t, acGet(t, admin, base+"/a/demo-county/"))

	if r := postForm(t, admin, base+"/switch-agency?_csrf="+url.QueryEscape(token), url.Values{"agency": {"demo-county"}}, nil); r.status != http.StatusForbidden {
		t.Errorf("token in the query string: %d, want 403", r.status)
	}
	if r := postForm(t, admin, base+"/switch-agency?_csrf="+url.QueryEscape(token), url.Values{"agency": {"demo-county"}, "_csrf": {""}}, nil); r.status != http.StatusForbidden {
		t.Errorf("token in the query string and an empty one in the body: %d, want 403", r.status)
	}
	if r := postForm(t, admin, base+"/switch-agency", url.Values{"agency": {"demo-county"}, "_csrf": {token}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("token in the form body: %d, want 303", r.status)
	}
	if r := postForm(t, admin, base+"/switch-agency", url.Values{"agency": {"demo-county"}}, http.Header{"X-Csrf-Token": {token}}); r.status != http.StatusSeeOther {
		t.Errorf("token in the X-CSRF-Token header: %d, want 303", r.status)
	}
	// A multipart form (the SSH key upload) carries it in its body too.
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("_csrf", token)
	_ = w.WriteField("agency", "demo-county")
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/switch-agency", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if r := acDo(t, admin, req); r.status != http.StatusSeeOther {
		t.Errorf("token in a multipart body: %d, want 303", r.status)
	}
}

func TestFinding11_CSRFTokenBoundToTheSession(t *testing.T) {
	st := newSecStack(t)
	base := st.srv.URL
	a := st.client(t, "admin")
	tokenA := csrfOf(t, acGet(t, a, base+"/a/demo-county/"))
	csrfCookie := st.cookie(a, st.web.jar.csrfName)
	if csrfCookie == "" {
		t.Fatal("no CSRF cookie")
	}

	// Another session holding the same CSRF cookie (planted, or a shared
	// browser) does not get the same token, and A's token is refused there.
	b := st.client(t, "admin2")
	u, _ := url.Parse(base)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: st.web.jar.csrfName, Value: csrfCookie, Path: "/"}})
	tokenB := csrfOf(t, acGet(t, b, base+"/a/demo-county/"))
	if st.cookie(b, st.web.jar.csrfName) != csrfCookie {
		t.Fatal("the planted CSRF cookie was replaced")
	}
	if tokenB == tokenA {
		t.Error("two sessions with the same CSRF cookie get the same token")
	}
	if r := postForm(t, b, base+"/switch-agency", url.Values{"agency": {"demo-county"}, "_csrf": {tokenA}}, nil); r.status != http.StatusForbidden {
		t.Errorf("another session's token: %d, want 403", r.status)
	}
	if r := postForm(t, b, base+"/switch-agency", url.Values{"agency": {"demo-county"}}, http.Header{"X-Csrf-Token": {tokenA}}); r.status != http.StatusForbidden {
		t.Errorf("another session's token in the header: %d, want 403", r.status)
	}
	if r := postForm(t, b, base+"/switch-agency", url.Values{"agency": {"demo-county"}, "_csrf": {tokenB}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("the session's own token: %d, want 303", r.status)
	}
}

func TestFinding11_SignInWorksWithTheSessionBoundToken(t *testing.T) {
	st := newSecStack(t)
	base := st.srv.URL
	c := st.browser(t)

	// The sign-in form's token belongs to no session yet.
	before := csrfOf(t, acGet(t, c, base+"/signin"))
	if r := st.signIn(t, c, ada, "/a/demo-county/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/a/demo-county/" {
		t.Fatalf("sign-in: %d to %q\n%s", r.status, r.header.Get("Location"), acMain.FindString(r.body))
	}
	// The session is new, so is the token; the one from before sign-in no
	// longer works.
	after := csrfOf(t, acGet(t, c, base+"/a/demo-county/"))
	if after == before {
		t.Error("the token did not change at sign-in")
	}
	if r := postForm(t, c, base+"/switch-agency", url.Values{"agency": {"demo-county"}, "_csrf": {before}}, nil); r.status != http.StatusForbidden {
		t.Errorf("the pre-sign-in token after sign-in: %d, want 403", r.status)
	}
	if r := postForm(t, c, base+"/switch-agency", url.Values{"agency": {"demo-county"}, "_csrf": {after}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("the session's token: %d, want 303", r.status)
	}

	// Signing in again (a new session id) makes a new token, and the old
	// session's is refused.
	if r := st.signIn(t, c, ada, "/a/demo-county/"); r.status != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d", r.status)
	}
	again := csrfOf(t, acGet(t, c, base+"/a/demo-county/"))
	if again == after {
		t.Error("the token did not change with the session")
	}
	if r := postForm(t, c, base+"/switch-agency", url.Values{"agency": {"demo-county"}, "_csrf": {after}}, nil); r.status != http.StatusForbidden {
		t.Errorf("the previous session's token: %d, want 403", r.status)
	}

	// Sign-out with the session's token, then sign in again from the page
	// the browser is left on.
	if r := postForm(t, c, base+"/auth/signout", url.Values{"_csrf": {again}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", r.status)
	}
	if r := st.signIn(t, c, ada, "/a/demo-county/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/a/demo-county/" {
		t.Fatalf("sign-in after sign-out: %d to %q", r.status, r.header.Get("Location"))
	}

	// A form submitted after the session locked says the session ended,
	// not that the form is forged.
	last := csrfOf(t, acGet(t, c, base+"/a/demo-county/"))
	st.clock.advance(31 * time.Minute)
	r := postForm(t, c, base+"/switch-agency", url.Values{"agency": {"demo-county"}, "_csrf": {last}}, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Sign in required") {
		t.Errorf("form of a locked session: %d\n%s", r.status, acMain.FindString(r.body))
	}
}

func TestFinding12_FormActionNamesOnlyTheProvidersEndpoints(t *testing.T) {
	st := newSecStack(t)
	base := st.srv.URL
	anon := st.browser(t)

	// Before discovery the provider is known by its issuer only.
	first := acGet(t, anon, base+"/signin")
	if got, want := formAction(t, first.header.Get("Content-Security-Policy")), sorted("'self'", st.idpOrigin); !slices.Equal(got, want) {
		t.Errorf("form-action before discovery: %q, want %q", got, want)
	}
	// Once discovered: the authorization and end-session endpoints' origins.
	if r := acGet(t, anon, base+"/auth/login/mock"); r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), st.idpOrigin+"/") {
		t.Fatalf("sign-in start: %d %q", r.status, r.header.Get("Location"))
	}
	want := sorted("'self'", st.idpOrigin, st.logoutOrigin)
	admin := st.client(t, "admin")
	for _, r := range []acReply{acGet(t, anon, base+"/signin"), acGet(t, admin, base+"/a/demo-county/"), acGet(t, admin, base+"/no/such/page"), acGet(t, anon, base+"/healthz")} {
		csp := r.header.Get("Content-Security-Policy")
		if got := formAction(t, csp); !slices.Equal(got, want) {
			t.Errorf("form-action: %q, want %q", got, want)
		}
		for _, d := range strings.Split(csp, ";") {
			for _, src := range strings.Fields(d)[1:] {
				if src == "http:" || src == "https:" || src == "*" {
					t.Errorf("CSP %q allows a whole scheme: %q", csp, src)
				}
			}
		}
	}
	// Sign-out, a form post, ends at the provider's end-session endpoint,
	// the origin the policy names for it.
	c := st.browser(t)
	if r := st.signIn(t, c, ada, "/a/demo-county/"); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", r.status)
	}
	token := csrfOf(t, acGet(t, c, base+"/a/demo-county/"))
	if r := postForm(t, c, base+"/auth/signout", url.Values{"_csrf": {token}}, nil); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), st.logoutOrigin+"/logout?") {
		t.Errorf("sign-out: %d to %q", r.status, r.header.Get("Location"))
	}
}

func TestFinding14_AuthenticatedResponsesAreNotStored(t *testing.T) {
	st := newACStack(t, modelstest.Open(t, models.SQLite), acOptions{})
	cred, _ := st.create(t, "Case sync", "staging")
	id := strconv.FormatInt(cred.ID, 10)
	users := []string{"demo-admins", "demo-viewers"}
	checked := 0
	for _, rt := range st.web.Echo.Routes() {
		p := rt.Path
		if rt.Method != http.MethodGet || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/.well-known/") || strings.HasPrefix(p, "/oauth/") ||
			p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasSuffix(p, "/*") {
			continue
		}
		p = strings.ReplaceAll(p, ":agency", "demo-county")
		p = strings.ReplaceAll(p, ":id", id)
		p = strings.ReplaceAll(p, ":provider", "okta")
		p = strings.ReplaceAll(p, ":slug", "demo-county")
		for _, u := range users {
			r := acGet(t, st.client(t, u), st.srv.URL+p)
			checked++
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("GET %s as %s: %d with Cache-Control %q, want no-store", p, u, r.status, cc)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d authenticated pages checked", checked)
	}
	// Refusals, missing pages and form answers too.
	admin := st.client(t, "demo-admins")
	token := csrfOf(t, acGet(t, admin, st.srv.URL+"/a/demo-county/"))
	for _, r := range []acReply{
		acGet(t, admin, st.srv.URL+"/a/demo-county/no-such-page"),
		acGet(t, admin, st.srv.URL+"/a/other-county/"),
		postForm(t, admin, st.srv.URL+"/switch-agency", url.Values{"agency": {"demo-county"}, "_csrf": {token}}, nil),
		postForm(t, admin, st.srv.URL+"/switch-agency", url.Values{"agency": {"demo-county"}}, nil),
	} {
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("answer %d to a signed-in user: Cache-Control %q, want no-store", r.status, cc)
		}
	}
	// Public assets stay cacheable.
	if r := acGet(t, admin, st.srv.URL+"/static/app.css"); r.status != http.StatusOK || r.header.Get("Cache-Control") == "no-store" {
		t.Errorf("static asset: %d, Cache-Control %q", r.status, r.header.Get("Cache-Control"))
	}
}

// manyFields is a form of n fields, the CSRF token first.
func manyFields(token string, n int) string {
	var b strings.Builder
	b.WriteString("_csrf=" + url.QueryEscape(token) + "&name=Rogue+County&slug=rogue-county")
	for i := 4; i <= n; i++ {
		b.WriteString("&f" + strconv.Itoa(i) + "=x")
	}
	return b.String()
}

func TestFinding15_TooManyFormFieldsIsNotACSRFRefusal(t *testing.T) {
	st := newSecStack(t)
	base := st.srv.URL
	op := st.client(t, "operator")
	token := csrfOf(t, acGet(t, op, base+"/operator/agencies"))

	req, _ := http.NewRequest(http.MethodPost, base+"/operator/agencies", strings.NewReader(manyFields(token, 10001)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := acDo(t, op, req)
	if r.status != http.StatusRequestEntityTooLarge && r.status != http.StatusBadRequest {
		t.Errorf("10,001 fields: %d, want 413 or 400", r.status)
	}
	main := acMain.FindString(r.body)
	for _, bad := range []string{"csrf", "CSRF", "Not allowed", "reload the page", "goroutine", ".go:"} {
		if strings.Contains(r.body, bad) && (bad != "csrf" || strings.Contains(main, bad)) {
			t.Errorf("10,001 fields: the answer says %q:\n%s", bad, main)
		}
	}
	if !strings.Contains(main, "fields") {
		t.Errorf("10,001 fields: the answer does not say what is wrong:\n%s", main)
	}
	if _, err := st.agencies.BySlug(context.Background(), "rogue-county"); err == nil {
		t.Error("the refused form created an agency")
	}
	// A body over the limit without a declared length is too large, not
	// forged either.
	big := manyFields(token, 3) + "&pad=" + strings.Repeat("x", 2<<20)
	req, _ = http.NewRequest(http.MethodPost, base+"/operator/agencies", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := acDo(t, op, req); r.status != http.StatusRequestEntityTooLarge || strings.Contains(r.body, "Not allowed") {
		t.Errorf("a 2 MB chunked form: %d, want 413", r.status)
	}

	// 10,000 fields are within the limit (one padding field makes way for
	// the agency).
	req, _ = http.NewRequest(http.MethodPost, base+"/switch-agency", strings.NewReader(strings.Replace(manyFields(token, 10000), "&f4=x", "&agency=demo-county", 1)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := acDo(t, op, req); r.status != http.StatusSeeOther {
		t.Errorf("10,000 fields: %d, want 303", r.status)
	}
}

func TestFinding15_OperatorPagesAnswerNonOperatorsLikeAMissingPage(t *testing.T) {
	st := newSecStack(t)
	base := st.srv.URL
	admin := st.client(t, "admin")
	missing := acGet(t, admin, base+"/no/such/page")
	if missing.status != http.StatusNotFound {
		t.Fatalf("missing page: %d", missing.status)
	}
	token := csrfOf(t, acGet(t, admin, base+"/a/demo-county/"))
	for _, r := range []struct {
		name string
		r    acReply
	}{
		{"GET /operator/agencies", acGet(t, admin, base+"/operator/agencies")},
		{"GET /operator/agencies/demo-county", acGet(t, admin, base+"/operator/agencies/demo-county")},
		{"GET /operator/no-such-page", acGet(t, admin, base+"/operator/no-such-page")},
		{"POST /operator/agencies", postForm(t, admin, base+"/operator/agencies", url.Values{"_csrf": {token}, "name": {"Rogue County"}, "slug": {"rogue-county"}}, nil)},
		{"POST mapping", postForm(t, admin, base+"/operator/agencies/demo-county/mappings", url.Values{"_csrf": {token}, "provider": {"mock"}, "group": {"g"}, "role": {"admin"}}, nil)},
	} {
		if r.r.status != http.StatusNotFound || acMain.FindString(r.r.body) != acMain.FindString(missing.body) {
			t.Errorf("%s as an agency admin: %d, want the missing page's 404\n%s", r.name, r.r.status, acMain.FindString(r.r.body))
		}
	}
	if _, err := st.agencies.BySlug(context.Background(), "rogue-county"); err == nil {
		t.Error("the agency admin created an agency")
	}
	op := st.client(t, "operator")
	if r := acGet(t, op, base+"/operator/agencies"); r.status != http.StatusOK {
		t.Errorf("operator: %d", r.status)
	}
}
