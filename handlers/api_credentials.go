package handlers

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"keyconsole/models"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/oauth"
	"keyconsole/services/policy"
	"keyconsole/services/validation"
	"keyconsole/views"
)

// historyLimit is how many audit events a credential's page shows.
const historyLimit = 50

// APICredentials serves the API credential pages of an agency.
type APICredentials struct {
	*Handler
	Svc *apiclients.Service
	// TokenURL is the public URL of the token endpoint.
	TokenURL string
}

// NewAPICredentials returns the API credential pages; tokenURL is the
// public URL of the token endpoint the pages tell clients to use.
func NewAPICredentials(h *Handler, svc *apiclients.Service, tokenURL string) *APICredentials {
	return &APICredentials{Handler: h, Svc: svc, TokenURL: tokenURL}
}

func (h *APICredentials) row(s Scope, c apiclients.Credential) views.APICredentialRow {
	return credentialRow(agencyPath(s, "api-credentials"), c)
}

// credentialRow is a credential as a row of the pages under base, the
// agency's credentials path.
func credentialRow(base string, c apiclients.Credential) views.APICredentialRow {
	id := strconv.FormatInt(c.ID, 10)
	r := views.APICredentialRow{
		ID:          id,
		Name:        c.Name,
		ClientID:    c.ClientID,
		Environment: c.Environment,
		CreatedBy:   c.CreatedByName,
		Created:     views.When(c.CreatedAt),
		LastRotated: views.WhenPtr(c.RotatedAt, "never"),
		LastUsed:    views.WhenPtr(c.LastUsedAt, "never"),
		Expires:     "no expiry date",
		Age:         c.Policy.AgeState,
		DueAt:       views.Day(c.Policy.DueAt),
		Status:      c.Status,
		Path:        base + "/" + id,
	}
	if r.CreatedBy == "" {
		r.CreatedBy = "unknown"
	}
	if c.ExpiresAt != nil {
		r.Expires = views.When(*c.ExpiresAt)
	}
	switch c.Policy.AgeState {
	case policy.AgeOverdue:
		r.AgeLabel = "Overdue"
	case policy.AgeDueSoon:
		r.AgeLabel = "Due soon"
	default:
		r.AgeLabel = "OK"
	}
	return r
}

// credentialPageSize is how many credentials of one environment a list
// page shows.
const credentialPageSize = 25

// List shows the agency's credentials, one table per environment, newest
// first, one keyset page per table ("staging_before" and
// "production_before" carry each table's cursor).
func (h *APICredentials) List(c echo.Context) error {
	r := h.req(c)
	s, ctx := r.scope, r.ctx
	base := agencyPath(s, "api-credentials")
	q := c.QueryParams()
	// The agency's policy is read once: both tables are measured against it
	// and the page states its rotation period.
	pol, err := h.Svc.Policy(ctx, s.Agency.ID)
	if err != nil {
		return err
	}
	d := views.APICredentialList{NewPath: base + "/new", MaxAgeDays: maxAgeDays(pol)}
	for _, env := range []string{oauth.EnvStaging, oauth.EnvProduction} {
		before, _ := strconv.ParseInt(q.Get(env+"_before"), 10, 64)
		list, more, err := h.Svc.Page(ctx, s.Agency.ID, pol, env, max(before, 0), credentialPageSize)
		if err != nil {
			return err
		}
		rows := make([]views.APICredentialRow, len(list))
		for i := range list {
			rows[i] = credentialRow(base, list[i])
		}
		pg := views.APICredentialPager{}
		if more {
			v := url.Values{}
			for k, vs := range q {
				v[k] = vs
			}
			v.Set(env+"_before", strconv.FormatInt(list[len(list)-1].ID, 10))
			pg.Older = base + "?" + v.Encode()
		}
		if before > 0 {
			v := url.Values{}
			for k, vs := range q {
				v[k] = vs
			}
			v.Del(env + "_before")
			pg.Newest = base
			if len(v) > 0 {
				pg.Newest += "?" + v.Encode()
			}
		}
		if env == oauth.EnvProduction {
			d.Production, d.ProductionPager = rows, pg
		} else {
			d.Staging, d.StagingPager = rows, pg
		}
	}
	return Render(c, http.StatusOK, views.APICredentials(h.Page(c, "API credentials", "api"), d))
}

// maxAgeDays is the rotation period of API credentials under p, in days.
func maxAgeDays(p policy.Policy) int {
	return int(p.MaxAge(policy.TypeAPICredential).Hours() / 24)
}

// New shows the create form.
func (h *APICredentials) New(c echo.Context) error {
	return h.renderNew(c, http.StatusOK, views.APICredentialForm{Environment: oauth.EnvStaging}, nil)
}

