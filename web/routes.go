package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/auth"
)

// Router gives feature routes the agency scope and authorization helpers.
type Router struct {
	// Agency is the group under /a/:agency for signed-in members of that agency.
	Agency *echo.Group
	// Operator is the group under /operator for platform operators.
	Operator *echo.Group
	s        *Server
}

// Role admits callers holding at least the given role in the request's agency.
// Anything less answers 404, exactly like a missing page.
func (r *Router) Role(min string) echo.MiddlewareFunc { return requireRole(min) }

// Recent demands a sign-in within the recent-authentication window; otherwise
// the user goes through the IdP again and comes back to the page.
func (r *Router) Recent() echo.MiddlewareFunc { return r.s.requireRecent }

// routes are the console's own routes: health, sign-in, the dashboard, the
// operator area and the other pages every console has. Each credential kind's
// pages are mounted beside them from web/routes_<kind>.go (Deps.Mount), in the
// order app.New lists them.
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
	r := &Router{Agency: ag, Operator: op, s: s}
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
		a, err := s.scopeAgency(c, p)
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

// scopeAgency finds the agency named by :agency. Someone who is not a
// platform operator can only be scoped to an agency of their roles, so it
// is looked up among those (read with the session); any other slug is
// models.ErrNotFound. An operator's agency is read by its slug.
func (s *Server) scopeAgency(c echo.Context, p auth.Principal) (models.Agency, error) {
	h := s.deps.Handlers
	slug := c.Param("agency")
	if p.IsOperator() {
		return h.Agencies.BySlug(c.Request().Context(), slug)
	}
	list, err := h.VisibleAgencies(c, p)
	if err != nil {
		return models.Agency{}, err
	}
	for _, a := range list {
		if a.Slug == slug {
			return a, nil
		}
	}
	return models.Agency{}, models.ErrNotFound
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
		return c.Redirect(http.StatusSeeOther, handlers.ReauthPath(c.Request().URL.Path))
	}
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
