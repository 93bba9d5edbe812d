package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
)

// csrfGuard is a signed double-submit token (OWASP): a random value in an
// HttpOnly cookie and, in every form, its HMAC under a server key. Echo's own
// CSRF middleware lets a same-origin request through without any token when
// the browser sends Sec-Fetch-Site, which would not refuse a token-less POST
// made with a stolen session; this guard always requires the token.
type csrfGuard struct {
	key     []byte
	jar     *cookieJar
	origin  string
	skipper func(echo.Context) bool
}

func (g *csrfGuard) tokenFor(cookieValue string) string {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte("csrf:" + cookieValue))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (g *csrfGuard) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if g.skipper != nil && g.skipper(c) {
			return next(c)
		}
		value := ""
		if ck, err := c.Cookie(g.jar.csrfName); err == nil && len(ck.Value) == 43 {
			value = ck.Value
		}
		if value == "" {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			value = base64.RawURLEncoding.EncodeToString(b)
			c.SetCookie(&http.Cookie{Name: g.jar.csrfName, Value: value, Path: "/", HttpOnly: true, Secure: g.jar.secure, SameSite: http.SameSiteLaxMode})
		}
		expected := g.tokenFor(value)
		handlers.SetCSRF(c, expected)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if o := c.Request().Header.Get("Origin"); o != "" && o != "null" && !sameOrigin(o, g.origin) {
			return echo.NewHTTPError(http.StatusForbidden, "cross-origin request refused")
		}
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("_csrf")
		}
		if got == "" || !hmac.Equal([]byte(got), []byte(expected)) {
			return echo.NewHTTPError(http.StatusForbidden, "csrf token missing or invalid")
		}
		return next(c)
	}
}

func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}
