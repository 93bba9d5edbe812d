package web

import (
	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/oauth"
)

// APICredentialsRoutes mounts the API credential pages of an agency and the
// token endpoint with its JWKS and metadata documents.
func APICredentialsRoutes(h *handlers.APICredentials, t *handlers.OAuthToken) func(e *echo.Echo, r *Router) {
	return func(e *echo.Echo, r *Router) {
		admin := r.Role(models.RoleAdmin)
		g := r.Agency
		g.GET("/api-credentials", h.List, r.Role(models.RoleViewer))
		// Creating shows a new secret: a recent sign-in, like regenerating.
		g.GET("/api-credentials/new", h.New, admin, r.Recent())
		g.POST("/api-credentials", h.Create, admin, r.Recent())
		g.GET("/api-credentials/:id", h.Show, r.Role(models.RoleViewer))
		g.GET("/api-credentials/:id/regenerate", h.RegenerateConfirm, admin, r.Recent())
		g.POST("/api-credentials/:id/regenerate", h.Regenerate, admin, r.Recent())
		g.GET("/api-credentials/:id/revoke", h.RevokeConfirm, admin)
		g.POST("/api-credentials/:id/revoke", h.Revoke, admin)

		// The console-wide body limit answers an oversized request with an
		// HTML page before any handler runs; a token client gets an RFC 6749
		// JSON error instead, decided from the declared length alone.
		max := t.Endpoint.MaxBody()
		e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				req := c.Request()
				if req.URL.Path == oauth.TokenPath && req.ContentLength > max {
					return t.Oversized(c)
				}
				return next(c)
			}
		})
		e.Any(oauth.TokenPath, t.Token)
		e.GET(oauth.JWKSPath, t.JWKS)
		e.GET(oauth.MetadataPath, t.Metadata)
	}
}
