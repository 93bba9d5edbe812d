package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"keyconsole/services/auth"
)

// OIDCProvider is one configured identity provider. Discovery happens on first
// use (and is retried after a failure), so the console starts even while an
// IdP is briefly unreachable.
type OIDCProvider struct {
	Info         auth.ProviderInfo
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// HTTPClient is used for discovery, JWKS and the token exchange.
	HTTPClient *http.Client

	mu          sync.Mutex
	provider    *oidc.Provider
	verifier    *oidc.IDTokenVerifier
	endSession  string
	redirectURL string

	// formOrigins are the origins of the discovered authorization and
	// end-session endpoints, for the CSP; read without mu, which discovery
	// holds for as long as the IdP takes to answer.
	formOrigins atomic.Pointer[[]string]
	// nextDiscovery is when a page may next start discovery in the
	// background (Unix nanoseconds), so an unreachable IdP is not asked on
	// every page.
	nextDiscovery atomic.Int64
}

// backgroundDiscoveryEvery spaces the discovery attempts pages start.
const backgroundDiscoveryEvery = 30 * time.Second

// ready performs discovery once.
func (p *OIDCProvider) ready(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, p.verifier, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if p.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, p.HTTPClient)
	}
	// NewProvider insists that the discovery document's issuer equals this URL
	// exactly, and the verifier then checks every token's iss against it.
	prov, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("oidc: discovery for %s: %w", p.Info.ID, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = prov.Claims(&extra)
	p.endSession = extra.EndSession
	origins := cspOrigins(prov.Endpoint().AuthURL, extra.EndSession)
	p.formOrigins.Store(&origins)
	p.provider = prov
	p.verifier = prov.VerifierContext(context.WithoutCancel(p.clientCtx(context.Background())), &oidc.Config{
		ClientID:             p.ClientID,
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256, oidc.PS256, oidc.ES384, oidc.RS384, oidc.RS512, oidc.PS384, oidc.PS512, oidc.EdDSA},
	})
	return p.provider, p.verifier, nil
}

func (p *OIDCProvider) clientCtx(ctx context.Context) context.Context {
	if p.HTTPClient != nil {
		return oidc.ClientContext(ctx, p.HTTPClient)
	}
	return ctx
}

func (p *OIDCProvider) oauthConfig(prov *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		Endpoint:     prov.Endpoint(),
		RedirectURL:  p.redirectURL,
		Scopes:       p.Scopes,
	}
}

// formActionOrigins returns the origins the console's forms may be
// redirected to for this provider: its authorization endpoint (sign-in,
// re-authentication) and end-session endpoint (sign-out), once discovered.
// Until then it is the issuer's origin, where providers serve both as a rule,
// and a discovery starts in the background so later pages name the exact
// endpoints; the sign-in itself discovers anyway.
func (p *OIDCProvider) formActionOrigins() (origins []string, discovered bool) {
	if o := p.formOrigins.Load(); o != nil {
		return *o, true
	}
	now := time.Now().UnixNano()
	if next := p.nextDiscovery.Load(); now >= next && p.nextDiscovery.CompareAndSwap(next, now+int64(backgroundDiscoveryEvery)) {
		go func() { _, _, _ = p.ready(context.Background()) }()
	}
	return cspOrigins(p.Issuer), false
}

// EndSessionURL returns the provider's RP-initiated logout URL, if it has one.
func (p *OIDCProvider) EndSessionURL(postLogout string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.endSession == "" {
		return ""
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", p.ClientID)
	q.Set("post_logout_redirect_uri", postLogout)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashState(state string) string {
	sum := sha256.Sum256([]byte("state:" + state))
	return hex.EncodeToString(sum[:])
}

// authURL starts the authorization-code flow with PKCE, state and nonce.
func (p *OIDCProvider) authURL(ctx context.Context, ls loginState) (string, error) {
	prov, _, err := p.ready(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(ls.Verifier), oidc.Nonce(ls.Nonce)}
	if ls.Reauth {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	return p.oauthConfig(prov).AuthCodeURL(ls.State, opts...), nil
}

// errCallback is a refused callback with the audit code and the user's message.
type errCallback struct {
	code    string
	message string
	subject string
	cause   error
}

func (e *errCallback) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.cause.Error()
	}
	return e.code
}

func (e *errCallback) Unwrap() error { return e.cause }

// exchange completes the flow: code for tokens, ID token verified (issuer,
// audience, expiry, signature), then the nonce, which go-oidc leaves to us.
func (p *OIDCProvider) exchange(ctx context.Context, code string, ls loginState) (map[string]json.RawMessage, error) {
	prov, verifier, err := p.ready(ctx)
	if err != nil {
		return nil, &errCallback{code: auth.RefusedProvider, message: "The identity provider could not be reached. Try again in a moment.", cause: err}
	}
	ctx, cancel := context.WithTimeout(p.clientCtx(ctx), 15*time.Second)
	defer cancel()
	tok, err := p.oauthConfig(prov).Exchange(ctx, code, oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		return nil, &errCallback{code: auth.RefusedProvider, message: "The identity provider did not accept the sign-in. Start again.", cause: errors.New(redactOAuthError(err))}
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, &errCallback{code: auth.RefusedToken, message: "The identity provider returned no ID token."}
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, &errCallback{code: auth.RefusedToken, message: "The sign-in token could not be verified.", cause: err}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.Nonce)) != 1 || ls.Nonce == "" {
		return nil, &errCallback{code: auth.RefusedNonce, message: "The sign-in token does not belong to this sign-in (nonce mismatch). Start again.", subject: idt.Subject}
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return nil, &errCallback{code: auth.RefusedToken, message: "The sign-in token's claims could not be read.", cause: err}
	}
	return claims, nil
}

// redactOAuthError keeps only the OAuth error code of a failed exchange: the
// provider's response body is not ours to log.
func redactOAuthError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return "token endpoint error " + re.ErrorCode
		}
		if re.Response != nil {
			return fmt.Sprintf("token endpoint status %d", re.Response.StatusCode)
		}
	}
	if strings.Contains(err.Error(), "connection refused") {
		return "token endpoint unreachable"
	}
	return "token exchange failed"
}
