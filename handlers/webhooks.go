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

	"keyconsole/models"
	"keyconsole/services/policy"
	"keyconsole/services/validation"
	"keyconsole/services/webhooks"
	"keyconsole/views"
)

// Webhooks serves the webhook endpoint pages: admins act, others read.
type Webhooks struct {
	*Handler
	Svc *webhooks.Service
}

// NewWebhooks returns the webhook pages.
func NewWebhooks(h *Handler, svc *webhooks.Service) *Webhooks { return &Webhooks{Handler: h, Svc: svc} }

const webhookLogSize = 50

// caller is who acts, as the webhook service records it.
func (r request) caller() webhooks.Caller { return webhooks.Caller{Actor: r.actor, Origin: r.origin} }

// endpoint loads the request's endpoint in the request's agency; another
// agency's endpoint is the same 404 as a missing one.
func (h *Webhooks) endpoint(c echo.Context) (request, models.WebhookEndpoint, error) {
	r := h.req(c)
	id, err := pathID(c, "id")
	if err != nil {
		return r, models.WebhookEndpoint{}, err
	}
	e, err := h.Svc.Endpoint(r.ctx, r.agency(), id)
	if err != nil {
		return r, models.WebhookEndpoint{}, notFoundOr(err)
	}
	return r, e, nil
}

var webhookAgeLabels = map[string]string{policy.AgeOK: "ok", policy.AgeDueSoon: "due soon", policy.AgeOverdue: "overdue"}

// List shows the agency's endpoints.
func (h *Webhooks) List(c echo.Context) error {
	r := h.req(c)
	ctx := r.ctx
	env := c.QueryParam("env")
	if env != models.WebhookStaging && env != models.WebhookProduction {
		env = ""
	}
	list, err := h.Svc.Endpoints(ctx, r.agency(), env)
	if err != nil {
		return err
	}
	now := h.Clock()
	d := views.WebhookListData{Env: env, EgressIPs: h.Svc.EgressIPs()}
	for _, e := range list {
		row := views.WebhookRow{
			ID: itoa(e.ID), Name: e.Name, Environment: e.Environment, URL: e.URL, Enabled: e.Enabled,
			Events: strings.Join(webhooks.SplitEvents(e.EventTypes), ", "), LastDelivery: views.WhenPtr(e.LastDeliveryAt, "never"),
		}
		if ev, ok, err := h.Svc.SecretAge(ctx, e); err != nil {
			return err
		} else if ok {
			row.SecretAge, row.SecretAgeLabel = ev.AgeState, webhookAgeLabels[ev.AgeState]
		}
		if e.InOverlap(now) {
			row.OverlapEnds = views.When(*e.OverlapEndsAt)
		}
		d.Rows = append(d.Rows, row)
	}
	return Render(c, http.StatusOK, views.WebhookList(h.Page(c, "Webhooks", "webhooks"), d))
}

func webhookEventChoices(selected []string) []views.WebhookEventChoice {
	on := map[string]bool{}
	for _, s := range selected {
		on[s] = true
	}
	var out []views.WebhookEventChoice
	for _, e := range webhooks.Catalogue() {
		out = append(out, views.WebhookEventChoice{Name: e.Name, Description: e.Description, Checked: on[e.Name]})
	}
	return out
}

func (h *Webhooks) renderForm(c echo.Context, status int, id string, form map[string]string, events []string, errs views.FieldErrors) error {
	title := "Add a webhook endpoint"
	if id != "" {
		title = "Edit " + form["name"]
	}
	d := views.WebhookFormData{ID: id, Form: form, Events: webhookEventChoices(events), Errs: errs, HTTPSOnly: h.Svc.RequiresHTTPS()}
	if status != http.StatusOK {
		noStore(c)
	}
	return Render(c, status, views.WebhookForm(h.Page(c, title, "webhooks"), d))
}

// New shows the form to add an endpoint.
func (h *Webhooks) New(c echo.Context) error {
	return h.renderForm(c, http.StatusOK, "", map[string]string{"environment": models.WebhookStaging, "secret_source": "generate"}, nil, nil)
}

