package web

import (
	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
)

// SSHKeysRoutes mounts the SSH keys pages under /a/:agency/ssh-keys: every
// member reads them; only admins create accounts, upload and revoke keys.
func SSHKeysRoutes(h *handlers.SSHKeys) func(e *echo.Echo, r *Router) {
	return func(_ *echo.Echo, r *Router) {
		admin := r.Role(models.RoleAdmin)
		g := r.Agency
		g.GET("/ssh-keys", h.List, r.Role(models.RoleViewer))
		g.POST("/ssh-keys/accounts", h.CreateAccount, admin)
		g.GET("/ssh-keys/accounts/:id/upload", h.UploadForm, admin)
		g.POST("/ssh-keys/accounts/:id/upload", h.Upload, admin)
		g.GET("/ssh-keys/keys/:id/revoke", h.RevokeConfirm, admin)
		g.POST("/ssh-keys/keys/:id/revoke", h.Revoke, admin)
	}
}
