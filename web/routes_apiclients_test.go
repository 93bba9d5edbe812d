package web

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"

	"keyconsole/app/core"
	"keyconsole/handlers"
	"keyconsole/kms"
	kmsaws "keyconsole/kms/aws"
	"keyconsole/kms/kmstest"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/services/guard"
	"keyconsole/services/oauth"
	"keyconsole/services/policy"
)

// acLog collects everything the stack logs, for the leak checks.
type acLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *acLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *acLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// acStack is the real console stack (web.New with the API credential and
// token routes) over a real database, served on 127.0.0.1.
type acStack struct {
	srv      *httptest.Server
	web      *Server
	db       *models.DB
	svc      *apiclients.Service
	keys     *apiclients.KeyManager
	endpoint *apiclients.TokenEndpoint
	failures *guard.FailureAggregator
	lastUse  *guard.LastUseTracker
	audits   *models.AuditStore
	demo     models.Agency
	other    models.Agency
	sessions map[string]string
	log      *acLog
	audience string
}

type acOptions struct {
	// Keyring seals the platform secrets; a local master key when nil.
	Keyring kms.Keyring
	// Limits configure the limiter; generous defaults when zero.
	Limits guard.LimiterConfig
	// Agencies reuses agencies made by another stack on the same database.
	Agencies *[2]models.Agency
	// Policies are the agency policies; the default policy when nil.
	Policies policy.Source
	// TrustedProxies and ProxyHeader configure the client address (none:
	// the connection's peer).
	TrustedProxies []netip.Prefix
	ProxyHeader    string
}

var acMasterKey = bytes.Repeat([]byte{9}, local.MasterKeySize)

const acSessionKey = "api-credentials-test-session-key-0123456789"

func newACStack(t testing.TB, db *models.DB, opts acOptions) acStack {
	t.Helper()
	ctx := context.Background()
	logs := &acLog{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kr := opts.Keyring
	if kr == nil {
		var err error
		if kr, err = local.New(acMasterKey, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The stores and services are built as the console builds them.
	c := core.New(db, nil, log)
	audits, ag, users := c.Audits, c.AgencySvc, c.Users
	asvc := core.NewAuth(c, core.AuthConfig{})
	sys := audit.Actor{Type: audit.ActorSystem, ID: "test"}
	st := acStack{db: db, audits: audits, sessions: map[string]string{}, log: logs}
	if opts.Agencies != nil {
		st.demo, st.other = opts.Agencies[0], opts.Agencies[1]
	} else {
		var err error
		if st.demo, err = ag.Create(ctx, sys, audit.Origin{}, "demo-county", "Demo County"); err != nil {
			t.Fatal(err)
		}
		if st.other, err = ag.Create(ctx, sys, audit.Origin{}, "other-county", "Other County"); err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			agency      int64
			group, role string
		}{{st.demo.ID, "demo-admins", "admin"}, {st.demo.ID, "demo-reviewers", "reviewer"}, {st.demo.ID, "demo-viewers", "viewer"}, {st.other.ID, "other-admins", "admin"}} {
			if _, err := ag.Map(ctx, sys, audit.Origin{}, m.agency, "okta", m.group, m.role); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, u := range []string{"demo-admins", "demo-reviewers", "demo-viewers", "other-admins"} {
		_, token, err := asvc.SignIn(ctx, auth.ProviderInfo{ID: "okta", Kind: auth.KindOkta},
			auth.Claims{Subject: u, Email: u + "@example.gov", Name: "User " + u, Groups: []string{u}}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		st.sessions[u] = token
	}

	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	st.audience = base + "/api"
	sec := core.NewSecrets(c, kms.NewEnvelope(kr, kms.Options{}))
	// Tokens are reused for a minute, as the console's default.
	iss, err := core.TokenIssuer(core.TokenConfig{BaseURL: base, Audience: st.audience, Reuse: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pols := opts.Policies
	if pols == nil {
		pols = policy.DefaultSource{}
	}
	st.svc = core.NewAPIClients(c, sec, pols)
	st.keys = core.TokenKeyManager(c, sec, iss)
	// Key material loads when KMS answers; a stack built while it does not
	// starts without (the token endpoint then answers 503).
	_ = st.svc.LoadPepper(ctx)
	_ = st.keys.Ensure(ctx)

	limits := opts.Limits
	if limits == (guard.LimiterConfig{}) {
		limits = guard.LimiterConfig{ClientRate: rate.Inf, AddrRate: rate.Inf}
	}
	limiter, err := guard.NewLimiter(limits)
	if err != nil {
		t.Fatal(err)
	}
	if st.failures, err = guard.NewFailureAggregator(guard.FailureAggregatorConfig{Flush: st.svc.RecordRefusals}); err != nil {
		t.Fatal(err)
	}
	if st.lastUse, err = guard.NewLastUseTracker(guard.LastUseConfig{Flush: st.svc.FlushLastUse, Logger: log}); err != nil {
		t.Fatal(err)
	}
	st.endpoint = apiclients.NewTokenEndpoint(apiclients.TokenConfig{
		Service: st.svc, Keys: st.keys, Issuer: iss, Limiter: limiter, Failures: st.failures, LastUse: st.lastUse,
		Audience: st.audience, Logger: log,
	})
	h := handlers.New(handlers.Deps{Logger: log, Auth: asvc, Agencies: ag, Users: users, Audit: audits})
	pages := handlers.NewAPICredentials(h, st.svc, base+oauth.TokenPath)
	token := &handlers.OAuthToken{Endpoint: st.endpoint, Issuer: iss, BaseURL: base, Logger: log}
	s, err := New(Config{BaseURL: base, SessionKeys: []string{acSessionKey}, TrustedProxies: opts.TrustedProxies, ProxyHeader: opts.ProxyHeader},
		Deps{Logger: log, Auth: asvc, Handlers: h, Mount: []func(e *echo.Echo, r *Router){APICredentialsRoutes(pages, token)}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Echo
	ts.Start()
	t.Cleanup(ts.Close)
	st.srv, st.web = ts, s
	return st
}

// client returns an HTTP client carrying the user's session cookie.
func (st acStack) client(t testing.TB, user string) *http.Client {
	t.Helper()
	v, err := st.web.jar.encodeSessionToken(st.sessions[user])
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(st.srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: st.web.jar.sessionName, Value: v, Path: "/"}})
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type acReply struct {
	status int
	header http.Header
	body   string
}

func acDo(t testing.TB, c *http.Client, req *http.Request) acReply {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	// The request id differs on every answer; nothing else may.
	body := string(b)
	if id := res.Header.Get(echo.HeaderXRequestID); id != "" {
		body = strings.ReplaceAll(body, id, "REQUEST-ID")
	}
	return acReply{status: res.StatusCode, header: res.Header, body: body}
}

func acGet(t testing.TB, c *http.Client, u string) acReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return acDo(t, c, req)
}

func acPost(t testing.TB, c *http.Client, u string, form url.Values) acReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return acDo(t, c, req)
}

var (
	acCSRFField  = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	acNonceField = regexp.MustCompile(`name="nonce" value="([^"]+)"`)
	acVersion    = regexp.MustCompile(`name="version" value="([^"]+)"`)
	acSecret     = regexp.MustCompile(`id="client-secret">([^<]+)<`)
	acClientID   = regexp.MustCompile(`id="client-id">([^<]+)<`)
	acEnvLink    = regexp.MustCompile(`download="([^"]+)" href="data:text/plain;charset=utf-8;base64,([^"]+)"`)
	acMain       = regexp.MustCompile(`(?s)<main.*</main>`)
)

func acMatch(t testing.TB, re *regexp.Regexp, body, what string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the page:\n%s", what, acMain.FindString(body))
	}
	return html.UnescapeString(m[1])
}

// create makes a credential through the service (not through the pages).
func (st acStack) create(t testing.TB, name, environment string) (models.APICredential, string) {
	t.Helper()
	c, s, err := st.svc.Create(context.Background(), audit.Actor{Type: audit.ActorUser, ID: "1", Name: "Ada Admin"}, audit.Origin{}, st.demo.ID,
		apiclients.CreateInput{Name: name, Environment: environment, Nonce: apiclients.NewNonce()})
	if err != nil {
		t.Fatal(err)
	}
	return c, s.Reveal()
}

func (st acStack) tokenConfig(clientID, secret string, style oauth2.AuthStyle) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: st.srv.URL + oauth.TokenPath, AuthStyle: style}
}

func acCtx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 15 * time.Second})
}

