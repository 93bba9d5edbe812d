package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/services/validation"
	"keyconsole/views"
)

// IdPProvider is a configured sign-in provider whose client secret expiry
// the agency tracks.
type IdPProvider struct {
	ID, Label, Kind string
}

// Hygiene serves the rotation policy, the hygiene review, the IdP secret
// tracker, the personnel-change workflow and the runbooks.
type Hygiene struct {
	*Handler
	Policies  *policy.Service
	Inventory *inventory.Service
	Providers []IdPProvider
}

// NewHygiene returns the policy and hygiene pages; providers are the
// sign-in providers whose client secret expiry agencies track.
func NewHygiene(h *Handler, inv *inventory.Service, pol *policy.Service, providers []IdPProvider) *Hygiene {
	return &Hygiene{Handler: h, Policies: pol, Inventory: inv, Providers: providers}
}

func (h *Hygiene) now() time.Time { return h.Clock().UTC() }

// policyFields describes the policy values as form fields.
func policyFields(p policy.Policy) []views.PolicyField {
	var out []views.PolicyField
	for _, t := range policy.Types() {
		noun := policy.TypeLabel(t)
		if t == policy.TypeWebhookSecret {
			noun = "webhook secrets"
		}
		out = append(out, views.PolicyField{Name: t, Label: "Maximum age of " + noun, Unit: "days",
			Value: strconv.Itoa(p.MaxAgeDays[t]), Min: strconv.Itoa(policy.MinMaxAgeDays), Max: strconv.Itoa(policy.MaxMaxAgeDays),
			Hint: fmt.Sprintf("Rotate %s at least this often (%d to %d days).", noun, policy.MinMaxAgeDays, policy.MaxMaxAgeDays)})
	}
	rsa := make([]string, 0, 3)
	for _, b := range policy.RSASizes() {
		rsa = append(rsa, strconv.Itoa(b))
	}
	return append(out,
		views.PolicyField{Name: policy.FieldDueSoon, Label: "Due-soon window", Unit: "days", Value: strconv.Itoa(p.DueSoonDays),
			Min: strconv.Itoa(policy.MinDueSoonDays), Max: strconv.Itoa(policy.MaxDueSoonDays),
			Hint: fmt.Sprintf("Warn this many days before a credential reaches its maximum age (%d to %d, shorter than every maximum age).", policy.MinDueSoonDays, policy.MaxDueSoonDays)},
		views.PolicyField{Name: policy.FieldUnused, Label: "Unused after", Unit: "days", Value: strconv.Itoa(p.UnusedDays),
			Min: strconv.Itoa(policy.MinUnusedDays), Max: strconv.Itoa(policy.MaxUnusedDays),
			Hint: fmt.Sprintf("A credential not used for this long (or never used and this old) is listed for revocation (%d to %d).", policy.MinUnusedDays, policy.MaxUnusedDays)},
		views.PolicyField{Name: policy.FieldMinRSA, Label: "Minimum RSA key size", Unit: "bits", Value: strconv.Itoa(p.MinRSABits), Options: rsa,
			Hint: "The smallest RSA key accepted for SFTP. 3072 bits or more is recommended; 2048 only where a system cannot do better."},
		views.PolicyField{Name: policy.FieldIdPWarning, Label: "IdP secret warning window", Unit: "days", Value: strconv.Itoa(p.IdPWarningDays),
			Min: strconv.Itoa(policy.MinIdPWarningDays), Max: strconv.Itoa(policy.MaxIdPWarningDays),
			Hint: fmt.Sprintf("Warn this many days before an IdP client secret expires (%d to %d).", policy.MinIdPWarningDays, policy.MaxIdPWarningDays)},
	)
}

