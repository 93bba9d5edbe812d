package web

import (
	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/reports"
)

// ReportsRoutes mounts the Reports page and the credential inventory
// downloads for reviewers and admins of the agency; anyone else gets the
// same 404 as a missing page.
func ReportsRoutes(h *handlers.Reports) func(e *echo.Echo, r *Router) {
	return func(_ *echo.Echo, r *Router) {
		reviewer := r.Role(models.RoleReviewer)
		r.Agency.GET("/reports", h.Index, reviewer)
		r.Agency.GET("/reports/inventory.csv", h.Inventory(reports.FormatCSV), reviewer)
		r.Agency.GET("/reports/inventory.pdf", h.Inventory(reports.FormatPDF), reviewer)
	}
}