// acRefusal returns the RFC 6749 error code and status of a failed token
// request made with the oauth2 library.
func acRefusal(t testing.TB, err error) (string, int) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want an RFC 6749 error, got %v", err)
	}
	return re.ErrorCode, re.Response.StatusCode
}

// resourceServer verifies access tokens as an API would: it reads the
// metadata and the JWKS over HTTP and checks signature, issuer, audience
// and expiry with golang-jwt.
type resourceServer struct {
	issuer, audience string
	keys             map[string]*ecdsa.PublicKey
}

func newResourceServer(t testing.TB, base, audience string) *resourceServer {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	var meta oauth.ServerMetadata
	r := acGet(t, c, base+"/.well-known/oauth-authorization-server")
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &meta) != nil {
		t.Fatalf("metadata: %d %s", r.status, r.body)
	}
	if meta.Issuer != base || meta.TokenEndpoint != base+"/oauth/token" || meta.JWKSURI != base+"/.well-known/jwks.json" {
		t.Fatalf("metadata: %+v", meta)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Alg, Use string } `json:"keys"`
	}
	r = acGet(t, c, meta.JWKSURI)
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &set) != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %d %s", r.status, r.body)
	}
	rs := &resourceServer{issuer: meta.Issuer, audience: audience, keys: map[string]*ecdsa.PublicKey{}}
	for _, k := range set.Keys {
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Use != "sig" || errX != nil || errY != nil {
			t.Fatalf("jwk %+v", k)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("jwk %s: %v", k.Kid, err)
		}
		rs.keys[k.Kid] = pub
	}
	return rs
}

type acClaims struct {
	jwt.RegisteredClaims
	ClientID    string `json:"client_id"`
	Agency      string `json:"agency"`
	Environment string `json:"environment"`
}