func webhookEndpointInput(c echo.Context) (webhooks.EndpointInput, map[string]string, []string, error) {
	params, err := c.FormParams()
	if err != nil {
		return webhooks.EndpointInput{}, nil, nil, echo.NewHTTPError(http.StatusBadRequest, "bad form")
	}
	in := webhooks.EndpointInput{
		Environment: params.Get("environment"), Name: params.Get("name"), URL: params.Get("url"),
		Description: params.Get("description"), Events: params["events"],
	}
	form := map[string]string{"environment": in.Environment, "name": in.Name, "url": in.URL, "description": in.Description, "secret_source": params.Get("secret_source")}
	return in, form, in.Events, nil
}

func webhookSecretChoice(c echo.Context) webhooks.SecretChoice {
	return webhooks.SecretChoice{Generate: c.FormValue("secret_source") != "typed", Typed: c.FormValue("secret")}
}

// Create adds an endpoint and shows its secret once, in this response.
func (h *Webhooks) Create(c echo.Context) error {
	r := h.req(c)
	in, form, events, err := webhookEndpointInput(c)
	if err != nil {
		return err
	}
	e, sec, err := h.Svc.Create(r.ctx, r.caller(), r.agency(), in, webhookSecretChoice(c))
	var ie *validation.Error
	if errors.As(err, &ie) {
		return h.renderForm(c, http.StatusUnprocessableEntity, "", form, events, ie.Fields)
	}
	if err != nil {
		return err
	}
	return h.showSecret(c, e, sec, false, true)
}

func (h *Webhooks) showSecret(c echo.Context, e models.WebhookEndpoint, sec webhooks.Secret, revealed, created bool) error {
	noStore(c)
	d := views.WebhookSecretShown{ID: itoa(e.ID), Name: e.Name, Secret: sec.Reveal(), Whsec: sec.WhsecForm(), Revealed: revealed, Created: created}
	if !revealed && e.InOverlap(h.Clock()) {
		d.OverlapEnds = views.When(*e.OverlapEndsAt)
	}
	title := "Secret set"
	if revealed {
		title = "Secret revealed"
	}
	return Render(c, http.StatusOK, views.WebhookSecretOnce(h.Page(c, title, "webhooks"), d))
}

// Show is one endpoint's page. ?attempt=ID shows that log entry as the
// result of a test event.
func (h *Webhooks) Show(c echo.Context) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	ctx := r.ctx
	now := h.Clock()
	d := views.WebhookDetail{
		ID: itoa(e.ID), Name: e.Name, Environment: e.Environment, URL: e.URL, Description: e.Description,
		Events: webhooks.SplitEvents(e.EventTypes), Enabled: e.Enabled, SecretVersion: itoa(e.SecretVersion),
		SecretSetAt: views.WhenPtr(e.SecretSetAt, "never"), LastDelivery: views.WhenPtr(e.LastDeliveryAt, "never"),
		CreatedBy: e.CreatedBy, Created: views.When(e.CreatedAt), EgressIPs: h.Svc.EgressIPs(),
	}
	if ev, ok, err := h.Svc.SecretAge(ctx, e); err != nil {
		return err
	} else if ok {
		d.SecretAge, d.SecretAgeLabel, d.SecretDue = ev.AgeState, webhookAgeLabels[ev.AgeState], views.Day(ev.DueAt)
	}
	if e.InOverlap(now) {
		d.InOverlap, d.PreviousVersion, d.OverlapEnds = true, itoa(e.PreviousVersion), views.When(*e.OverlapEndsAt)
		d.VerifiedAt = views.WhenPtr(e.NewSecretVerifiedAt, "")
	}
	attempts, err := h.Svc.Attempts(ctx, e.AgencyID, e.ID, webhookLogSize)
	if err != nil {
		return err
	}
	for _, a := range attempts {
		d.Attempts = append(d.Attempts, webhookAttemptRow(a))
	}
	if raw := c.QueryParam("attempt"); raw != "" {
		if aid, err := strconv.ParseInt(raw, 10, 64); err == nil {
			if a, err := h.Svc.Attempt(ctx, e.AgencyID, e.ID, aid); err == nil && a.Kind != models.AttemptEvent {
				row := webhookAttemptRow(a)
				d.Result = &row
				d.ResultVerified = a.Kind == models.AttemptTestNewSecret && a.OK
			}
		}
	}
	for _, sn := range webhooks.Snippets(webhooks.DefaultSecretPlaceholder) {
		d.Snippets = append(d.Snippets, views.WebhookSnippet{ID: webhookSnippetID(sn.Language), Language: sn.Language, Install: sn.Install, Code: sn.Code})
	}
	return Render(c, http.StatusOK, views.WebhookShow(h.Page(c, e.Name, "webhooks"), d))
}