func (h *Hygiene) policyView(ctx context.Context, agencyID int64, form *policy.Policy, errs views.FieldErrors) (views.PolicyView, error) {
	cur, st, err := h.Policies.Current(ctx, agencyID)
	if err != nil {
		return views.PolicyView{}, err
	}
	shown := cur
	if form != nil {
		shown = *form
	}
	v := views.PolicyView{Custom: st.Custom, UpdatedAt: views.When(st.UpdatedAt), Fields: policyFields(shown), Errors: errs}
	match, ok := cur.MatchingPreset()
	if ok {
		v.Preset = match.Label
	}
	for _, pr := range policy.Presets() {
		v.Presets = append(v.Presets, views.PolicyPreset{ID: pr.ID, Label: pr.Label, Description: pr.Description, Current: ok && match.ID == pr.ID})
	}
	return v, nil
}

// PolicyShow shows the agency's rotation policy (everyone reads; admins edit).
func (h *Hygiene) PolicyShow(c echo.Context) error {
	r := h.req(c)
	v, err := h.policyView(r.ctx, r.agency(), nil, nil)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.PolicyPage(h.Page(c, "Rotation policy", "policy"), v))
}

// PolicyUpdate applies a preset or saves custom values. A refused value
// re-renders the form with each field's message (422) and changes nothing.
func (h *Hygiene) PolicyUpdate(c echo.Context) error {
	r := h.req(c)
	s, ctx := r.scope, r.ctx
	pr, _ := PrincipalOf(c)
	cur, err := h.Policies.Policy(ctx, r.agency())
	if err != nil {
		return err
	}
	next := cur.Clone()
	presetID := strings.TrimSpace(c.FormValue("preset"))
	errs := views.FieldErrors{}
	if presetID != "" {
		preset, ok := policy.PresetByID(presetID)
		if !ok {
			errs["preset"] = "Choose one of the offered presets."
		} else {
			next = cur.WithPreset(preset)
		}
	} else {
		for _, f := range policy.FieldNames() {
			raw := strings.TrimSpace(c.FormValue(f))
			n, err := strconv.Atoi(raw)
			if err != nil {
				errs[f] = fieldLabel(f) + " must be a whole number."
				n = 0
			}
			switch f {
			case policy.FieldDueSoon:
				next.DueSoonDays = n
			case policy.FieldUnused:
				next.UnusedDays = n
			case policy.FieldMinRSA:
				next.MinRSABits = n
			case policy.FieldIdPWarning:
				next.IdPWarningDays = n
			default:
				next.MaxAgeDays[f] = n
			}
		}
	}
	if len(errs) > 0 && presetID == "" {
		// Report every refused field at once, not only the unparsable ones.
		var ve *validation.Error
		if errors.As(policy.Validate(next), &ve) {
			for k, v := range ve.Fields {
				if _, ok := errs[k]; !ok {
					errs[k] = v
				}
			}
		}
	}
	if len(errs) == 0 {
		changed, err := h.Policies.Update(ctx, policy.Change{AgencyID: s.Agency.ID, AgencyName: s.Agency.Name, UserID: pr.User.ID,
			Actor: r.actor, Origin: r.origin, Preset: presetID, Policy: next})
		var ve *validation.Error
		switch {
		case errors.As(err, &ve):
			for k, v := range ve.Fields {
				errs[k] = v
			}
		case err != nil:
			return err
		case len(changed) == 0:
			h.Flashf(c, "info", "The policy already had these values; nothing changed.")
			return SeeOther(c, agencyPath(s, "policy"))
		default:
			h.Flashf(c, "success", fmt.Sprintf("Rotation policy saved (%d values changed).", len(changed)))
			return SeeOther(c, agencyPath(s, "policy"))
		}
	}
	// Keep what was typed for a bad field so the admin can correct it.
	v, err := h.policyView(ctx, r.agency(), &next, errs)
	if err != nil {
		return err
	}
	for i, f := range v.Fields {
		if _, bad := errs[f.Name]; bad && presetID == "" {
			v.Fields[i].Value = c.FormValue(f.Name)
		}
	}
	return Render(c, http.StatusUnprocessableEntity, views.PolicyPage(h.Page(c, "Rotation policy", "policy"), v))
}