func (h *APICredentials) renderNew(c echo.Context, status int, f views.APICredentialForm, errs views.FieldErrors) error {
	// Every rendering gets a fresh one-time token: a refused form may be
	// submitted again, a successful one may not.
	f.Nonce = apiclients.NewNonce()
	return Render(c, status, views.APICredentialNew(h.Page(c, "Create an API credential", "api"), f, errs))
}

// Create makes a credential and answers with the page that shows its
// secret, once. The secret is rendered into this response only: never a
// redirect, a URL, a flash or the session.
func (h *APICredentials) Create(c echo.Context) error {
	r := h.req(c)
	s := r.scope
	in := apiclients.CreateInput{
		Name:        c.FormValue("name"),
		Description: c.FormValue("description"),
		Environment: c.FormValue("environment"),
		Expires:     c.FormValue("expires"),
		Nonce:       c.FormValue("nonce"),
	}
	cred, secret, err := h.Svc.Create(r.ctx, r.actor, r.origin, r.agency(), in)
	var ve *validation.Error
	var ae *apiclients.AlreadySubmittedError
	switch {
	case errors.As(err, &ve):
		f := views.APICredentialForm{Name: in.Name, Description: in.Description, Environment: in.Environment, Expires: in.Expires}
		return h.renderNew(c, http.StatusUnprocessableEntity, f, ve.Fields)
	case errors.As(err, &ae):
		noStore(c)
		path := agencyPath(s, "api-credentials", itoa(ae.Credential.ID))
		return Render(c, http.StatusConflict, views.APICredentialAlreadyShown(h.Page(c, "Already created", "api"), "Credential "+ae.Credential.Name+" was already created", path))
	case err != nil:
		return err
	}
	return h.renderSecret(c, s, cred, secret, false)
}

func (h *APICredentials) renderSecret(c echo.Context, s Scope, cred models.APICredential, secret oauth.ClientSecret, regenerated bool) error {
	noStore(c)
	env := "# keyconsole API credential \"" + envComment(cred.Name) + "\" (" + cred.Environment + ") of " + envComment(s.Agency.Name) + "\n" +
		"ECD_TOKEN_URL=" + h.TokenURL + "\n" +
		"ECD_CLIENT_ID=" + cred.ClientID + "\n" +
		"ECD_CLIENT_SECRET=" + secret.Reveal() + "\n"
	shown := views.APISecretShown{
		Name:        cred.Name,
		ClientID:    cred.ClientID,
		Environment: cred.Environment,
		Secret:      secret.Reveal(),
		TokenURL:    h.TokenURL,
		EnvFileName: envFileName(s.Agency.Slug, cred.Name, cred.Environment),
		EnvDataURL:  templ.SafeURL("data:text/plain;charset=utf-8;base64," + base64.StdEncoding.EncodeToString([]byte(env))),
		DetailPath:  agencyPath(s, "api-credentials", itoa(cred.ID)),
		Regenerated: regenerated,
	}
	title := "Credential created"
	if regenerated {
		title = "Secret regenerated"
	}
	return Render(c, http.StatusOK, views.APICredentialSecret(h.Page(c, title, "api"), shown))
}

var fileNameUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// envFileName is a safe download name such as demo-county-sync-staging.env.
func envFileName(agency, name, env string) string {
	n := strings.Trim(fileNameUnsafe.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(n) > 40 {
		n = strings.Trim(n[:40], "-")
	}
	parts := []string{agency}
	if n != "" {
		parts = append(parts, n)
	}
	return strings.Join(append(parts, env), "-") + ".env"
}

// envComment keeps a name on one comment line of the .env file.
func envComment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return ' '
		}
		return r
	}, s)
}

// load resolves :id to one of the agency's credentials; anything else is
// the one 404.
func (h *APICredentials) load(c echo.Context) (request, apiclients.Credential, error) {
	r := h.req(c)
	id, err := pathID(c, "id")
	if err != nil {
		return r, apiclients.Credential{}, err
	}
	cred, err := h.Svc.Get(r.ctx, r.agency(), id)
	if err != nil {
		return r, apiclients.Credential{}, notFoundOr(err)
	}
	return r, cred, nil
}

// Show is a credential's page with its history (for admins and reviewers).
func (h *APICredentials) Show(c echo.Context) error {
	r, cred, err := h.load(c)
	if err != nil {
		return err
	}
	p := h.Page(c, cred.Name, "api")
	d := views.APICredentialDetail{Row: h.row(r.scope, cred), Description: cred.Description, ShowHistory: p.CanReview, TokenURL: h.TokenURL}
	if d.ShowHistory {
		evs, err := h.Svc.History(r.ctx, r.agency(), cred.ID, historyLimit)
		if err != nil {
			return notFoundOr(err)
		}
		for _, e := range evs {
			d.History = append(d.History, views.APICredentialEvent{
				When: views.When(e.OccurredAt), Actor: actorLabel(e), Action: e.Action,
				Outcome: e.Outcome, Reason: e.Reason, Details: audit.DecodeDetails(e.Details),
			})
		}
	}
	return Render(c, http.StatusOK, views.APICredentialShow(p, d))
}

