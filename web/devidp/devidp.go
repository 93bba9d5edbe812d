// Package devidp is keyconsole's built-in development identity provider: a
// small but real OpenID Connect provider (discovery, JWKS, authorize with a
// page to pick a seeded user, token endpoint with PKCE) so the console can be
// tried and developed without an external IdP. It never runs in production.
package devidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/views"
)

// User is one seeded identity offered on the authorize page.
type User struct {
	Subject string
	Name    string
	Email   string
	Groups  []string
	Hint    string
}

// Provider is the development IdP mounted under a path of the console.
type Provider struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURI  string
	Users        []User
	Now          func() time.Time

	key   *ecdsa.PrivateKey
	kid   string
	mu    sync.Mutex
	codes map[string]grant
}

type grant struct {
	user      User
	nonce     string
	challenge string
	redirect  string
	expires   time.Time
}

// New creates a provider with a fresh ES256 signing key.
func New(issuer, clientID, clientSecret, redirectURI string, users []User) (*Provider, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devidp: key: %w", err)
	}
	kidRaw := make([]byte, 8)
	_, _ = rand.Read(kidRaw)
	return &Provider{Issuer: issuer, ClientID: clientID, ClientSecret: clientSecret, RedirectURI: redirectURI, Users: users,
		Now: time.Now, key: k, kid: base64.RawURLEncoding.EncodeToString(kidRaw), codes: map[string]grant{}}, nil
}

// Mount adds the provider's routes under prefix (e.g. /dev/oidc).
func (p *Provider) Mount(e *echo.Echo, prefix string) {
	e.GET(prefix+"/.well-known/openid-configuration", p.discovery)
	e.GET(prefix+"/jwks", p.jwks)
	e.GET(prefix+"/authorize", p.authorize)
	e.POST(prefix+"/authorize", p.approve)
	e.POST(prefix+"/token", p.token)
	e.GET(prefix+"/end-session", p.endSession)
}

func (p *Provider) discovery(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/authorize",
		"token_endpoint":                        p.Issuer + "/token",
		"jwks_uri":                              p.Issuer + "/jwks",
		"end_session_endpoint":                  p.Issuer + "/end-session",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{"openid", "email", "profile", "groups"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"claims_supported":                      []string{"sub", "email", "email_verified", "name", "groups", "nonce", "auth_time"},
	})
}

func (p *Provider) jwks(c echo.Context) error {
	pub := p.key.PublicKey
	b, err := pub.Bytes()
	if err != nil {
		return err
	}
	// Uncompressed point: 0x04 || X || Y.
	x, y := b[1:33], b[33:65]
	return c.JSON(http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": p.kid,
		"x": base64.RawURLEncoding.EncodeToString(x), "y": base64.RawURLEncoding.EncodeToString(y),
	}}})
}

func (p *Provider) checkAuthRequest(q url.Values) string {
	switch {
	case q.Get("client_id") != p.ClientID:
		return "unknown client_id"
	case q.Get("redirect_uri") != p.RedirectURI:
		return "redirect_uri is not registered for this client"
	case q.Get("response_type") != "code":
		return "only response_type=code is supported"
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		return "PKCE with S256 is required"
	case q.Get("state") == "":
		return "state is required"
	}
	return ""
}

// authorize shows the page to pick a seeded user.
func (p *Provider) authorize(c echo.Context) error {
	q := c.QueryParams()
	if msg := p.checkAuthRequest(q); msg != "" {
		return handlers.Render(c, http.StatusBadRequest, views.DevIdPError(devPage(c), msg))
	}
	users := make([]views.DevUser, 0, len(p.Users))
	for _, u := range p.Users {
		users = append(users, views.DevUser{Subject: u.Subject, Name: u.Name, Email: u.Email, Hint: u.Hint})
	}
	hidden := map[string]string{}
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age"} {
		hidden[k] = q.Get(k)
	}
	return handlers.Render(c, http.StatusOK, views.DevIdPAuthorize(devPage(c), users, hidden, q.Get("prompt") == "login"))
}