func fieldLabel(f string) string {
	for _, pf := range policyFields(policy.Default()) {
		if pf.Name == f {
			return pf.Label
		}
	}
	return f
}

func (h *Hygiene) provider(id string) (IdPProvider, bool) {
	for _, p := range h.Providers {
		if p.ID == id {
			return p, true
		}
	}
	return IdPProvider{}, false
}

// idpStatus describes an expiry date at now against the warning window.
func idpStatus(exp time.Time, now time.Time, warnDays int) (string, bool) {
	d := exp.Sub(now)
	switch {
	case d <= 0:
		return "lapsed on " + views.Day(exp), true
	case d < time.Duration(warnDays)*24*time.Hour:
		return fmt.Sprintf("expires in %d days", int(d.Hours()/24)), true
	}
	return fmt.Sprintf("ok (%d days left)", int(d.Hours()/24)), false
}

func (h *Hygiene) idpView(ctx context.Context, agencyID int64) (views.IdPSecretsView, error) {
	p, err := h.Policies.Policy(ctx, agencyID)
	if err != nil {
		return views.IdPSecretsView{}, err
	}
	recs, err := h.Policies.IdPSecrets(ctx, agencyID)
	if err != nil {
		return views.IdPSecretsView{}, err
	}
	v := views.IdPSecretsView{WarningDays: p.IdPWarningDays}
	now := h.now()
	for _, pv := range h.Providers {
		row := views.IdPSecretRow{Provider: pv.ID, Label: pv.Label, Kind: pv.Kind, Expires: "not recorded", Status: "expiry not recorded"}
		if r, ok := recs[pv.ID]; ok {
			row.Expires = views.Day(r.ExpiresAt)
			row.Status, row.Warn = idpStatus(r.ExpiresAt, now, p.IdPWarningDays)
			row.Note, row.Updated = r.Note, views.When(r.UpdatedAt)
			row.FormExpires, row.FormNote = r.ExpiresAt.UTC().Format(time.DateOnly), r.Note
		}
		v.Rows = append(v.Rows, row)
	}
	return v, nil
}

// IdPSecrets shows the recorded expiry dates of the IdP client secrets.
func (h *Hygiene) IdPSecrets(c echo.Context) error {
	r := h.req(c)
	v, err := h.idpView(r.ctx, r.agency())
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.IdPSecretsPage(h.Page(c, "IdP client secrets", "policy"), v))
}

// IdPSecretSave records (or, with an empty date, clears) one provider's
// client secret expiry date.
func (h *Hygiene) IdPSecretSave(c echo.Context) error {
	r := h.req(c)
	ctx := r.ctx
	pr, _ := PrincipalOf(c)
	pv, ok := h.provider(c.Param("provider"))
	if !ok {
		return ErrNotFound
	}
	raw := strings.TrimSpace(c.FormValue("expires_at"))
	note := strings.TrimSpace(c.FormValue("note"))
	errs := views.FieldErrors{}
	var exp *time.Time
	if raw != "" {
		t, err := time.Parse(time.DateOnly, raw)
		if err != nil {
			errs["expires_at"] = "Enter the date as YYYY-MM-DD."
		} else {
			exp = &t
		}
	}
	if len(errs) == 0 {
		err := h.Policies.SetIdPSecret(ctx, policy.IdPSecretChange{AgencyID: r.agency(), UserID: pr.User.ID, Actor: r.actor, Origin: r.origin,
			Provider: pv.ID, ProviderLabel: pv.Label, ProviderKind: pv.Kind, ExpiresAt: exp, Note: note})
		var ve *validation.Error
		switch {
		case errors.As(err, &ve):
			for k, v := range ve.Fields {
				errs[k] = v
			}
		case err != nil:
			return err
		default:
			if exp == nil {
				h.Flashf(c, "success", "Expiry record of "+pv.Label+" cleared.")
			} else {
				h.Flashf(c, "success", "Expiry of the "+pv.Label+" client secret recorded: "+views.Day(*exp)+".")
			}
			return SeeOther(c, agencyPath(r.scope, "policy", "idp-secrets"))
		}
	}
	v, err := h.idpView(ctx, r.agency())
	if err != nil {
		return err
	}
	for i := range v.Rows {
		if v.Rows[i].Provider == pv.ID {
			v.Rows[i].Errors, v.Rows[i].FormExpires, v.Rows[i].FormNote = errs, raw, note
		}
	}
	return Render(c, http.StatusUnprocessableEntity, views.IdPSecretsPage(h.Page(c, "IdP client secrets", "policy"), v))
}

