package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
)

// csrfGuard is a signed double-submit token (OWASP): a random value in an
// HttpOnly cookie and, in every form, an HMAC under a server key over that
// value and the session id. Echo's own CSRF middleware lets a same-origin
// request through without any token when the browser sends Sec-Fetch-Site,
// which would not refuse a token-less POST made with a stolen session; this
// guard always requires the token.
//
// The token is read from the form body or the X-CSRF-Token header only,
// never from the query string, where it would end up in logs, history and
// Referer headers. Binding it to the session id means a token leaked from one
// session (or a CSRF cookie planted in a shared browser) is worth nothing in
// another. Forms shown before sign-in (the sign-in page, the development
// IdP's page) carry the token of "no session"; sign-in makes a new session id
// and so a new token, which the next page renders. The guard runs after
// loadSession so that it binds to the session the request really has.
type csrfGuard struct {
	key     []byte
	jar     *cookieJar
	origin  string
	skipper func(echo.Context) bool
}

// tokenFor is the token of a CSRF cookie value within a session ("" before
// sign-in). The cookie value is fixed-length base64url and comes last, so
// the message is unambiguous.
func (g *csrfGuard) tokenFor(sessionID, cookieValue string) string {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte("csrf:" + sessionID + ":" + cookieValue))
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
		sessionID := ""
		if p, ok := handlers.PrincipalOf(c); ok {
			sessionID = p.SessionID
		}
		expected := g.tokenFor(sessionID, value)
		handlers.SetCSRF(c, expected)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if o := c.Request().Header.Get("Origin"); o != "" && o != "null" && !sameOrigin(o, g.origin) {
			return echo.NewHTTPError(http.StatusForbidden, "cross-origin request refused")
		}
		if err := readForm(c.Request()); err != nil {
			return err
		}
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.Request().PostForm.Get("_csrf")
		}
		if got == "" || !hmac.Equal([]byte(got), []byte(expected)) {
			// A form of a session that has just ended (idle, expired,
			// disabled) is refused as such: the user is told to sign in
			// again, not that the form looks forged.
			if err, ok := c.Get(timedOutKey).(error); ok && err != nil {
				return echo.NewHTTPError(http.StatusUnauthorized, "sign in required")
			}
			return echo.NewHTTPError(http.StatusForbidden, "csrf token missing or invalid")
		}
		return next(c)
	}
}

// errFormUnreadable is a body that does not parse as a form: malformed, or
// with more fields than net/url accepts (10,000) or more parts than
// mime/multipart does. It is answered 400 with a plain message, never as a
// CSRF refusal, which would send the user hunting for a forgery.
var errFormUnreadable = errors.New("web: form could not be read")

// readForm parses the request's form body once, for the guard and the
// handler after it, and says why it cannot be read.
func readForm(r *http.Request) error {
	err := r.ParseForm()
	if err == nil {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); mt == echo.MIMEMultipartForm {
			err = r.ParseMultipartForm(multipartMemory)
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge), errors.Is(err, multipart.ErrMessageTooLarge):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
	default:
		return fmt.Errorf("%w: %w", errFormUnreadable, err)
	}
}

// multipartMemory is what Echo's FormFile uses; the body limit is lower.
const multipartMemory = 32 << 20

func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}
