package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// The mock provider's client registration (mockoidc generates its own; the
// console is configured with whatever it says).
var idpClientID, idpClientSecret string

// idpUser is a person the mock provider signs in, with name and groups.
type idpUser struct {
	Subject, Email, Name string
	Groups               []string
}

type userinfo struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

func (u idpUser) scoped(scope []string) userinfo {
	out := userinfo{Subject: u.Subject}
	if slices.Contains(scope, "email") {
		out.Email, out.EmailVerified = u.Email, true
	}
	if slices.Contains(scope, "profile") {
		out.Name = u.Name
	}
	if slices.Contains(scope, "groups") {
		out.Groups = u.Groups
	}
	return out
}

// ID returns the subject.
func (u idpUser) ID() string { return u.Subject }

// Userinfo returns the userinfo document for the scopes.
func (u idpUser) Userinfo(scope []string) ([]byte, error) { return json.Marshal(u.scoped(scope)) }

type idTokenClaims struct {
	*mockoidc.IDTokenClaims
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// Claims returns the ID token's claims for the scopes.
func (u idpUser) Claims(scope []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	s := u.scoped(scope)
	return &idTokenClaims{IDTokenClaims: base, Email: s.Email, EmailVerified: s.EmailVerified, Name: s.Name, Groups: s.Groups}, nil
}

var benchAdmin = idpUser{Subject: "bench-admin", Email: "ada.admin@bench-county.example", Name: "Ada Admin", Groups: []string{adminGroup}}

// startIdP runs mockoidc on 127.0.0.1 and returns it with its issuer.
func startIdP() (*mockoidc.MockOIDC, error) {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if err := m.Start(ln, nil); err != nil {
		return nil, err
	}
	cfg := m.Config()
	idpClientID, idpClientSecret = cfg.ClientID, cfg.ClientSecret
	return m, nil
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signIn signs the admin in over plain HTTP (sign-in page, provider,
// callback) and returns the Cookie header that carries the session.
func signIn(m *mockoidc.MockOIDC, base string) (string, error) {
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (*http.Response, string, error) {
		resp, err := cl.Get(u)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	resp, body, err := get(base + "/signin")
	if err != nil {
		return "", err
	}
	mm := csrfField.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || mm == nil {
		return "", fmt.Errorf("sign-in page: %d without a CSRF field", resp.StatusCode)
	}
	m.QueueUser(benchAdmin)
	resp, err = cl.PostForm(base+"/auth/login/"+providerID, url.Values{"_csrf": {html.UnescapeString(mm[1])}, "return_to": {"/"}})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	for i := 0; resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther; i++ {
		if i > 6 {
			return "", errors.New("sign-in: too many redirects")
		}
		loc, err := resp.Location()
		if err != nil {
			return "", err
		}
		if resp, body, err = get(loc.String()); err != nil {
			return "", err
		}
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, benchAdmin.Name) {
		return "", fmt.Errorf("sign-in ended with %d", resp.StatusCode)
	}
	u, _ := url.Parse(base + "/")
	var parts []string
	for _, c := range jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; "), nil
}