func webhookSnippetID(lang string) string {
	switch lang {
	case "C#":
		return "csharp"
	case "Node.js":
		return "node"
	}
	return strings.ToLower(lang)
}

func webhookAttemptRow(a models.WebhookAttempt) views.WebhookAttemptRow {
	status := "no response"
	if a.StatusCode != 0 {
		status = strconv.Itoa(a.StatusCode)
		if t := http.StatusText(a.StatusCode); t != "" {
			status += " " + t
		}
	}
	if a.Refused {
		status = "refused"
	}
	kind := map[string]string{models.AttemptEvent: fmt.Sprintf("attempt %d", a.Attempt), models.AttemptTest: "test", models.AttemptTestNewSecret: "test, new secret only"}[a.Kind]
	return views.WebhookAttemptRow{
		ID: itoa(a.ID), When: a.AttemptedAt.UTC().Format("2006-01-02 15:04:05 UTC"), Kind: kind, Event: a.EventType, MsgID: a.MsgID,
		SignedWith: webhookSignedWith(a.SignedWith), Status: status, Latency: (time.Duration(a.LatencyMS) * time.Millisecond).String(),
		Error: a.Error, ResponseHead: a.ResponseHead, OK: a.OK, Refused: a.Refused,
	}
}

// webhookSignedWith turns "v3+v2" into "secret versions 3 and 2".
func webhookSignedWith(label string) string {
	if label == "" {
		return "—"
	}
	parts := strings.Split(strings.ReplaceAll(label, "v", ""), "+")
	if len(parts) == 1 {
		return "secret version " + parts[0]
	}
	return "secret versions " + strings.Join(parts, " and ")
}

// Edit shows the form to change an endpoint.
func (h *Webhooks) Edit(c echo.Context) error {
	_, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	form := map[string]string{"environment": e.Environment, "name": e.Name, "url": e.URL, "description": e.Description}
	return h.renderForm(c, http.StatusOK, itoa(e.ID), form, webhooks.SplitEvents(e.EventTypes), nil)
}

// Update changes an endpoint.
func (h *Webhooks) Update(c echo.Context) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	in, form, events, err := webhookEndpointInput(c)
	if err != nil {
		return err
	}
	// A new URL redirects the endpoint's signed events: like revealing a
	// secret, it needs a recent sign-in. Other changes do not.
	if strings.TrimSpace(in.URL) != e.URL {
		if ok, err := h.recentOr(c, agencyPath(r.scope, "webhooks", itoa(e.ID), "edit")); !ok {
			return err
		}
	}
	_, err = h.Svc.Update(r.ctx, r.caller(), r.agency(), e.ID, in)
	var ie *validation.Error
	if errors.As(err, &ie) {
		return h.renderForm(c, http.StatusUnprocessableEntity, itoa(e.ID), form, events, ie.Fields)
	}
	if err != nil {
		return notFoundOr(err)
	}
	h.Flashf(c, "success", "Endpoint saved.")
	return SeeOther(c, agencyPath(r.scope, "webhooks", itoa(e.ID)))
}

// Disable stops deliveries to an endpoint; queued events wait.
func (h *Webhooks) Disable(c echo.Context) error { return h.setEnabled(c, false) }

// Enable resumes deliveries to an endpoint.
func (h *Webhooks) Enable(c echo.Context) error { return h.setEnabled(c, true) }

func (h *Webhooks) setEnabled(c echo.Context, on bool) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	if err := h.Svc.SetEnabled(r.ctx, r.caller(), r.agency(), e.ID, on); err != nil {
		return notFoundOr(err)
	}
	if on {
		h.Flashf(c, "success", "Endpoint enabled; queued events will be delivered.")
	} else {
		h.Flashf(c, "success", "Endpoint disabled; new events are refused and queued ones wait until it is enabled.")
	}
	return SeeOther(c, agencyPath(r.scope, "webhooks", itoa(e.ID)))
}

func webhookConfirmed(c echo.Context, name string) bool {
	return strings.TrimSpace(c.FormValue("confirm")) == name
}

const webhookConfirmMismatch = "Type the endpoint's name exactly as shown."

