package web

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"keyconsole/views"
)

// cookieJar holds the console's cookies: the session (a token naming a
// server-side session), the short-lived sign-in state and flash messages.
// Cookies are authenticated and encrypted with keys derived from the
// configured session keys, newest first, so keys can be rotated.
type cookieJar struct {
	store *sessions.CookieStore
	// tokenCodecs encode the session cookie: the same keys as store, the
	// value being the token's bytes themselves. Gob, which store uses for
	// its maps of values, builds its type information anew for every
	// cookie it decodes: a twentieth of a page's CPU, on every request.
	tokenCodecs []securecookie.Codec
	secure      bool
	sessionName string
	loginName   string
	flashName   string
	csrfName    string
}

func newCookieJar(keys []string, secure bool) (*cookieJar, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("web: no session keys")
	}
	var pairs [][]byte
	for _, k := range keys {
		hashKey, err := hkdf.Key(sha256.New, []byte(k), nil, "keyconsole cookie authentication", 64)
		if err != nil {
			return nil, err
		}
		blockKey, err := hkdf.Key(sha256.New, []byte(k), nil, "keyconsole cookie encryption", 32)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, hashKey, blockKey)
	}
	store := sessions.NewCookieStore(pairs...)
	// gorilla's defaults (30 days, no SameSite, no HttpOnly) are unsafe: every
	// cookie here is a browser-session cookie, HttpOnly, SameSite=Lax, and
	// Secure outside local http development.
	store.Options = &sessions.Options{Path: "/", MaxAge: 0, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	for _, c := range store.Codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxAge(int((12 * time.Hour).Seconds()))
		}
	}
	j := &cookieJar{store: store, secure: secure, tokenCodecs: securecookie.CodecsFromPairs(pairs...)}
	for _, c := range j.tokenCodecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxAge(int((12 * time.Hour).Seconds()))
			sc.SetSerializer(securecookie.NopEncoder{})
		}
	}
	prefix := ""
	if secure {
		// __Host- cookies are only accepted with Secure, Path=/ and no Domain.
		prefix = "__Host-"
	}
	j.sessionName = prefix + "keyconsole_session"
	j.loginName = prefix + "keyconsole_signin"
	j.flashName = prefix + "keyconsole_flash"
	j.csrfName = prefix + "keyconsole_csrf"
	return j, nil
}

func (j *cookieJar) get(c echo.Context, name string) *sessions.Session {
	s, err := j.store.Get(c.Request(), name)
	if err != nil {
		// An undecodable cookie (old key, tampering) is a fresh session.
		s, _ = j.store.New(c.Request(), name)
		s.IsNew = true
	}
	return s
}

// sessionToken returns the session token in the request's cookie, or ""
// when there is none or it does not decode (old key, tampering).
func (j *cookieJar) sessionToken(c echo.Context) string {
	ck, err := c.Request().Cookie(j.sessionName)
	if err != nil {
		return ""
	}
	var token []byte
	if err := securecookie.DecodeMulti(j.sessionName, ck.Value, &token, j.tokenCodecs...); err != nil {
		return ""
	}
	return string(token)
}

// encodeSessionToken returns the session cookie's value for token.
func (j *cookieJar) encodeSessionToken(token string) (string, error) {
	return securecookie.EncodeMulti(j.sessionName, []byte(token), j.tokenCodecs...)
}

func (j *cookieJar) setSessionToken(c echo.Context, token string) error {
	v, err := j.encodeSessionToken(token)
	if err != nil {
		return err
	}
	http.SetCookie(c.Response(), sessions.NewCookie(j.sessionName, v, j.store.Options))
	return nil
}

func (j *cookieJar) clear(c echo.Context, name string) {
	s, _ := j.store.New(c.Request(), name)
	s.Options = &sessions.Options{Path: "/", MaxAge: -1, HttpOnly: true, Secure: j.secure, SameSite: http.SameSiteLaxMode}
	_ = s.Save(c.Request(), c.Response())
}

// loginState is what a sign-in keeps between the redirect and the callback.
type loginState struct {
	State    string
	Nonce    string
	Verifier string
	Provider string
	ReturnTo string
	Reauth   bool
	Started  int64
}

func (j *cookieJar) setLogin(c echo.Context, ls loginState) error {
	s, _ := j.store.New(c.Request(), j.loginName)
	s.Options = &sessions.Options{Path: "/", MaxAge: 600, HttpOnly: true, Secure: j.secure, SameSite: http.SameSiteLaxMode}
	s.Values["state"], s.Values["nonce"], s.Values["verifier"] = ls.State, ls.Nonce, ls.Verifier
	s.Values["provider"], s.Values["return_to"], s.Values["reauth"], s.Values["started"] = ls.Provider, ls.ReturnTo, ls.Reauth, ls.Started
	return s.Save(c.Request(), c.Response())
}

func (j *cookieJar) login(c echo.Context) (loginState, bool) {
	s := j.get(c, j.loginName)
	if s.IsNew {
		return loginState{}, false
	}
	var ls loginState
	ls.State, _ = s.Values["state"].(string)
	ls.Nonce, _ = s.Values["nonce"].(string)
	ls.Verifier, _ = s.Values["verifier"].(string)
	ls.Provider, _ = s.Values["provider"].(string)
	ls.ReturnTo, _ = s.Values["return_to"].(string)
	ls.Reauth, _ = s.Values["reauth"].(bool)
	ls.Started, _ = s.Values["started"].(int64)
	return ls, ls.State != ""
}

// SetFlash keeps a message for the next page.
func (j *cookieJar) SetFlash(c echo.Context, f views.Flash) {
	s, _ := j.store.New(c.Request(), j.flashName)
	s.Values["k"], s.Values["t"] = f.Kind, f.Text
	_ = s.Save(c.Request(), c.Response())
}

// TakeFlash returns and clears the pending message.
func (j *cookieJar) TakeFlash(c echo.Context) *views.Flash {
	s := j.get(c, j.flashName)
	if s.IsNew {
		return nil
	}
	k, _ := s.Values["k"].(string)
	t, _ := s.Values["t"].(string)
	j.clear(c, j.flashName)
	if t == "" {
		return nil
	}
	switch k {
	case "success", "error", "warning", "info":
	default:
		k = "info"
	}
	return &views.Flash{Kind: k, Text: t}
}