func (rs *resourceServer) verify(token string) (*acClaims, *jwt.Token, error) {
	claims := &acClaims{}
	tok, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := rs.keys[kid]; ok {
			return k, nil
		}
		return nil, errors.New("unknown kid")
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(rs.issuer), jwt.WithAudience(rs.audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	return claims, tok, err
}

func TestOAuthClientLibraryGetsTokensResourceServersAccept(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		st := newACStack(t, db, acOptions{})
		cred, secret := st.create(t, "Case sync", "staging")
		styles := []struct {
			name  string
			style oauth2.AuthStyle
		}{{"client_secret_basic", oauth2.AuthStyleInHeader}, {"client_secret_post", oauth2.AuthStyleInParams}}
		rs := newResourceServer(t, st.srv.URL, st.audience)
		for _, s := range styles {
			tok, err := st.tokenConfig(cred.ClientID, secret, s.style).Token(acCtx())
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 14*time.Minute || time.Until(tok.Expiry) > 15*time.Minute {
				t.Errorf("%s: type %q expiry in %v", s.name, tok.TokenType, time.Until(tok.Expiry))
			}
			claims, parsed, err := rs.verify(tok.AccessToken)
			if err != nil {
				t.Fatalf("%s: the resource server refuses the token: %v", s.name, err)
			}
			if parsed.Header["typ"] != "at+jwt" || claims.Subject != cred.ClientID || claims.ClientID != cred.ClientID ||
				claims.Agency != "demo-county" || claims.Environment != "staging" || claims.ID == "" ||
				claims.ExpiresAt.Sub(claims.IssuedAt.Time) != 15*time.Minute {
				t.Errorf("%s: header %v claims %+v", s.name, parsed.Header, claims)
			}
			// A token altered in transit fails the same check.
			parts := strings.Split(tok.AccessToken, ".")
			body, _ := base64.RawURLEncoding.DecodeString(parts[1])
			parts[1] = base64.RawURLEncoding.EncodeToString(bytes.Replace(body, []byte(`"staging"`), []byte(`"production"`), 1))
			if _, _, err := rs.verify(strings.Join(parts, ".")); err == nil {
				t.Errorf("%s: an altered token verified", s.name)
			}
		}
		// Another resource server's audience is not this token's.
		tok, _ := st.tokenConfig(cred.ClientID, secret, oauth2.AuthStyleInHeader).Token(acCtx())
		other := *rs
		other.audience = "https://other.example.gov/api"
		if _, _, err := other.verify(tok.AccessToken); !errors.Is(err, jwt.ErrTokenInvalidAudience) {
			t.Errorf("wrong audience: %v", err)
		}

		// The answer is not cacheable.
		req, _ := http.NewRequest(http.MethodPost, st.srv.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(cred.ClientID, secret)
		r := acDo(t, http.DefaultClient, req)
		if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Fatalf("token answer: %d %v", r.status, r.header)
		}

		// Last use is kept in memory and written by the flush, not per request.
		got, _ := st.svc.Get(context.Background(), st.demo.ID, cred.ID)
		if got.LastUsedAt != nil {
			t.Fatalf("last use written per request: %v", got.LastUsedAt)
		}
		if err := st.lastUse.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, _ = st.svc.Get(context.Background(), st.demo.ID, cred.ID)
		if got.LastUsedAt == nil || time.Since(*got.LastUsedAt) > time.Minute {
			t.Fatalf("last use after flush: %v", got.LastUsedAt)
		}
	})
}