func (h *Webhooks) deleteConfirm(c echo.Context, status int, e models.WebhookEndpoint, s Scope, errs views.FieldErrors) error {
	d := views.WebhookConfirmData{
		ID: itoa(e.ID), Name: e.Name, Action: agencyPath(s, "webhooks", itoa(e.ID), "delete"), Heading: "Delete " + e.Name,
		Lead:   "Deleting the endpoint destroys its secrets, drops its queued events and its delivery log. The audit log keeps the record.",
		Button: "Delete endpoint", Danger: true, Errs: errs,
	}
	return Render(c, status, views.WebhookConfirm(h.Page(c, "Delete "+e.Name, "webhooks"), d))
}

// DeleteConfirm asks for the endpoint's name before deleting it.
func (h *Webhooks) DeleteConfirm(c echo.Context) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	return h.deleteConfirm(c, http.StatusOK, e, r.scope, nil)
}

// Delete removes an endpoint.
func (h *Webhooks) Delete(c echo.Context) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	if !webhookConfirmed(c, e.Name) {
		return h.deleteConfirm(c, http.StatusUnprocessableEntity, e, r.scope, views.FieldErrors{"confirm": webhookConfirmMismatch})
	}
	if err := h.Svc.Delete(r.ctx, r.caller(), r.agency(), e.ID); err != nil {
		return notFoundOr(err)
	}
	h.Flashf(c, "success", "Endpoint "+e.Name+" deleted.")
	return SeeOther(c, agencyPath(r.scope, "webhooks"))
}

func (h *Webhooks) setSecretConfirm(c echo.Context, status int, e models.WebhookEndpoint, form map[string]string, errs views.FieldErrors) error {
	d := views.WebhookSecretFormData{ID: itoa(e.ID), Name: e.Name, Form: form, Errs: errs}
	if e.InOverlap(h.Clock()) {
		d.InOverlap, d.OverlapEnds = true, views.When(*e.OverlapEndsAt)
	}
	noStore(c)
	return Render(c, status, views.WebhookSecretForm(h.Page(c, "New secret for "+e.Name, "webhooks"), d))
}

// SetSecretConfirm shows the form that sets a new secret once the
// endpoint's name is typed (recent sign-in required).
func (h *Webhooks) SetSecretConfirm(c echo.Context) error {
	_, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	return h.setSecretConfirm(c, http.StatusOK, e, map[string]string{"secret_source": "generate", "overlap_hours": strconv.Itoa(int(webhooks.DefaultOverlap.Hours())),
		"version": itoa(e.SecretVersion)}, nil)
}

// SetSecret sets a new secret, starting a rotation window, and shows the
// secret once in this response. A refused secret changes nothing.
func (h *Webhooks) SetSecret(c echo.Context) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	form := map[string]string{"secret_source": c.FormValue("secret_source"), "overlap_hours": c.FormValue("overlap_hours"), "version": c.FormValue("version")}
	// The version the form was shown for; a missing or malformed one never
	// matches, so such a form is refused as stale rather than applied.
	version, err := strconv.ParseInt(form["version"], 10, 64)
	if err != nil || version < 0 {
		version = -1
	}
	sc := webhookSecretChoice(c)
	sc.Overlap = -1
	if hours, err := strconv.Atoi(strings.TrimSpace(form["overlap_hours"])); err == nil && hours >= 0 && hours <= int(webhooks.MaxOverlap.Hours()) {
		sc.Overlap = time.Duration(hours) * time.Hour
	}
	if !webhookConfirmed(c, e.Name) {
		return h.setSecretConfirm(c, http.StatusUnprocessableEntity, e, form, views.FieldErrors{"confirm": webhookConfirmMismatch})
	}
	sec, updated, err := h.Svc.SetSecret(r.ctx, r.caller(), r.agency(), e.ID, version, sc)
	var ie *validation.Error
	if errors.As(err, &ie) {
		return h.setSecretConfirm(c, http.StatusUnprocessableEntity, e, form, ie.Fields)
	}
	if errors.Is(err, webhooks.ErrChanged) {
		noStore(c)
		return Render(c, http.StatusConflict, views.WebhookSecretAlreadySet(h.Page(c, "Secret already changed", "webhooks"), itoa(e.ID), e.Name))
	}
	if err != nil {
		return notFoundOr(err)
	}
	return h.showSecret(c, updated, sec, false, false)
}

