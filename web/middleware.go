package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/services/auth"
)

func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			id := hex.EncodeToString(b)
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			return next(c)
		}
	}
}

func (s *Server) recoverer() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					s.log.Error("panic serving request", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
						"path", c.Request().URL.Path, "error", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = errors.New("internal error")
				}
			}()
			return next(c)
		}
	}
}

// accessLog writes one JSON line per request. The query string is never
// logged: sign-in callbacks carry authorization codes there.
func (s *Server) accessLog() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			res := c.Response()
			attrs := make([]slog.Attr, 0, 9)
			attrs = append(attrs,
				slog.String("request_id", res.Header().Get(echo.HeaderXRequestID)),
				slog.String("method", c.Request().Method),
				slog.String("path", c.Request().URL.Path),
				slog.String("route", c.Path()),
				slog.Int("status", res.Status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("remote_ip", c.RealIP()),
			)
			if p, ok := handlers.PrincipalOf(c); ok {
				attrs = append(attrs, slog.Int64("user_id", p.User.ID))
			}
			if sc, ok := handlers.ScopeOf(c); ok {
				attrs = append(attrs, slog.Int64("agency_id", sc.Agency.ID))
			}
			level := slog.LevelInfo
			if res.Status >= 500 {
				level = slog.LevelError
			}
			s.log.LogAttrs(c.Request().Context(), level, "request", attrs...)
			return nil
		}
	}
}

// The policy of every page; contentSecurityPolicy completes form-action per
// request. A form may post only to the console, and the redirects that follow
// a form (sign-in, re-authentication, sign-out) may go only to the configured
// providers' own endpoints, never to any http: or https: origin.
const (
	cspBefore = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'"
	cspAfter  = "; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

func (s *Server) securityHeaders() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", s.contentSecurityPolicy())
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
			if s.cfg.Production {
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			return next(c)
		}
	}
}

// contentSecurityPolicy is the CSP with form-action listing 'self' and each
// provider's authorization and end-session origins (see formActionOrigins).
// Once every provider is discovered the policy no longer changes and is kept.
func (s *Server) contentSecurityPolicy() string {
	if p := s.csp.Load(); p != nil {
		return *p
	}
	self := cspOrigins(s.cfg.BaseURL)
	var b strings.Builder
	b.WriteString(cspBefore)
	seen := map[string]bool{}
	for _, o := range self {
		seen[o] = true
	}
	all := true
	for _, p := range s.cfg.Providers {
		origins, discovered := p.formActionOrigins()
		all = all && discovered
		for _, o := range origins {
			if !seen[o] {
				seen[o] = true
				b.WriteString(" " + o)
			}
		}
	}
	b.WriteString(cspAfter)
	policy := b.String()
	if all {
		s.csp.Store(&policy)
	}
	return policy
}

// cspOrigins returns the origins (scheme://host[:port], lower case) of the
// http and https URLs among raw, as CSP source expressions. A URL whose host
// a source expression cannot carry (an IPv6 literal, or anything but
// letters, digits, dots, hyphens and a port) is left out rather than let
// into the header.
func cspOrigins(raw ...string) []string {
	var out []string
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			continue
		}
		host := strings.ToLower(u.Host)
		if strings.IndexFunc(host, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':')
		}) >= 0 {
			continue
		}
		o := u.Scheme + "://" + host
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func bodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().ContentLength > n {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
			}
			c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, n)
			return next(c)
		}
	}
}

const timedOutKey = "kc.timed_out"

// loadSession resolves the session cookie into a principal on every request,
// so sign-out, timeouts and disabled users take effect at once. Every answer
// to a signed-in request is Cache-Control: no-store, whatever the handler,
// so that after sign-out the browser's Back button (or the next user of a
// shared computer) finds no page of the session in the cache.
func (s *Server) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if noCSRF(c.Request().URL.Path) || len(c.Request().URL.Path) > 7 && c.Request().URL.Path[:8] == "/static/" {
			return next(c)
		}
		token := s.jar.sessionToken(c)
		if token == "" {
			return next(c)
		}
		p, err := s.deps.Auth.Resolve(c.Request().Context(), token, handlers.Origin(c))
		switch {
		case err == nil:
			handlers.SetPrincipal(c, p)
			c.Response().Header().Set("Cache-Control", "no-store")
		case errors.Is(err, auth.ErrIdle), errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrDisabled):
			s.jar.clear(c, s.jar.sessionName)
			c.Set(timedOutKey, err)
		case errors.Is(err, auth.ErrNoSession):
			s.jar.clear(c, s.jar.sessionName)
		default:
			return err
		}
		return next(c)
	}
}

// requireSignIn sends anonymous visitors to the sign-in page.
func (s *Server) requireSignIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := handlers.PrincipalOf(c); ok {
			return next(c)
		}
		if c.Request().Method != http.MethodGet {
			return echo.NewHTTPError(http.StatusUnauthorized, "sign in required")
		}
		target := "/signin?return_to=" + urlQueryEscape(c.Request().URL.RequestURI())
		if err, ok := c.Get(timedOutKey).(error); ok {
			target += "&reason=" + reasonParam(err)
		}
		return c.Redirect(http.StatusSeeOther, target)
	}
}

func reasonParam(err error) string {
	switch {
	case errors.Is(err, auth.ErrIdle):
		return "idle"
	case errors.Is(err, auth.ErrExpired):
		return "expired"
	case errors.Is(err, auth.ErrDisabled):
		return "disabled"
	}
	return ""
}

// requireOperator admits platform operators only. Anyone else gets the
// missing page's 404, like every other refusal: the console does not say
// which pages exist for roles the caller does not have.
func requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, ok := handlers.PrincipalOf(c)
		if !ok || !p.IsOperator() {
			return echo.NewHTTPError(http.StatusNotFound, "not found")
		}
		return next(c)
	}
}