func TestTokensFollowRegenerationRevocationExpiryAndEnvironment(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		st := newACStack(t, db, acOptions{})
		staging, s1 := st.create(t, "Case sync", "staging")
		production, ps := st.create(t, "Case sync", "production")
		rs := newResourceServer(t, st.srv.URL, st.audience)

		claimsOf := func(cfg *clientcredentials.Config) *acClaims {
			t.Helper()
			tok, err := cfg.Token(acCtx())
			if err != nil {
				t.Fatalf("token for %s: %v", cfg.ClientID, err)
			}
			c, _, err := rs.verify(tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		if c := claimsOf(st.tokenConfig(production.ClientID, ps, oauth2.AuthStyleInHeader)); c.Environment != "production" {
			t.Fatalf("production credential's token environment %q", c.Environment)
		}
		if c := claimsOf(st.tokenConfig(staging.ClientID, s1, oauth2.AuthStyleInHeader)); c.Environment != "staging" {
			t.Fatalf("staging credential's token environment %q", c.Environment)
		}

		hints := []struct {
			name   string
			params url.Values
			code   string
		}{
			{"production requested by a staging credential", url.Values{"environment": {"production"}}, "invalid_request"},
			{"environment repeated", url.Values{"environment": {"staging", "production"}}, "invalid_request"},
			{"another resource", url.Values{"resource": {"https://other.example.gov/api"}}, "invalid_target"},
			{"scope", url.Values{"scope": {"cases:read"}}, "invalid_scope"},
		}
		for _, h := range hints {
			cfg := st.tokenConfig(staging.ClientID, s1, oauth2.AuthStyleInHeader)
			cfg.EndpointParams = h.params
			_, err := cfg.Token(acCtx())
			if code, status := acRefusal(t, err); code != h.code || status != http.StatusBadRequest {
				t.Errorf("%s: %s %d, want %s 400", h.name, code, status, h.code)
			}
		}
		agreeing := st.tokenConfig(staging.ClientID, s1, oauth2.AuthStyleInParams)
		agreeing.EndpointParams = url.Values{"environment": {"staging"}, "resource": {st.audience}}
		if c := claimsOf(agreeing); c.Environment != "staging" {
			t.Fatalf("agreeing hints: %+v", c)
		}

		tokenOf := func(cfg *clientcredentials.Config) string {
			t.Helper()
			tok, err := cfg.Token(acCtx())
			if err != nil {
				t.Fatalf("token for %s: %v", cfg.ClientID, err)
			}
			return tok.AccessToken
		}
		// A repeat request within the reuse window gets the same token: both
		// of these repeat the token issued to the staging credential above.
		reusedBefore := st.endpoint.Stats().Reused
		first := tokenOf(st.tokenConfig(staging.ClientID, s1, oauth2.AuthStyleInHeader))
		if again := tokenOf(st.tokenConfig(staging.ClientID, s1, oauth2.AuthStyleInParams)); again != first {
			t.Fatal("a repeat request within the reuse window got another token")
		}
		if n := st.endpoint.Stats().Reused - reusedBefore; n != 2 {
			t.Fatalf("%d reused answers counted, want 2", n)
		}

		_, s2, err := st.svc.Regenerate(ctx, audit.Actor{Type: audit.ActorUser, ID: "1", Name: "Ada Admin"}, audit.Origin{}, st.demo.ID, staging.ID, apiclients.RegenerateInput{ConfirmName: "Case sync", Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		// The regenerated secret never receives the token issued to the old one.
		if tokenOf(st.tokenConfig(staging.ClientID, s2.Reveal(), oauth2.AuthStyleInHeader)) == first {
			t.Fatal("the new secret got the token issued to the old secret")
		}
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			_, err := st.tokenConfig(staging.ClientID, s1, style).Token(acCtx())
			if code, status := acRefusal(t, err); code != "invalid_client" || status != http.StatusUnauthorized {
				t.Errorf("old secret after regeneration: %s %d", code, status)
			}
		}
		claimsOf(st.tokenConfig(staging.ClientID, s2.Reveal(), oauth2.AuthStyleInHeader))

		if _, err := st.svc.Revoke(ctx, audit.Actor{Type: audit.ActorUser, ID: "1", Name: "Ada Admin"}, audit.Origin{}, st.demo.ID, staging.ID); err != nil {
			t.Fatal(err)
		}
		_, err = st.tokenConfig(staging.ClientID, s2.Reveal(), oauth2.AuthStyleInHeader).Token(acCtx())
		if code, status := acRefusal(t, err); code != "invalid_client" || status != http.StatusUnauthorized {
			t.Errorf("revoked: %s %d", code, status)
		}

		past := time.Now().UTC().Add(-time.Second)
		if err := db.Gorm.Model(&models.APICredential{}).Where("id = ?", production.ID).Update("expires_at", past).Error; err != nil {
			t.Fatal(err)
		}
		_, err = st.tokenConfig(production.ClientID, ps, oauth2.AuthStyleInParams).Token(acCtx())
		if code, status := acRefusal(t, err); code != "invalid_client" || status != http.StatusUnauthorized {
			t.Errorf("expired: %s %d", code, status)
		}

		st.failures.Flush(ctx)
		reasons := map[string]int{}
		evs, _ := st.audits.Page(ctx, models.AuditFilter{AgencyID: st.demo.ID, Action: audit.ActionAPICredentialTokenRefused}, 50)
		for _, e := range evs {
			n, _ := strconv.Atoi(acDetail(e, "count"))
			reasons[e.Reason] += n
		}
		want := map[string]int{apiclients.ReasonEnvironmentMismatch: 1, oauth.ReasonMalformedRequest: 1, apiclients.ReasonInvalidTarget: 1,
			oauth.ReasonInvalidScope: 1, oauth.ReasonInvalidSecret: 2, oauth.ReasonRevoked: 1, oauth.ReasonExpired: 1}
		for k, v := range want {
			if reasons[k] != v {
				t.Errorf("refusals audited for %s: %d, want %d (all: %v)", k, reasons[k], v, reasons)
			}
		}
		acNoLeak(t, st, []string{s1, s2.Reveal(), ps})
	})
}

func acDetail(e models.AuditEvent, key string) string {
	for _, kv := range audit.DecodeDetails(e.Details) {
		if kv[0] == key {
			return kv[1]
		}
	}
	return ""
}

// acSnapshot is everything the token endpoint could change in the database.
func acSnapshot(t testing.TB, db *models.DB) string {
	t.Helper()
	var creds []models.APICredential
	var keys []models.TokenSigningKey
	var events, sealed int64
	db.Gorm.Order("id").Find(&creds)
	db.Gorm.Order("kid").Find(&keys)
	// Refused attempts are audited (a refused token request, a create that
	// KMS could not serve): only records of changes count.
	db.Gorm.Model(&models.AuditEvent{}).Where("outcome = ?", audit.OutcomeSuccess).Count(&events)
	db.Gorm.Model(&models.SealedSecret{}).Count(&sealed)
	b, err := json.Marshal([]any{creds, keys, events, sealed})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTokenEndpointAnswersBadInputWithRFC6749Errors(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		st := newACStack(t, db, acOptions{})
		cred, secret := st.create(t, "Case sync", "staging")
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.ClientID+":"+secret))
		form := "application/x-www-form-urlencoded"
		huge := strings.Repeat("a", 2<<20)
		tests := []struct {
			name, method, query, contentType, authorization string
			body                                            io.Reader
			chunked                                         bool
			status                                          int
			code                                            string
		}{
			{name: "missing grant_type", body: strings.NewReader(""), authorization: basic, status: 400, code: "invalid_request"},
			{name: "unknown grant_type", body: strings.NewReader("grant_type=password&username=a&password=b"), authorization: basic, status: 400, code: "unsupported_grant_type"},
			{name: "authorization code grant", body: strings.NewReader("grant_type=authorization_code&code=x"), authorization: basic, status: 400, code: "unsupported_grant_type"},
			{name: "malformed Basic header", body: strings.NewReader("grant_type=client_credentials"), authorization: "Basic !!not-base64!!", status: 401, code: "invalid_client"},
			{name: "Basic without a colon", body: strings.NewReader("grant_type=client_credentials"), authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.ClientID)), status: 401, code: "invalid_client"},
			{name: "Bearer scheme", body: strings.NewReader("grant_type=client_credentials"), authorization: "Bearer abc", status: 401, code: "invalid_client"},
			{name: "both methods", body: strings.NewReader("grant_type=client_credentials&client_id=" + cred.ClientID + "&client_secret=" + url.QueryEscape(secret)), authorization: basic, status: 400, code: "invalid_request"},
			{name: "no credentials", body: strings.NewReader("grant_type=client_credentials"), status: 401, code: "invalid_client"},
			{name: "huge body", body: strings.NewReader("grant_type=client_credentials&x=" + huge), authorization: basic, status: 400, code: "invalid_request"},
			{name: "huge chunked body", body: strings.NewReader("grant_type=client_credentials&x=" + huge), chunked: true, authorization: basic, status: 400, code: "invalid_request"},
			{name: "body over the endpoint's limit", body: strings.NewReader("grant_type=client_credentials&x=" + strings.Repeat("b", 20<<10)), authorization: basic, status: 400, code: "invalid_request"},
			{name: "JSON content type", contentType: "application/json", body: strings.NewReader(`{"grant_type":"client_credentials"}`), authorization: basic, status: 400, code: "invalid_request"},
			{name: "multipart content type", contentType: "multipart/form-data; boundary=x", body: strings.NewReader("--x--"), authorization: basic, status: 400, code: "invalid_request"},
			{name: "unknown client", body: strings.NewReader("grant_type=client_credentials"), authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte("ecd_stg_aaaaaaaaaaaaaaaaaaaa:"+secret)), status: 401, code: "invalid_client"},
			{name: "malformed client id", body: strings.NewReader("grant_type=client_credentials&client_id=%27%3B--&client_secret=x"), status: 401, code: "invalid_client"},
			{name: "secret in the query", query: "client_secret=" + url.QueryEscape(secret), body: strings.NewReader("grant_type=client_credentials"), authorization: basic, status: 400, code: "invalid_request"},
			{name: "GET", method: http.MethodGet, status: 400, code: "invalid_request"},
			{name: "PUT", method: http.MethodPut, body: strings.NewReader("grant_type=client_credentials"), authorization: basic, status: 400, code: "invalid_request"},
			{name: "repeated grant_type", body: strings.NewReader("grant_type=client_credentials&grant_type=client_credentials"), authorization: basic, status: 400, code: "invalid_request"},
			{name: "malformed form", body: strings.NewReader("grant_type=client_credentials&%zz"), authorization: basic, status: 400, code: "invalid_request"},
		}
		before := acSnapshot(t, db)
		for _, tc := range tests {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			u := st.srv.URL + "/oauth/token"
			if tc.query != "" {
				u += "?" + tc.query
			}
			body := tc.body
			if tc.chunked {
				body = io.MultiReader(tc.body)
			}
			req, _ := http.NewRequest(method, u, body)
			ct := tc.contentType
			if ct == "" {
				ct = form
			}
			req.Header.Set("Content-Type", ct)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			r := acDo(t, http.DefaultClient, req)
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal([]byte(r.body), &e); err != nil {
				t.Errorf("%s: %d, body is not JSON: %.200s", tc.name, r.status, r.body)
				continue
			}
			if r.status != tc.status || e.Error != tc.code || e.Description == "" {
				t.Errorf("%s: %d %q (%s), want %d %q", tc.name, r.status, e.Error, e.Description, tc.status, tc.code)
			}
			if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: headers %v", tc.name, r.header)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") != `Basic realm="keyconsole"` {
				t.Errorf("%s: no Basic challenge", tc.name)
			}
			if strings.Contains(r.body, secret) || strings.Contains(r.body, cred.ClientID) {
				t.Errorf("%s: the answer echoes request input: %s", tc.name, r.body)
			}
		}
		if after := acSnapshot(t, db); after != before {
			t.Fatalf("refused requests changed the database:\nbefore %s\nafter  %s", before, after)
		}
		if strings.Contains(st.log.String(), `"status":500`) {
			t.Fatal("a refused request answered 500")
		}
		acNoLeak(t, st, []string{secret})
	})
}

