package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/views"
)

// runbookTypes are the secret types with a runbook, in display order.
var runbookTypes = []views.RunbookLink{
	{Type: policy.TypeAPICredential, Title: "API credentials", Summary: "regenerate the client secret and update the application at once"},
	{Type: policy.TypeSSHKey, Title: "SSH keys (SFTP)", Summary: "generate a new key pair locally, upload the public key, then revoke the old one"},
	{Type: policy.TypeWebhookSecret, Title: "Webhook secrets", Summary: "rotate with an overlap window and update the receiver within it"},
	{Type: inventory.TypeIdPSecret, Title: "IdP client secrets", Summary: "create a new secret in the identity provider before the old one expires"},
}

// Runbooks lists the rotation runbooks.
func (h *Hygiene) Runbooks(c echo.Context) error {
	return Render(c, http.StatusOK, views.RunbookIndex(h.Page(c, "Runbooks", "policy"), runbookTypes))
}

// Runbook shows the printable rotation procedure of one secret type with
// the agency's policy values filled in.
func (h *Hygiene) Runbook(c echo.Context) error {
	r := h.req(c)
	s, ctx := r.scope, r.ctx
	typ := c.Param("type")
	var title string
	for _, l := range runbookTypes {
		if l.Type == typ {
			title = l.Title
		}
	}
	if title == "" {
		return ErrNotFound
	}
	p, err := h.Policies.Policy(ctx, s.Agency.ID)
	if err != nil {
		return err
	}
	v := views.RunbookView{Type: typ, Title: title, AgencyName: s.Agency.Name, DueSoonDays: p.DueSoonDays, UnusedDays: p.UnusedDays,
		MinRSABits: p.MinRSABits, IdPWarnDays: p.IdPWarningDays, Printed: views.Day(h.now())}
	if typ != inventory.TypeIdPSecret {
		v.MaxAgeDays = int(p.MaxAge(typ).Hours() / 24)
		v.WarnFrom = v.MaxAgeDays - p.DueSoonDays
	} else {
		recs, err := h.Policies.IdPSecrets(ctx, s.Agency.ID)
		if err != nil {
			return err
		}
		for _, pv := range h.Providers {
			if r, ok := recs[pv.ID]; ok {
				v.Recorded = append(v.Recorded, pv.Label+": expires "+views.Day(r.ExpiresAt))
			} else {
				v.Recorded = append(v.Recorded, pv.Label+": expiry not recorded")
			}
		}
	}
	return Render(c, http.StatusOK, views.Runbook(h.Page(c, "Runbook: "+title, "policy"), v))
}
