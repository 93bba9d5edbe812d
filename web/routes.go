package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
)

// Router gives feature routes the agency scope and authorization helpers.
type Router struct {
	// Agency is the group under /a/:agency for signed-in members of that agency.
	Agency *echo.Group
	s      *Server
}

// Role admits callers holding at least the given role in the request's agency.
// Anything less answers 404, exactly like a missing page.
func (r *Router) Role(min string) echo.MiddlewareFunc { return requireRole(min) }

// Recent demands a sign-in within the recent-authentication window; otherwise
// the user goes through the IdP again and comes back to the page.
func (r *Router) Recent() echo.MiddlewareFunc { return r.s.requireRecent }

// routes is every route of the console in one place.
func (s *Server) routes(e *echo.Echo) {
	h := s.deps.Handlers
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/static/*", staticHandler())

	e.GET("/signin", s.signInPage)
	e.GET("/signed-out", s.signedOutPage)
	e.GET("/auth/login/:provider", s.login)
	e.POST("/auth/login/:provider", s.login)
	e.GET("/auth/callback/:provider", s.callback)
	e.POST("/auth/signout", s.signOut, s.requireSignIn)
	e.GET("/auth/reauth", s.reauthPage, s.requireSignIn)
	e.POST("/auth/reauth", s.reauth, s.requireSignIn)

	e.GET("/", h.Home, s.requireSignIn)
	e.POST("/switch-agency", h.SwitchAgency, s.requireSignIn)

	op := e.Group("/operator", s.requireSignIn, requireOperator)
	op.GET("/agencies", h.OperatorAgencies)
	op.POST("/agencies", h.OperatorAgencyCreate)
	op.GET("/agencies/:slug", h.OperatorAgency)
	op.POST("/agencies/:slug/mappings", h.OperatorMappingCreate)
	op.POST("/agencies/:slug/mappings/:id/delete", h.OperatorMappingDelete)

	ag := e.Group("/a/:agency", s.requireSignIn, s.agencyScope)
	ag.GET("", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, c.Request().URL.Path+"/") })
	ag.GET("/", h.Dashboard)
	r := &Router{Agency: ag, s: s}
	for _, m := range s.deps.Mount {
		m(e, r)
	}
	// Sections a mounted feature has not claimed say so plainly.
	claimed := map[string]bool{}
	for _, rt := range e.Routes() {
		claimed[rt.Method+" "+rt.Path] = true
	}
	for _, sec := range []struct{ path, title, nav, role string }{
		{"/api-credentials", "API credentials", "api", models.RoleViewer},
		{"/ssh-keys", "SSH keys", "ssh", models.RoleViewer},
		{"/webhooks", "Webhooks", "webhooks", models.RoleViewer},
		{"/audit", "Audit", "audit", models.RoleReviewer},
		{"/reports", "Reports", "reports", models.RoleReviewer},
		{"/policy", "Policy", "policy", models.RoleViewer},
	} {
		if !claimed["GET /a/:agency"+sec.path] {
			ag.GET(sec.path, h.NotBuilt(sec.title, sec.nav), requireRole(sec.role))
		}
	}
}

// agencyScope resolves :agency and the caller's role in it. An agency the
// caller has no role in answers 404, like one that does not exist.
func (s *Server) agencyScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, _ := handlers.PrincipalOf(c)
		a, err := s.deps.Handlers.Agencies.BySlug(c.Request().Context(), c.Param("agency"))
		if err != nil {
			return echo.NewHTTPError(http.StatusNotFound, "not found")
		}
		role := p.RoleIn(a.ID)
		if role == "" {
			return echo.NewHTTPError(http.StatusNotFound, "not found")
		}
		handlers.SetScope(c, handlers.Scope{Agency: a, Role: role})
		if p.CurrentAgencyID != a.ID && c.Request().Method == http.MethodGet {
			_ = s.deps.Auth.SwitchAgency(c.Request().Context(), p, a.ID)
		}
		return next(c)
	}
}

func requireRole(min string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			sc, ok := handlers.ScopeOf(c)
			if !ok || models.RoleRank(sc.Role) < models.RoleRank(min) {
				return echo.NewHTTPError(http.StatusNotFound, "not found")
			}
			return next(c)
		}
	}
}

func (s *Server) requireRecent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, ok := handlers.PrincipalOf(c)
		if !ok {
			return echo.NewHTTPError(http.StatusUnauthorized, "sign in required")
		}
		if s.deps.Auth.Recent(p) {
			return next(c)
		}
		// Come back to the page of this action (the GET of the same path).
		return c.Redirect(http.StatusSeeOther, "/auth/reauth?return_to="+urlQueryEscape(c.Request().URL.Path))
	}
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
