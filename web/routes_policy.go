package web

import (
	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/models"
)

// PolicyRoutes mounts the rotation policy, hygiene review, IdP secret
// tracker, personnel-change workflow and runbooks. Everyone in the agency
// reads the policy, the review and the runbooks; reviewers also read
// operation summaries; only admins change anything, and revocations and
// personnel changes need a recent sign-in. Platform operators list and
// re-enable deactivated users under /operator/users.
func PolicyRoutes(h *handlers.Hygiene) func(e *echo.Echo, r *Router) {
	return func(_ *echo.Echo, r *Router) {
		ag := r.Agency
		admin := r.Role(models.RoleAdmin)
		ag.GET("/policy", h.PolicyShow)
		ag.POST("/policy", h.PolicyUpdate, admin)
		ag.GET("/policy/idp-secrets", h.IdPSecrets)
		ag.POST("/policy/idp-secrets/:provider", h.IdPSecretSave, admin)
		ag.GET("/hygiene", h.HygieneShow)
		ag.GET("/hygiene/revoke", h.RevokeConfirm, admin, r.Recent())
		ag.POST("/hygiene/revoke", h.RevokeSelected, admin, r.Recent())
		ag.GET("/operations/:op", h.Operation, r.Role(models.RoleReviewer))
		ag.GET("/personnel", h.PersonnelIndex, admin)
		ag.GET("/personnel/:user", h.PersonnelReview, admin, r.Recent())
		ag.POST("/personnel/:user", h.PersonnelApply, admin, r.Recent())
		// Re-enabling asks for a recent sign-in itself (back to the review
		// page, or the operator's list).
		ag.POST("/personnel/:user/enable", h.PersonnelReenable, admin)
		r.Operator.GET("/users", h.OperatorUsers)
		r.Operator.POST("/users/:user/enable", h.OperatorUserEnable)
		ag.GET("/runbooks", h.Runbooks)
		ag.GET("/runbooks/:type", h.Runbook)
	}
}