func (h *Webhooks) revealConfirm(c echo.Context, status int, e models.WebhookEndpoint, s Scope, errs views.FieldErrors) error {
	d := views.WebhookConfirmData{
		ID: itoa(e.ID), Name: e.Name, Action: agencyPath(s, "webhooks", itoa(e.ID), "reveal"), Heading: "Reveal the secret of " + e.Name,
		Lead: "Revealing the secret is recorded in the audit log. Anyone who sees it can sign events the receiver will accept.", Button: "Reveal secret", Errs: errs,
	}
	noStore(c)
	return Render(c, status, views.WebhookConfirm(h.Page(c, "Reveal secret", "webhooks"), d))
}

// RevealConfirm asks for the endpoint's name before revealing its secret
// (recent sign-in required).
func (h *Webhooks) RevealConfirm(c echo.Context) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	return h.revealConfirm(c, http.StatusOK, e, r.scope, nil)
}

// Reveal shows the current secret and its whsec_ form on a no-store page.
func (h *Webhooks) Reveal(c echo.Context) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	if !webhookConfirmed(c, e.Name) {
		return h.revealConfirm(c, http.StatusUnprocessableEntity, e, r.scope, views.FieldErrors{"confirm": webhookConfirmMismatch})
	}
	sec, e, err := h.Svc.Reveal(r.ctx, r.caller(), r.agency(), e.ID)
	if err != nil {
		return notFoundOr(err)
	}
	return h.showSecret(c, e, sec, true, false)
}

// Test sends one signed test event and shows its outcome.
func (h *Webhooks) Test(c echo.Context) error { return h.test(c, false) }

// TestNewSecret sends one test event signed with the new secret alone.
func (h *Webhooks) TestNewSecret(c echo.Context) error { return h.test(c, true) }

func (h *Webhooks) test(c echo.Context, newOnly bool) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	res, err := h.Svc.SendTest(r.ctx, r.caller(), r.agency(), e.ID, newOnly)
	var limited *webhooks.TestLimitError
	if errors.As(err, &limited) {
		// Answered 429 by web/errors.go; the header says when to come back.
		c.Response().Header().Set("Retry-After", strconv.Itoa(webhooks.RetryAfterSeconds(limited.RetryAfter)))
		return err
	}
	if errors.Is(err, webhooks.ErrNoRotation) {
		h.Flashf(c, "error", "No rotation window is open, so there is no new secret to test on its own.")
		return SeeOther(c, agencyPath(r.scope, "webhooks", itoa(e.ID)))
	}
	if err != nil {
		return notFoundOr(err)
	}
	return SeeOther(c, agencyPath(r.scope, "webhooks", itoa(e.ID))+"?attempt="+itoa(res.Attempt.ID)+"#test-result")
}

// EndRotation ends the rotation window now and destroys the old secret.
func (h *Webhooks) EndRotation(c echo.Context) error {
	r, e, err := h.endpoint(c)
	if err != nil {
		return err
	}
	err = h.Svc.EndRotation(r.ctx, r.caller(), r.agency(), e.ID)
	switch {
	case errors.Is(err, webhooks.ErrNoRotation):
		h.Flashf(c, "info", "No rotation window is open.")
	case err != nil:
		return notFoundOr(err)
	default:
		h.Flashf(c, "success", "Rotation window ended; the old secret was destroyed and deliveries carry the new signature only.")
	}
	return SeeOther(c, agencyPath(r.scope, "webhooks", itoa(e.ID)))
}

// Tiles are the dashboard figures of the webhook section.
func (h *Webhooks) Tiles(ctx context.Context, s Scope) ([]views.DashboardTile, error) {
	n, err := h.Svc.Counts(ctx, s.Agency.ID)
	if err != nil {
		return nil, err
	}
	link := agencyPath(s, "webhooks")
	tiles := []views.DashboardTile{{Label: "Webhook endpoints", Value: itoa(n.Endpoints), Link: link,
		Hint: fmt.Sprintf("%d disabled", n.Disabled)}}
	if n.Overlaps > 0 {
		tiles = append(tiles, views.DashboardTile{Label: "Webhook rotations in progress", Value: itoa(n.Overlaps), Link: link,
			Hint: "Deliveries carry the old and the new signature until each window ends."})
	}
	if n.FailedDeliveries > 0 {
		tiles = append(tiles, views.DashboardTile{Label: "Failed webhook deliveries", Value: itoa(n.FailedDeliveries), Link: link, Warn: true,
			Hint: "Events that were refused or ran out of retries; see each endpoint's delivery log."})
	}
	return tiles, nil
}