// acServe runs one token request through the real stack from a given
// source address, without a network hop.
func acServe(st acStack, addr, clientID, secret string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	req.RemoteAddr = addr + ":40000"
	rec := httptest.NewRecorder()
	st.web.Echo.ServeHTTP(rec, req)
	return rec
}

func TestTokenRateLimitsAndFailureSlowdownSpareTheLegitimateClient(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		st := newACStack(t, db, acOptions{Limits: guard.LimiterConfig{
			ClientRate: rate.Every(time.Minute), ClientBurst: 3,
			AddrRate: rate.Every(time.Minute), AddrBurst: 10,
			PairFailureThreshold: 3, AddrFailureThreshold: 50, BaseDelay: 30 * time.Second,
		}})
		cred, secret := st.create(t, "Case sync", "staging")
		const attacker, legit, flooder = "192.0.2.10", "198.51.100.20", "203.0.113.30"

		for i := 1; i <= 3; i++ {
			if r := acServe(st, attacker, cred.ClientID, "ecds_stg_guess"+strconv.Itoa(i)); r.Code != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d", i, r.Code)
			}
		}
		slowed := acServe(st, attacker, cred.ClientID, secret)
		if slowed.Code != http.StatusTooManyRequests || slowed.Header().Get("Retry-After") == "" || !strings.Contains(slowed.Body.String(), `"error":"invalid_request"`) {
			t.Fatalf("after 3 failures: %d %v %s", slowed.Code, slowed.Header(), slowed.Body)
		}
		if ra, _ := strconv.Atoi(slowed.Header().Get("Retry-After")); ra < 1 || ra > 30 {
			t.Fatalf("Retry-After %d", ra)
		}
		// The legitimate client, elsewhere, is not locked out by the attack.
		for i := 1; i <= 3; i++ {
			if r := acServe(st, legit, cred.ClientID, secret); r.Code != http.StatusOK {
				t.Fatalf("legitimate request %d during the attack: %d %s", i, r.Code, r.Body)
			}
		}
		// But its own bucket holds: the fourth success within the minute waits.
		if r := acServe(st, legit, cred.ClientID, secret); r.Code != http.StatusTooManyRequests || r.Header().Get("Retry-After") == "" {
			t.Fatalf("over the client rate: %d %v", r.Code, r.Header())
		}
		// One address flooding with made-up clients is held by its own bucket.
		for i := 0; i < 10; i++ {
			id := fmt.Sprintf("ecd_stg_%020d", i)
			if r := acServe(st, flooder, id, "x"); r.Code != http.StatusUnauthorized {
				t.Fatalf("flood request %d: %d", i, r.Code)
			}
		}
		if r := acServe(st, flooder, "ecd_stg_bbbbbbbbbbbbbbbbbbbb", "x"); r.Code != http.StatusTooManyRequests {
			t.Fatalf("over the address rate: %d", r.Code)
		}

		// Refusals reach the audit log as one record for the first of a key
		// and one summary of its repeats per interval.
		refused := func() (n int64) {
			db.Gorm.Model(&models.AuditEvent{}).Where("action = ?", audit.ActionAPICredentialTokenRefused).Count(&n)
			return n
		}
		before := refused()
		if err := st.failures.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if refused() != before+1 {
			t.Fatalf("the flush wrote %d records, want the one summary of repeats", refused()-before)
		}
		agencyEvs, _ := st.audits.Page(ctx, models.AuditFilter{AgencyID: st.demo.ID, Action: audit.ActionAPICredentialTokenRefused}, 50)
		platformEvs, _ := st.audits.Page(ctx, models.AuditFilter{AgencyID: models.PlatformAgencyID, Action: audit.ActionAPICredentialTokenRefused}, 50)
		if len(agencyEvs) != 2 || acDetail(agencyEvs[0], "count") != "2" || acDetail(agencyEvs[1], "count") != "1" {
			t.Fatalf("agency refusal records: %+v, want the first guess and a summary of two", agencyEvs)
		}
		for _, e := range agencyEvs {
			if e.SourceIP != attacker || e.Reason != oauth.ReasonInvalidSecret {
				t.Fatalf("agency refusal record: %+v", e)
			}
		}
		var unknown, limited int
		for _, e := range platformEvs {
			n, _ := strconv.Atoi(acDetail(e, "count"))
			switch e.Reason {
			case oauth.ReasonUnknownClient:
				unknown += n
			case oauth.ReasonRateLimited:
				limited += n
			}
		}
		if unknown != 10 || limited != 3 || len(platformEvs) != 10+3 {
			t.Fatalf("platform refusal records: %d records, %d unknown, %d rate limited", len(platformEvs), unknown, limited)
		}
		acNoLeak(t, st, []string{secret})
	})
}

