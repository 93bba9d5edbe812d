// Package handlers turns HTTP requests into service calls and service results
// into pages. One file per resource; every handler is a method of Handler.
package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/views"
)

const (
	principalKey = "kc.principal"
	scopeKey     = "kc.scope"
	csrfKey      = "kc.csrf"
)

// Scope is the agency a request acts in and the caller's role there.
type Scope struct {
	Agency models.Agency
	Role   string
}

// SetPrincipal stores the signed-in user of the request.
func SetPrincipal(c echo.Context, p auth.Principal) { c.Set(principalKey, p) }

// PrincipalOf returns the signed-in user of the request, if any.
func PrincipalOf(c echo.Context) (auth.Principal, bool) {
	p, ok := c.Get(principalKey).(auth.Principal)
	return p, ok
}

// SetScope stores the agency scope of the request.
func SetScope(c echo.Context, s Scope) { c.Set(scopeKey, s) }

// ScopeOf returns the agency scope of the request.
func ScopeOf(c echo.Context) (Scope, bool) {
	s, ok := c.Get(scopeKey).(Scope)
	return s, ok
}

// SetCSRF stores the request's CSRF token for forms.
func SetCSRF(c echo.Context, token string) { c.Set(csrfKey, token) }

// CSRF returns the request's CSRF token.
func CSRF(c echo.Context) string {
	s, _ := c.Get(csrfKey).(string)
	return s
}

// Origin describes where the request came from, for audit records.
func Origin(c echo.Context) audit.Origin {
	return audit.Origin{
		SourceIP:  c.RealIP(),
		UserAgent: c.Request().UserAgent(),
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
	}
}

// Flasher keeps one-time messages between a redirect and the next page.
type Flasher interface {
	SetFlash(c echo.Context, f views.Flash)
	TakeFlash(c echo.Context) *views.Flash
}

// ErrNotFound answers 404; another agency's record answers exactly the same.
var ErrNotFound = echo.NewHTTPError(http.StatusNotFound, "not found")

// notFoundOr maps a store's not-found to the one 404 answer.
func notFoundOr(err error) error {
	if errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
