package web

import (
	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
)

// WebhooksRoutes mounts the webhook pages under /a/:agency/webhooks: every
// member reads; admins act; creating an endpoint, changing its URL,
// revealing and setting a secret need a recent sign-in.
func WebhooksRoutes(h *handlers.Webhooks) func(e *echo.Echo, r *Router) {
	return func(_ *echo.Echo, r *Router) {
		g := r.Agency
		admin := r.Role(models.RoleAdmin)
		recent := r.Recent()
		g.GET("/webhooks", h.List)
		// Creating shows the new secret; Update asks for a recent sign-in
		// itself when the URL changes.
		g.GET("/webhooks/new", h.New, admin, recent)
		g.POST("/webhooks", h.Create, admin, recent)
		g.GET("/webhooks/:id", h.Show)
		g.POST("/webhooks/:id", h.Update, admin)
		g.GET("/webhooks/:id/edit", h.Edit, admin)
		g.POST("/webhooks/:id/disable", h.Disable, admin)
		g.POST("/webhooks/:id/enable", h.Enable, admin)
		g.GET("/webhooks/:id/delete", h.DeleteConfirm, admin)
		g.POST("/webhooks/:id/delete", h.Delete, admin)
		g.GET("/webhooks/:id/secret", h.SetSecretConfirm, admin, recent)
		g.POST("/webhooks/:id/secret", h.SetSecret, admin, recent)
		g.GET("/webhooks/:id/reveal", h.RevealConfirm, admin, recent)
		g.POST("/webhooks/:id/reveal", h.Reveal, admin, recent)
		g.POST("/webhooks/:id/test", h.Test, admin)
		g.POST("/webhooks/:id/test-new-secret", h.TestNewSecret, admin)
		g.POST("/webhooks/:id/end-rotation", h.EndRotation, admin)
	}
}