func acNoLeak(t testing.TB, st acStack, secrets []string) {
	t.Helper()
	var evs []models.AuditEvent
	if err := st.db.Gorm.Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	logs := st.log.String()
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret in the leak check")
		}
		tail := s[len(s)-24:]
		if strings.Contains(logs, s) || strings.Contains(logs, tail) {
			t.Errorf("a secret is in the logs")
		}
		for _, e := range evs {
			fields := strings.Join([]string{e.ActorID, e.ActorName, e.TargetID, e.TargetName, e.Reason, e.SourceIP, e.UserAgent, e.RequestID, e.Details}, "\x00")
			if strings.Contains(fields, s) || strings.Contains(fields, tail) {
				t.Errorf("a secret is in audit record %d (%s)", e.ID, e.Action)
			}
		}
	}
}

func TestAPICredentialPagesShowTheSecretOnceAndOnlyToAdmins(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		st := newACStack(t, db, acOptions{})
		base := st.srv.URL + "/a/demo-county/api-credentials"
		admin := st.client(t, "demo-admins")
		count := func() int64 {
			var n int64
			db.Gorm.Model(&models.APICredential{}).Count(&n)
			return n
		}
		var secrets []string

		list := acGet(t, admin, base)
		if list.status != http.StatusOK || !strings.Contains(list.body, `id="new-api-credential"`) || !strings.Contains(list.body, "No staging credentials yet") {
			t.Fatalf("admin list: %d", list.status)
		}
		newForm := acGet(t, admin, base+"/new")
		csrf, nonce := acMatch(t, acCSRFField, newForm.body, "csrf token"), acMatch(t, acNonceField, newForm.body, "nonce")

		// A refused form says why per field and writes nothing.
		bad := acPost(t, admin, base, url.Values{"_csrf": {csrf}, "nonce": {nonce}, "name": {""}, "environment": {"prod"}, "expires": {"yesterday"}})
		for _, want := range []string{"Enter a name for the credential.", "Choose staging or production.", "Enter the expiry date as YYYY-MM-DD."} {
			if !strings.Contains(bad.body, want) {
				t.Errorf("refused form lacks %q", want)
			}
		}
		if bad.status != http.StatusUnprocessableEntity || count() != 0 {
			t.Fatalf("refused form: %d, %d credentials", bad.status, count())
		}

		form := url.Values{"_csrf": {csrf}, "nonce": {nonce}, "name": {"Case <sync>"}, "description": {"Nightly export"}, "environment": {"production"}, "expires": {time.Now().AddDate(0, 6, 0).Format("2006-01-02")}}
		shown := acPost(t, admin, base, form)
		if shown.status != http.StatusOK || shown.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("create: %d %v", shown.status, shown.header)
		}
		secret, clientID := acMatch(t, acSecret, shown.body, "secret"), acMatch(t, acClientID, shown.body, "client id")
		secrets = append(secrets, secret)
		if !strings.HasPrefix(secret, "ecds_prd_") || !strings.HasPrefix(clientID, "ecd_prd_") {
			t.Fatalf("shown %q / %q", secret[:9], clientID)
		}
		if !strings.Contains(shown.body, `data-copy-target="client-secret"`) || !strings.Contains(shown.body, "hidden>Copy secret") {
			t.Error("no progressive copy button")
		}
		m := acEnvLink.FindStringSubmatch(shown.body)
		if m == nil {
			t.Fatal("no .env download link")
		}
		envFile, err := base64.StdEncoding.DecodeString(m[2])
		if err != nil || m[1] != "demo-county-case-sync-production.env" ||
			!strings.Contains(string(envFile), "ECD_CLIENT_ID="+clientID+"\n") || !strings.Contains(string(envFile), "ECD_CLIENT_SECRET="+secret+"\n") ||
			!strings.Contains(string(envFile), "ECD_TOKEN_URL="+st.srv.URL+"/oauth/token\n") {
			t.Fatalf(".env download %q: %q %v", m[1], "…", err)
		}
		if strings.Contains(shown.header.Get("Location"), secret) {
			t.Fatal("secret in a URL")
		}

		// Submitting the same form again (a reload) creates nothing and shows no secret.
		again := acPost(t, admin, base, form)
		if again.status != http.StatusConflict || strings.Contains(again.body, "ecds_") || count() != 1 {
			t.Fatalf("resubmission: %d, %d credentials", again.status, count())
		}

		cred, err := st.svc.List(ctx, st.demo.ID)
		if err != nil || len(cred) != 1 {
			t.Fatal(err)
		}
		detailPath := base + "/" + strconv.FormatInt(cred[0].ID, 10)
		detail := acGet(t, admin, detailPath)
		if detail.status != http.StatusOK || !strings.Contains(detail.body, "api_credential.create") || !strings.Contains(detail.body, "Case &lt;sync&gt;") {
			t.Fatalf("detail: %d", detail.status)
		}
		list = acGet(t, admin, base)
		if !strings.Contains(list.body, clientID) || !strings.Contains(list.body, "User demo-admins") || !strings.Contains(list.body, ">OK<") {
			t.Fatalf("list lacks the credential")
		}

		// Regeneration: typed confirmation, shown once, resubmission refused.
		confirm := acGet(t, admin, detailPath+"/regenerate")
		version := acMatch(t, acVersion, confirm.body, "version")
		wrong := acPost(t, admin, detailPath+"/regenerate", url.Values{"_csrf": {csrf}, "version": {version}, "confirm_name": {"Case sync"}})
		if wrong.status != http.StatusUnprocessableEntity || !strings.Contains(wrong.body, "Type the credential&#39;s name exactly") {
			t.Fatalf("wrong confirmation: %d", wrong.status)
		}
		if _, err := (&clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: st.srv.URL + "/oauth/token"}).Token(acCtx()); err != nil {
			t.Fatalf("a refused confirmation changed the secret: %v", err)
		}
		regen := url.Values{"_csrf": {csrf}, "version": {version}, "confirm_name": {"Case <sync>"}}
		fresh := acPost(t, admin, detailPath+"/regenerate", regen)
		if fresh.status != http.StatusOK || fresh.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("regenerate: %d", fresh.status)
		}
		newSecret := acMatch(t, acSecret, fresh.body, "new secret")
		secrets = append(secrets, newSecret)
		if re := acPost(t, admin, detailPath+"/regenerate", regen); re.status != http.StatusConflict || strings.Contains(re.body, "ecds_") {
			t.Fatalf("regeneration resubmitted: %d", re.status)
		}
		_, err = (&clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: st.srv.URL + "/oauth/token"}).Token(acCtx())
		if code, _ := acRefusal(t, err); code != "invalid_client" {
			t.Fatalf("old secret after regeneration through the page: %s", code)
		}
		if _, err := (&clientcredentials.Config{ClientID: clientID, ClientSecret: newSecret, TokenURL: st.srv.URL + "/oauth/token"}).Token(acCtx()); err != nil {
			t.Fatalf("new secret: %v", err)
		}

		// Regeneration needs a recent sign-in.
		if err := db.Gorm.Model(&models.Session{}).Where("id IS NOT NULL").Update("auth_time", time.Now().UTC().Add(-11*time.Minute)).Error; err != nil {
			t.Fatal(err)
		}
		for _, r := range []acReply{acGet(t, admin, detailPath+"/regenerate"), acPost(t, admin, detailPath+"/regenerate", url.Values{"_csrf": {csrf}, "version": {"2"}, "confirm_name": {"Case <sync>"}})} {
			if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/auth/reauth?return_to=") {
				t.Fatalf("stale sign-in: %d %s", r.status, r.header.Get("Location"))
			}
		}
		if c, _ := st.svc.Get(ctx, st.demo.ID, cred[0].ID); c.SecretVersion != 2 {
			t.Fatalf("regenerated without a recent sign-in: version %d", c.SecretVersion)
		}

		// Reviewers and viewers read; their forged writes answer like a missing page.
		for _, user := range []string{"demo-reviewers", "demo-viewers"} {
			c := st.client(t, user)
			l := acGet(t, c, base)
			if l.status != http.StatusOK || !strings.Contains(l.body, clientID) {
				t.Fatalf("%s list: %d", user, l.status)
			}
			for _, action := range []string{"/new", "/regenerate", "/revoke", `id="new-api-credential"`, "Regenerate", "Revoke"} {
				if strings.Contains(acMain.FindString(l.body), action) {
					t.Errorf("%s sees %q", user, action)
				}
			}
			d := acGet(t, c, detailPath)
			if d.status != http.StatusOK || strings.Contains(d.body, `id="regenerate"`) || strings.Contains(d.body, `id="revoke"`) {
				t.Errorf("%s detail: %d", user, d.status)
			}
			if hist := strings.Contains(d.body, `id="credential-history"`); hist != (user == "demo-reviewers") {
				t.Errorf("%s sees the history: %v", user, hist)
			}
			ownCSRF := acMatch(t, acCSRFField, l.body, "csrf token")
			before := acSnapshot(t, db)
			missing := acGet(t, c, st.srv.URL+"/a/demo-county/no-such-page")
			for _, r := range []acReply{
				acGet(t, c, base+"/new"),
				acGet(t, c, detailPath+"/regenerate"),
				acGet(t, c, detailPath+"/revoke"),
				acPost(t, c, base, url.Values{"_csrf": {ownCSRF}, "nonce": {apiclients.NewNonce()}, "name": {"forged"}, "environment": {"staging"}}),
				acPost(t, c, detailPath+"/revoke", url.Values{"_csrf": {ownCSRF}}),
				acPost(t, c, detailPath+"/regenerate", url.Values{"_csrf": {ownCSRF}, "version": {"2"}, "confirm_name": {"Case <sync>"}}),
			} {
				if r.status != http.StatusNotFound || acMain.FindString(r.body) != acMain.FindString(missing.body) {
					t.Errorf("%s forged request: %d", user, r.status)
				}
			}
			if acSnapshot(t, db) != before {
				t.Fatalf("%s changed the database", user)
			}
		}

		// Another agency's admin gets exactly the answer for a missing credential.
		other := st.client(t, "other-admins")
		otherBase := st.srv.URL + "/a/other-county/api-credentials/"
		missing := acGet(t, other, otherBase+"99999999")
		foreign := acGet(t, other, otherBase+strconv.FormatInt(cred[0].ID, 10))
		if foreign.status != http.StatusNotFound || acMain.FindString(foreign.body) != acMain.FindString(missing.body) {
			t.Fatalf("another agency's credential: %d", foreign.status)
		}
		otherCSRF := acMatch(t, acCSRFField, acGet(t, other, st.srv.URL+"/a/other-county/api-credentials").body, "csrf token")
		if r := acPost(t, other, otherBase+strconv.FormatInt(cred[0].ID, 10)+"/revoke", url.Values{"_csrf": {otherCSRF}}); r.status != http.StatusNotFound {
			t.Fatalf("another agency's revoke: %d", r.status)
		}
		if r := acGet(t, other, base); r.status != http.StatusNotFound {
			t.Fatalf("another agency's list: %d", r.status)
		}

		// Revocation: confirmation, then immediate refusal at the token endpoint.
		if r := acGet(t, admin, detailPath+"/revoke"); r.status != http.StatusOK || !strings.Contains(r.body, `id="confirm-revoke"`) {
			t.Fatalf("revoke confirmation: %d", r.status)
		}
		if r := acPost(t, admin, detailPath+"/revoke", url.Values{"_csrf": {csrf}}); r.status != http.StatusSeeOther || r.header.Get("Location") != "/a/demo-county/api-credentials/"+strconv.FormatInt(cred[0].ID, 10) {
			t.Fatalf("revoke: %d %s", r.status, r.header.Get("Location"))
		}
		_, err = (&clientcredentials.Config{ClientID: clientID, ClientSecret: newSecret, TokenURL: st.srv.URL + "/oauth/token"}).Token(acCtx())
		if code, _ := acRefusal(t, err); code != "invalid_client" {
			t.Fatalf("revoked credential: %s", code)
		}
		if d := acGet(t, admin, detailPath); !strings.Contains(d.body, "api_credential.revoke") || !strings.Contains(d.body, ">Revoked<") {
			t.Fatal("revocation not shown")
		}

		// Nothing rendered after the show-once pages carries a secret.
		for _, path := range []string{base, detailPath, st.srv.URL + "/a/demo-county/"} {
			for _, user := range []string{"demo-admins", "demo-reviewers"} {
				body := acGet(t, st.client(t, user), path).body
				for _, s := range secrets {
					if strings.Contains(body, s) {
						t.Errorf("%s shows a secret to %s", path, user)
					}
				}
			}
		}
		st.failures.Flush(ctx)
		acNoLeak(t, st, secrets)
	})
}

