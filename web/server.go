// Package web is the console's HTTP front door: Echo set-up, every route,
// middleware, OIDC sign-in, sessions and the one error handler.
package web

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/auth"
	"keyconsole/static"
	"keyconsole/views"
)

// Config is the web layer's part of the configuration.
type Config struct {
	BaseURL     string
	Production  bool
	SessionKeys []string
	Providers   []*OIDCProvider
	// TrustedProxies are the peers (load balancers, reverse proxies) whose
	// ProxyHeader is believed for the client address; see clientIPExtractor.
	TrustedProxies []netip.Prefix
	// ProxyHeader is HeaderXForwardedFor (when empty) or HeaderForwarded.
	ProxyHeader string
}

// ReadyCheck is one dependency /readyz reports on.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Deps are what the web layer is built from.
type Deps struct {
	Logger   *slog.Logger
	Auth     *auth.Service
	Handlers *handlers.Handler
	Ready    []ReadyCheck
	// Mount adds routes owned by other parts (development IdP, features).
	Mount []func(e *echo.Echo, r *Router)
	// Metrics, when set, records every request; MetricsToken exposes it at
	// /metrics on this listener behind a bearer token (empty: not exposed here).
	Metrics      *Metrics
	MetricsToken string
}

// Server is the assembled HTTP application.
type Server struct {
	Echo      *echo.Echo
	cfg       Config
	deps      Deps
	jar       *cookieJar
	providers map[string]*OIDCProvider
	log       *slog.Logger
	// csp is the Content-Security-Policy once every provider is discovered.
	csp atomic.Pointer[string]
}

// New builds the Echo application with every route and middleware.
func New(cfg Config, deps Deps) (*Server, error) {
	secure := strings.HasPrefix(cfg.BaseURL, "https://")
	if cfg.Production && !secure {
		return nil, fmt.Errorf("web: production needs an https base URL")
	}
	clientIP, err := clientIPExtractor(cfg.TrustedProxies, cfg.ProxyHeader)
	if err != nil {
		return nil, err
	}
	jar, err := newCookieJar(cfg.SessionKeys, secure)
	if err != nil {
		return nil, err
	}
	csrfKey, err := hkdf.Key(sha256.New, []byte(cfg.SessionKeys[0]), nil, "keyconsole csrf", 32)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, jar: jar, providers: map[string]*OIDCProvider{}, log: deps.Logger}
	for _, p := range cfg.Providers {
		p.redirectURL = cfg.BaseURL + "/auth/callback/" + p.Info.ID
		s.providers[p.Info.ID] = p
	}
	if deps.Handlers != nil {
		deps.Handlers.Flash = jar
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	// Every client address (rate limits, audit records, logs) comes from
	// c.RealIP(), so from here: never read RemoteAddr or a forwarding
	// header anywhere else.
	e.IPExtractor = clientIP
	s.Echo = e

	e.Use(requestID())
	e.Use(s.recoverer())
	e.Use(s.accessLog())
	if deps.Metrics != nil {
		e.Use(deps.Metrics.middleware)
		if deps.MetricsToken != "" {
			e.GET("/metrics", echo.WrapHandler(deps.Metrics.Handler(deps.MetricsToken)))
		}
	}
	e.Use(s.securityHeaders())
	e.Use(bodyLimit(1 << 20))
	guard := &csrfGuard{key: csrfKey, jar: jar, origin: cfg.BaseURL, skipper: func(c echo.Context) bool {
		return noCSRF(c.Request().URL.Path)
	}}
	// The session first: the CSRF token is bound to its id.
	e.Use(s.loadSession)
	e.Use(guard.middleware)

	s.routes(e)
	// The route table at debug level lets tests prove every route is covered.
	for _, rt := range e.Routes() {
		s.log.Debug("route", "method", rt.Method, "path", rt.Path)
	}
	return s, nil
}

// noCSRF lists the machine-to-machine endpoints that authenticate without
// cookies and therefore need no CSRF token.
func noCSRF(path string) bool {
	return path == "/oauth/token" || path == "/dev/oidc/token" || strings.HasPrefix(path, "/.well-known/") ||
		path == "/healthz" || path == "/readyz" || path == "/metrics"
}

func staticHandler() echo.HandlerFunc {
	sub, _ := fs.Sub(static.FS, ".")
	h := http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	res := map[string]string{}
	status := http.StatusOK
	for _, chk := range s.deps.Ready {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
		err := chk.Check(ctx)
		cancel()
		if err != nil {
			res[chk.Name] = "unavailable"
			status = http.StatusServiceUnavailable
			s.log.Warn("readiness check failed", "check", chk.Name, "error", err)
		} else {
			res[chk.Name] = "ok"
		}
	}
	return c.JSON(status, res)
}

// Providers returns the configured sign-in providers.
func (s *Server) Providers() []*OIDCProvider { return s.cfg.Providers }

// ProviderChoices lists providers for sign-in buttons and mapping forms.
func ProviderChoices(ps []*OIDCProvider) []views.ProviderChoice {
	out := make([]views.ProviderChoice, 0, len(ps))
	for _, p := range ps {
		out = append(out, views.ProviderChoice{ID: p.Info.ID, Label: p.Info.Label})
	}
	return out
}

// errDBUnavailable answers 503 while the database cannot be reached.
func isUnavailable(err error) bool {
	return errors.Is(err, models.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "bad connection")
}
