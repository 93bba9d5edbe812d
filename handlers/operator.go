package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"keyconsole/services/validation"
	"keyconsole/views"
)

// OperatorAgencies lists agencies (platform operators only).
func (h *Handler) OperatorAgencies(c echo.Context) error {
	return h.renderAgencies(c, http.StatusOK, nil, nil)
}

func (h *Handler) renderAgencies(c echo.Context, status int, form map[string]string, errs views.FieldErrors) error {
	list, err := h.Agencies.List(c.Request().Context())
	if err != nil {
		return err
	}
	rows := make([]views.AgencyRow, 0, len(list))
	for _, a := range list {
		rows = append(rows, views.AgencyRow{Slug: a.Slug, Name: a.Name, Created: views.Day(a.CreatedAt)})
	}
	return Render(c, status, views.OperatorAgencies(h.Page(c, "Agencies", "operator"), rows, form, errs))
}

// OperatorAgencyCreate creates an agency.
func (h *Handler) OperatorAgencyCreate(c echo.Context) error {
	r := h.req(c)
	form := map[string]string{"slug": c.FormValue("slug"), "name": c.FormValue("name")}
	a, err := h.Agencies.Create(r.ctx, r.actor, r.origin, form["slug"], form["name"])
	var ve *validation.Error
	if errors.As(err, &ve) {
		return h.renderAgencies(c, http.StatusUnprocessableEntity, form, ve.Fields)
	}
	if err != nil {
		return err
	}
	h.Flashf(c, "success", "Agency "+a.Name+" created. Add group mappings so its people can sign in.")
	return SeeOther(c, "/operator/agencies/"+a.Slug)
}

// OperatorAgency shows an agency's group mappings.
func (h *Handler) OperatorAgency(c echo.Context) error {
	return h.renderAgency(c, http.StatusOK, map[string]string{"role": "viewer"}, nil)
}

func (h *Handler) renderAgency(c echo.Context, status int, form map[string]string, errs views.FieldErrors) error {
	ctx := c.Request().Context()
	a, err := h.Agencies.BySlug(ctx, c.Param("slug"))
	if err != nil {
		return notFoundOr(err)
	}
	maps, err := h.Agencies.Mappings(ctx, a.ID)
	if err != nil {
		return err
	}
	rows := make([]views.MappingRow, 0, len(maps))
	for _, m := range maps {
		rows = append(rows, views.MappingRow{ID: strconv.FormatInt(m.ID, 10), Provider: m.Provider, Group: m.GroupValue, Role: m.Role})
	}
	return Render(c, status, views.OperatorAgency(h.Page(c, a.Name+" mappings", "operator"), views.AgencyRef{Slug: a.Slug, Name: a.Name}, rows, h.Providers, form, errs))
}

// OperatorMappingCreate adds a mapping.
func (h *Handler) OperatorMappingCreate(c echo.Context) error {
	r := h.req(c)
	a, err := h.Agencies.BySlug(r.ctx, c.Param("slug"))
	if err != nil {
		return notFoundOr(err)
	}
	form := map[string]string{"provider": c.FormValue("provider"), "group": c.FormValue("group"), "role": c.FormValue("role")}
	known := false
	for _, p := range h.Providers {
		known = known || p.ID == form["provider"]
	}
	if !known {
		return h.renderAgency(c, http.StatusUnprocessableEntity, form, views.FieldErrors{"provider": "Choose one of the configured sign-in providers."})
	}
	_, err = h.Agencies.Map(r.ctx, r.actor, r.origin, a.ID, form["provider"], form["group"], form["role"])
	var ve *validation.Error
	if errors.As(err, &ve) {
		return h.renderAgency(c, http.StatusUnprocessableEntity, form, ve.Fields)
	}
	if err != nil {
		return err
	}
	h.Flashf(c, "success", "Mapping added.")
	return SeeOther(c, "/operator/agencies/"+a.Slug)
}

// OperatorMappingDelete removes a mapping.
func (h *Handler) OperatorMappingDelete(c echo.Context) error {
	r := h.req(c)
	a, err := h.Agencies.BySlug(r.ctx, c.Param("slug"))
	if err != nil {
		return notFoundOr(err)
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := h.Agencies.Unmap(r.ctx, r.actor, r.origin, a.ID, id); err != nil {
		return notFoundOr(err)
	}
	h.Flashf(c, "success", "Mapping removed.")
	return SeeOther(c, "/operator/agencies/"+a.Slug)
}