// TestTokenEndpointWaitsForKMS runs replicas against a real KMS-compatible
// server (local-kms) that is stopped while one of them starts.
func TestTokenEndpointWaitsForKMS(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		server := kmstest.Start(t)
		keyring := func() kms.Keyring {
			kr, err := kmsaws.New(ctx, kmsaws.Options{KeyID: kmstest.AliasA, Region: kmstest.Region, Endpoint: server.Endpoint, MaxAttempts: 1, CallTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return kr
		}
		first := newACStack(t, db, acOptions{Keyring: keyring()})
		if !first.svc.Ready() || !first.keys.Ready() {
			t.Fatal("key material not loaded with KMS up")
		}
		cred, secret := first.create(t, "Case sync", "staging")

		server.Stop(t)
		second := newACStack(t, db, acOptions{Keyring: keyring(), Agencies: &[2]models.Agency{first.demo, first.other}})
		if second.svc.Ready() || second.keys.Ready() {
			t.Fatal("key material loaded with KMS down")
		}
		tok := acServe(second, "192.0.2.1", cred.ClientID, secret)
		if tok.Code != http.StatusServiceUnavailable || !strings.Contains(tok.Body.String(), `"error":"temporarily_unavailable"`) ||
			tok.Header().Get("Retry-After") != "30" || tok.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("token while KMS is down: %d %v %s", tok.Code, tok.Header(), tok.Body)
		}
		// The replica that loaded its keys before KMS went away keeps serving.
		if r := acServe(first, "192.0.2.1", cred.ClientID, secret); r.Code != http.StatusOK {
			t.Fatalf("loaded replica while KMS is down: %d %s", r.Code, r.Body)
		}
		// Pages keep working; creating a credential says encryption is unavailable.
		admin := second.client(t, "demo-admins")
		base := second.srv.URL + "/a/demo-county/api-credentials"
		if r := acGet(t, admin, base); r.status != http.StatusOK || !strings.Contains(r.body, cred.ClientID) {
			t.Fatalf("list while KMS is down: %d", r.status)
		}
		page := acGet(t, admin, base+"/new")
		before := acSnapshot(t, db)
		r := acPost(t, admin, base, url.Values{"_csrf": {acMatch(t, acCSRFField, page.body, "csrf")}, "nonce": {acMatch(t, acNonceField, page.body, "nonce")}, "name": {"sync"}, "environment": {"staging"}})
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "Encryption is unavailable") || acSnapshot(t, db) != before {
			t.Fatalf("create while KMS is down: %d", r.status)
		}
		if evs, _ := second.audits.Page(ctx, models.AuditFilter{AgencyID: second.demo.ID, Action: audit.ActionAPICredentialCreate}, 50); len(evs) == 0 ||
			evs[0].Outcome != audit.OutcomeFailure || evs[0].Reason != "kms_unavailable" || evs[0].TargetName != "sync" {
			t.Fatalf("the create refused for KMS is not audited: %+v", evs)
		}

		server.Restart(t)
		if err := second.svc.LoadPepper(ctx); err != nil {
			t.Fatal(err)
		}
		if err := second.keys.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if r := acServe(second, "192.0.2.1", cred.ClientID, secret); r.Code != http.StatusOK {
			t.Fatalf("token after KMS came back: %d %s", r.Code, r.Body)
		}
	})
}

func BenchmarkTokenEndpoint(b *testing.B) {
	for _, d := range modelstest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			st := newACStack(b, modelstest.Open(b, d), acOptions{})
			cred, secret := st.create(b, "bench", "staging")
			body := "grant_type=client_credentials"
			auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.ClientID+":"+secret))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", auth)
				rec := httptest.NewRecorder()
				st.web.Echo.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