// idpBanners warns about IdP secrets that lapsed or expire within the window.
func (h *Hygiene) idpBanners(ctx context.Context, s Scope, p policy.Policy) ([]views.Banner, error) {
	recs, err := h.Policies.IdPSecrets(ctx, s.Agency.ID)
	if err != nil {
		return nil, err
	}
	var out []views.Banner
	now := h.now()
	for _, pv := range h.Providers {
		r, ok := recs[pv.ID]
		if !ok {
			continue
		}
		status, warn := idpStatus(r.ExpiresAt, now, p.IdPWarningDays)
		if !warn {
			continue
		}
		b := views.Banner{Kind: "warning", Heading: "The " + pv.Label + " client secret " + status,
			Text: "When it expires, nobody in the agency can sign in to the console. Create a new secret in the identity provider now.",
			Link: agencyPath(s, "runbooks", "idp_secret"), LinkText: "How to rotate it"}
		if !r.ExpiresAt.After(now) {
			b.Kind, b.Text = "error", "Sign-in through this provider fails until a new client secret is configured."
		}
		out = append(out, b)
	}
	return out, nil
}

// Tiles are the agency dashboard figures of the hygiene review.
func (h *Hygiene) Tiles(ctx context.Context, s Scope) ([]views.DashboardTile, error) {
	tally, err := h.Inventory.Tally(ctx, s.Agency.ID)
	if err != nil {
		return nil, err
	}
	n := tally.Credentials()
	idpLink := agencyPath(s, "policy", "idp-secrets")
	tiles := []views.DashboardTile{
		{Label: "Overdue credentials", Value: strconv.Itoa(n.Overdue), Warn: n.Overdue > 0, Link: agencyPath(s, "hygiene") + "#overdue",
			Hint: fmt.Sprintf("%d due soon, %d never used, %d unused", n.DueSoon, n.NeverUsed, n.Unused)},
	}
	banners, err := h.idpBanners(ctx, s, tally.Policy)
	if err != nil {
		return nil, err
	}
	if len(banners) > 0 {
		tiles = append(tiles, views.DashboardTile{Label: "IdP client secret", Value: "Action needed", Warn: true, Hint: banners[0].Heading, Link: idpLink})
	} else if len(h.Providers) > 0 {
		recs, err := h.Policies.IdPSecrets(ctx, s.Agency.ID)
		if err != nil {
			return nil, err
		}
		soonest := ""
		var at time.Time
		for _, pv := range h.Providers {
			if r, ok := recs[pv.ID]; ok && (at.IsZero() || r.ExpiresAt.Before(at)) {
				at, soonest = r.ExpiresAt, views.Day(r.ExpiresAt)
			}
		}
		hint := "Expiry date not recorded"
		if soonest != "" {
			hint = "Next expiry " + soonest
		}
		tiles = append(tiles, views.DashboardTile{Label: "IdP client secret", Value: map[bool]string{true: "Tracked", false: "Not tracked"}[soonest != ""], Hint: hint, Link: idpLink})
	}
	return tiles, nil
}
