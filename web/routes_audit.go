package web

import (
	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/audit"
)

// AuditRoutes mounts the audit log viewer and its exports for reviewers and
// admins of the agency; anyone else gets the same 404 as a missing page.
func AuditRoutes(h *handlers.AuditLog) func(e *echo.Echo, r *Router) {
	return func(e *echo.Echo, r *Router) {
		reviewer := r.Role(models.RoleReviewer)
		r.Agency.GET("/audit", h.List, reviewer)
		r.Agency.GET("/audit/export.csv", h.Export(audit.FormatCSV), reviewer)
		r.Agency.GET("/audit/export.jsonl", h.Export(audit.FormatJSONL), reviewer)
		r.Agency.GET("/audit/export.pdf", h.Export(audit.FormatPDF), reviewer)
		r.Agency.GET("/audit/:id", h.Show, reviewer)
	}
}