func (h *APICredentials) confirm(s Scope, cred apiclients.Credential, action string) views.APICredentialConfirm {
	r := h.row(s, cred)
	return views.APICredentialConfirm{Row: r, Version: strconv.FormatInt(cred.SecretVersion, 10), Action: r.Path + "/" + action}
}

// RegenerateConfirm asks the admin to type the credential's name.
func (h *APICredentials) RegenerateConfirm(c echo.Context) error {
	r, cred, err := h.load(c)
	if err != nil {
		return err
	}
	if cred.Status != apiclients.StatusActive {
		h.Flashf(c, "error", "Only an active credential can be regenerated.")
		return SeeOther(c, agencyPath(r.scope, "api-credentials", c.Param("id")))
	}
	return Render(c, http.StatusOK, views.APICredentialRegenerate(h.Page(c, "Regenerate "+cred.Name, "api"), h.confirm(r.scope, cred, "regenerate"), nil))
}

// Regenerate replaces the secret and shows the new one, once.
func (h *APICredentials) Regenerate(c echo.Context) error {
	r, cred, err := h.load(c)
	if err != nil {
		return err
	}
	s := r.scope
	version, _ := strconv.ParseInt(c.FormValue("version"), 10, 64)
	in := apiclients.RegenerateInput{ConfirmName: c.FormValue("confirm_name"), Version: version}
	out, secret, err := h.Svc.Regenerate(r.ctx, r.actor, r.origin, r.agency(), cred.ID, in)
	var ve *validation.Error
	detail := agencyPath(s, "api-credentials", itoa(cred.ID))
	switch {
	case errors.As(err, &ve):
		cf := h.confirm(s, cred, "regenerate")
		cf.Confirm = in.ConfirmName
		return Render(c, http.StatusUnprocessableEntity, views.APICredentialRegenerate(h.Page(c, "Regenerate "+cred.Name, "api"), cf, ve.Fields))
	case errors.Is(err, apiclients.ErrStale):
		noStore(c)
		return Render(c, http.StatusConflict, views.APICredentialAlreadyShown(h.Page(c, "Already regenerated", "api"), "The secret of "+cred.Name+" was already regenerated", detail))
	case errors.Is(err, apiclients.ErrRevoked), errors.Is(err, apiclients.ErrExpired):
		h.Flashf(c, "error", "Only an active credential can be regenerated.")
		return SeeOther(c, detail)
	case err != nil:
		return notFoundOr(err)
	}
	return h.renderSecret(c, s, out, secret, true)
}

// RevokeConfirm asks the admin to confirm a revocation.
func (h *APICredentials) RevokeConfirm(c echo.Context) error {
	r, cred, err := h.load(c)
	if err != nil {
		return err
	}
	if cred.Status == apiclients.StatusRevoked {
		h.Flashf(c, "info", "This credential is already revoked.")
		return SeeOther(c, agencyPath(r.scope, "api-credentials", c.Param("id")))
	}
	return Render(c, http.StatusOK, views.APICredentialRevoke(h.Page(c, "Revoke "+cred.Name, "api"), h.confirm(r.scope, cred, "revoke")))
}

// Revoke revokes the credential at once.
func (h *APICredentials) Revoke(c echo.Context) error {
	r, cred, err := h.load(c)
	if err != nil {
		return err
	}
	detail := agencyPath(r.scope, "api-credentials", itoa(cred.ID))
	_, err = h.Svc.Revoke(r.ctx, r.actor, r.origin, r.agency(), cred.ID)
	switch {
	case errors.Is(err, apiclients.ErrRevoked):
		h.Flashf(c, "info", "This credential was already revoked.")
		return SeeOther(c, detail)
	case err != nil:
		return notFoundOr(err)
	}
	h.Flashf(c, "success", "Credential "+cred.Name+" revoked. The token endpoint refuses it from now on.")
	return SeeOther(c, detail)
}

// Tiles summarises the agency's credentials on the dashboard.
func (h *APICredentials) Tiles(ctx context.Context, s Scope) ([]views.DashboardTile, error) {
	sum, err := h.Svc.Summarize(ctx, s.Agency.ID)
	if err != nil {
		return nil, err
	}
	t := views.DashboardTile{Label: "API credentials", Value: strconv.Itoa(sum.Active), Link: agencyPath(s, "api-credentials"), Hint: "active"}
	if sum.Overdue > 0 || sum.DueSoon > 0 {
		t.Hint = strconv.Itoa(sum.Overdue) + " overdue, " + strconv.Itoa(sum.DueSoon) + " due soon for rotation"
		t.Warn = sum.Overdue > 0
	}
	return []views.DashboardTile{t}, nil
}