func devPage(c echo.Context) views.Page {
	return views.Page{Title: "Development sign-in", CSRF: handlers.CSRF(c), RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
}

// approve issues a code for the chosen user and returns to the client.
func (p *Provider) approve(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "bad form")
	}
	if msg := p.checkAuthRequest(form); msg != "" {
		return handlers.Render(c, http.StatusBadRequest, views.DevIdPError(devPage(c), msg))
	}
	var user *User
	for i := range p.Users {
		if p.Users[i].Subject == form.Get("user") {
			user = &p.Users[i]
		}
	}
	if user == nil {
		return handlers.Render(c, http.StatusBadRequest, views.DevIdPError(devPage(c), "choose one of the listed users"))
	}
	codeRaw := make([]byte, 32)
	if _, err := rand.Read(codeRaw); err != nil {
		return err
	}
	code := base64.RawURLEncoding.EncodeToString(codeRaw)
	p.mu.Lock()
	now := p.Now()
	for k, g := range p.codes {
		if now.After(g.expires) {
			delete(p.codes, k)
		}
	}
	p.codes[code] = grant{user: *user, nonce: form.Get("nonce"), challenge: form.Get("code_challenge"), redirect: form.Get("redirect_uri"), expires: now.Add(time.Minute)}
	p.mu.Unlock()
	u, _ := url.Parse(p.RedirectURI)
	rq := u.Query()
	rq.Set("code", code)
	rq.Set("state", form.Get("state"))
	rq.Set("iss", p.Issuer)
	u.RawQuery = rq.Encode()
	return c.Redirect(http.StatusFound, u.String())
}

func tokenError(c echo.Context, status int, code, desc string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, map[string]string{"error": code, "error_description": desc})
}

// token exchanges a code for an ID token (client secret and PKCE checked).
func (p *Provider) token(c echo.Context) error {
	id, secret, ok := c.Request().BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = c.FormValue("client_id"), c.FormValue("client_secret")
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(p.ClientID)) != 1 || subtle.ConstantTimeCompare([]byte(secret), []byte(p.ClientSecret)) != 1 {
		return tokenError(c, http.StatusUnauthorized, "invalid_client", "client authentication failed")
	}
	if c.FormValue("grant_type") != "authorization_code" {
		return tokenError(c, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code")
	}
	code := c.FormValue("code")
	p.mu.Lock()
	g, found := p.codes[code]
	delete(p.codes, code)
	p.mu.Unlock()
	now := p.Now()
	if !found || now.After(g.expires) || c.FormValue("redirect_uri") != g.redirect {
		return tokenError(c, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
	}
	sum := sha256.Sum256([]byte(c.FormValue("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		return tokenError(c, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
	}
	claims := jwt.MapClaims{
		"iss": p.Issuer, "sub": g.user.Subject, "aud": p.ClientID,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "auth_time": now.Unix(),
		"nonce": g.nonce, "email": g.user.Email, "email_verified": true, "name": g.user.Name, "groups": g.user.Groups,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = p.kid
	idToken, err := t.SignedString(p.key)
	if err != nil {
		return err
	}
	atRaw := make([]byte, 32)
	_, _ = rand.Read(atRaw)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{
		"access_token": base64.RawURLEncoding.EncodeToString(atRaw), "token_type": "Bearer", "expires_in": 600, "id_token": idToken,
	})
}

func (p *Provider) endSession(c echo.Context) error {
	target := c.QueryParam("post_logout_redirect_uri")
	if u, err := url.Parse(target); err == nil && target != "" && u.Scheme+"://"+u.Host == originOf(p.RedirectURI) {
		return c.Redirect(http.StatusFound, target)
	}
	return c.Redirect(http.StatusFound, "/signed-out")
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
