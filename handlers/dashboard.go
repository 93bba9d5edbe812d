package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"keyconsole/models"
	"keyconsole/views"
)

// Dashboard shows an agency's landing page.
func (h *Handler) Dashboard(c echo.Context) error {
	r := h.req(c)
	s, ctx := r.scope, r.ctx
	d := views.DashboardData{AgencyName: s.Agency.Name, Role: s.Role}
	members, err := h.Users.Members(ctx, s.Agency.ID)
	if err != nil {
		return err
	}
	d.Members = len(members)
	for _, t := range h.Tiles {
		tiles, err := t(ctx, s)
		if err != nil {
			return err
		}
		d.Tiles = append(d.Tiles, tiles...)
	}
	if s.Role == models.RoleAdmin || s.Role == models.RoleReviewer {
		events, err := h.Audit.Page(ctx, models.AuditFilter{AgencyID: s.Agency.ID}, 8)
		if err != nil {
			return err
		}
		for _, e := range events {
			d.Activity = append(d.Activity, views.ActivityRow{When: views.When(e.OccurredAt), Actor: actorLabel(e), Action: e.Action, Target: e.TargetName, Outcome: e.Outcome})
		}
	}
	return Render(c, http.StatusOK, views.Dashboard(h.Page(c, s.Agency.Name, "dashboard"), d))
}

func actorLabel(e models.AuditEvent) string {
	if e.ActorName != "" {
		return e.ActorName
	}
	if e.ActorID != "" {
		return e.ActorID
	}
	return e.ActorType
}

// NotBuilt answers for a section this version does not offer.
func (h *Handler) NotBuilt(section, nav string) echo.HandlerFunc {
	return func(c echo.Context) error {
		return Render(c, http.StatusOK, views.NotBuilt(h.Page(c, section, nav), section))
	}
}

// Home sends a signed-in user to their current agency.
func (h *Handler) Home(c echo.Context) error {
	pr, _ := PrincipalOf(c)
	ctx := c.Request().Context()
	ids := pr.AgencyIDs()
	id := pr.CurrentAgencyID
	if pr.RoleIn(id) == "" || id == 0 {
		id = 0
		if len(ids) > 0 {
			id = ids[0]
		}
	}
	if id == 0 {
		if pr.IsOperator() {
			return c.Redirect(http.StatusSeeOther, "/operator/agencies")
		}
		return Render(c, http.StatusOK, views.NoAgency(h.Page(c, "No agency", "")))
	}
	a, err := h.Agencies.ByID(ctx, id)
	if err != nil {
		return notFoundOr(err)
	}
	return c.Redirect(http.StatusSeeOther, agencyPath(Scope{Agency: a}, ""))
}

// SwitchAgency points the session at another agency.
func (h *Handler) SwitchAgency(c echo.Context) error {
	pr, _ := PrincipalOf(c)
	ctx := c.Request().Context()
	a, err := h.Agencies.BySlug(ctx, c.FormValue("agency"))
	if err != nil {
		return notFoundOr(err)
	}
	if err := h.Auth.SwitchAgency(ctx, pr, a.ID); err != nil {
		return notFoundOr(err)
	}
	return SeeOther(c, agencyPath(Scope{Agency: a}, ""))
}
