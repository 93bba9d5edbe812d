package harness

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// ProviderID is the id the console knows the test OIDC provider by
// (KEYCONSOLE_OIDC_PROVIDERS=mock); its sign-in button is #signin-mock.
const ProviderID = "mock"

// ProviderScopes are the scopes the console asks the test provider for; they
// are all scopes mockoidc supports (it refuses any other with 400).
const ProviderScopes = "openid email profile groups"

// User is a person the test provider signs in. It implements mockoidc.User
// and, unlike mockoidc.MockUser, also sends the name claim.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// The ID token's auth_time is its issue time (the provider asked for
	// the credentials just now, as a real one does when max_age is sent)
	// moved by AuthTimeShift; NoAuthTime leaves the claim out.
	AuthTimeShift time.Duration
	NoAuthTime    bool
}

// ID returns the subject.
func (u User) ID() string { return u.Subject }

type userinfo struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

func (u User) scoped(scope []string) userinfo {
	out := userinfo{Subject: u.Subject}
	if slices.Contains(scope, "email") {
		out.Email, out.EmailVerified = u.Email, u.EmailVerified
	}
	if slices.Contains(scope, "profile") {
		out.Name = u.Name
	}
	if slices.Contains(scope, "groups") {
		out.Groups = slices.Clone(u.Groups)
	}
	return out
}

// Userinfo returns the userinfo document for the granted scopes.
func (u User) Userinfo(scope []string) ([]byte, error) {
	return json.Marshal(u.scoped(scope))
}

type idTokenClaims struct {
	*mockoidc.IDTokenClaims
	AuthTime      int64    `json:"auth_time,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// Claims returns the ID-token claims for the granted scopes on top of
// mockoidc's base claims (iss, aud, exp, nonce ...).
func (u User) Claims(scope []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	s := u.scoped(scope)
	out := &idTokenClaims{IDTokenClaims: base, Email: s.Email, EmailVerified: s.EmailVerified, Name: s.Name, Groups: s.Groups}
	if !u.NoAuthTime {
		issued := time.Now()
		if base != nil && base.RegisteredClaims != nil && base.IssuedAt != nil {
			issued = base.IssuedAt.Time
		}
		out.AuthTime = issued.Add(u.AuthTimeShift).Unix()
	}
	return out, nil
}

// IdP is the test's OIDC provider: a mockoidc server on 127.0.0.1 that also
// records the query of every authorization request it receives.
type IdP struct {
	*mockoidc.MockOIDC

	mu    sync.Mutex
	authz []url.Values
}

// StartIdP runs a mockoidc provider on 127.0.0.1 until the test ends.
func StartIdP(t testing.TB) *IdP {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatalf("harness: mockoidc: %v", err)
	}
	idp := &IdP{MockOIDC: m}
	err = m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == mockoidc.AuthorizationEndpoint {
				idp.mu.Lock()
				idp.authz = append(idp.authz, r.URL.Query())
				idp.mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatalf("harness: mockoidc middleware: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: mockoidc listener: %v", err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatalf("harness: start mockoidc: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return idp
}

// AuthorizeRequests returns the query parameters of every authorization
// request the provider received, oldest first (to check state, nonce, PKCE
// and scopes as the console sent them).
func (p *IdP) AuthorizeRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.authz)
}
