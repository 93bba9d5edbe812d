package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/views"
)

func daysText(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if d < 0 {
		n = 0
	}
	if n == 1 {
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

func stateLabel(r inventory.Row, now time.Time) string {
	switch r.Eval.AgeState {
	case policy.AgeOverdue:
		if r.Type == inventory.TypeIdPSecret {
			return "lapsed"
		}
		return "overdue by " + daysText(now.Sub(r.Eval.DueAt))
	case policy.AgeDueSoon:
		if r.Type == inventory.TypeIdPSecret {
			return "expires in " + daysText(r.Eval.DueAt.Sub(now))
		}
		return "due in " + daysText(r.Eval.DueAt.Sub(now))
	}
	return "within policy"
}

func useLabel(r inventory.Row) string {
	switch r.Eval.UseState {
	case policy.UseNever:
		return "· never used"
	case policy.UseUnused:
		return "· unused"
	}
	return ""
}

// hygieneRow maps an evaluated item to its view.
func hygieneRow(base string, r inventory.Row, now time.Time, revocable bool) views.HygieneRow {
	v := views.HygieneRow{
		Key: r.Key(), Type: r.Type, TypeLabel: policy.TypeLabel(r.Type), Name: r.Name, Extra: r.Extra, Environment: r.Environment,
		Age: daysText(r.Eval.Age), Due: views.Day(r.Eval.DueAt), LastUsed: views.WhenPtr(r.LastUsedAt, "never"),
		State: r.Eval.AgeState, StateLabel: stateLabel(r, now), UseLabel: useLabel(r), Revocable: revocable && r.Active(),
	}
	if r.Type == inventory.TypeIdPSecret {
		v.Age, v.LastUsed, v.UseLabel = "—", "—", ""
	}
	if r.DetailPath != "" {
		v.DetailPath = base + r.DetailPath
	}
	if r.RotatePath != "" {
		v.RotatePath = base + r.RotatePath
		v.RotateLabel = "Rotate"
		if r.Type == policy.TypeSSHKey {
			v.RotateLabel = "Upload a new key"
		}
		if r.Type == inventory.TypeIdPSecret {
			v.RotateLabel = "Runbook"
		}
	}
	return v
}

func (h *Hygiene) revocable(itemType string) bool {
	return itemType != inventory.TypeIdPSecret && h.Inventory.Has(itemType)
}

func (h *Hygiene) rows(base string, rows []inventory.Row, now time.Time) []views.HygieneRow {
	out := make([]views.HygieneRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, hygieneRow(base, r, now, h.revocable(r.Type)))
	}
	return out
}

// HygieneShow is the hygiene review of the agency.
func (h *Hygiene) HygieneShow(c echo.Context) error {
	r := h.req(c)
	s, ctx := r.scope, r.ctx
	pr, _ := PrincipalOf(c)
	rep, items, err := h.Inventory.Report(ctx, r.agency())
	if err != nil {
		return err
	}
	base := agencyPath(s)
	now := rep.Now
	p := rep.Policy
	v := views.HygieneView{
		Overdue: len(rep.Overdue), DueSoon: len(rep.DueSoon), NeverUsed: len(rep.NeverUsed), Unused: len(rep.Unused),
		ChartSVG: string(inventory.AgeChartSVG(items, p, now)),
		PolicySummary: fmt.Sprintf("Policy: API credentials every %d days, SSH keys every %d days, webhook secrets every %d days; warnings %d days before; unused after %d days.",
			p.MaxAgeDays[policy.TypeAPICredential], p.MaxAgeDays[policy.TypeSSHKey], p.MaxAgeDays[policy.TypeWebhookSecret], p.DueSoonDays, p.UnusedDays),
		Now: views.When(now),
	}
	for _, t := range policy.Types() {
		if !h.Inventory.Has(t) {
			v.Missing = append(v.Missing, policy.TypeLabel(t))
		}
	}
	if s.Role == models.RoleAdmin {
		if h.Auth != nil && h.Auth.Recent(pr) {
			v.CanBulk = true
		} else {
			v.NeedsReauth = true
			v.ReauthPath = ReauthPath(agencyPath(s, "hygiene"))
		}
	}
	if v.Banners, err = h.idpBanners(ctx, s, p); err != nil {
		return err
	}
	for _, chart := range inventory.AgeChartRows(items, p, now) {
		cr := views.ChartRowView{Label: chart.Label, Count: strconv.Itoa(chart.Count), Limit: strconv.Itoa(chart.LimitDays), DueSoon: strconv.Itoa(chart.DueSoon), Overdue: strconv.Itoa(chart.Overdue), Oldest: "—", Median: "—"}
		if chart.Count > 0 {
			cr.Oldest, cr.Median = strconv.Itoa(chart.OldestDays), strconv.Itoa(chart.MedianDays)
		}
		v.ChartRows = append(v.ChartRows, cr)
	}
	v.Sections = []views.HygieneSection{
		{ID: "overdue", Title: "Overdue", Hint: "Older than the policy's maximum age for their type (IdP client secrets: past their expiry date). Rotate them now.",
			Empty: "Nothing is overdue.", Rows: h.rows(base, rep.Overdue, now)},
		{ID: "due-soon", Title: "Due soon", Hint: fmt.Sprintf("Reach their maximum age within %d days (IdP client secrets: expire within %d days). Plan their rotation.", p.DueSoonDays, p.IdPWarningDays),
			Empty: "Nothing is due soon.", Rows: h.rows(base, rep.DueSoon, now)},
		{ID: "never-used", Title: "Never used", Hint: fmt.Sprintf("Created at least %d days ago and never used. Revoke them unless they are about to be used.", p.UnusedDays),
			Empty: "Every credential older than the unused threshold has been used.", Rows: h.rows(base, rep.NeverUsed, now)},
		{ID: "unused", Title: "Unused", Hint: fmt.Sprintf("Not used for %d days or more. Revoke them if nobody needs them.", p.UnusedDays),
			Empty: "No credential has gone unused for that long.", Rows: h.rows(base, rep.Unused, now)},
	}
	return Render(c, http.StatusOK, views.HygienePage(h.Page(c, "Credential hygiene", "hygiene"), v))
}

// selectedItems returns the agency's items named by the request's "item"
// values; any key naming no revocable item of the agency answers 404.
func (h *Hygiene) selectedItems(c echo.Context, keys []string) ([]views.HygieneRow, []string, error) {
	r := h.req(c)
	ctx := r.ctx
	if len(keys) > 500 {
		return nil, nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, "too many items")
	}
	items, err := h.Inventory.Find(ctx, r.agency(), keys)
	if err != nil {
		return nil, nil, notFoundOr(err)
	}
	p, err := h.Policies.Policy(ctx, r.agency())
	if err != nil {
		return nil, nil, err
	}
	now := h.Inventory.Now()
	base := agencyPath(r.scope)
	var rows []views.HygieneRow
	var clean []string
	for _, it := range items {
		if !h.revocable(it.Type) || !it.Active() {
			return nil, nil, ErrNotFound
		}
		rows = append(rows, hygieneRow(base, inventory.Row{Item: it, Eval: inventory.EvaluateItem(it, p, now)}, now, true))
		clean = append(clean, it.Key())
	}
	return rows, clean, nil
}

// RevokeConfirm asks to confirm the revocation of the selected credentials.
func (h *Hygiene) RevokeConfirm(c echo.Context) error {
	r := h.req(c)
	keys := c.QueryParams()["item"]
	rows, _, err := h.selectedItems(c, keys)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.RevokeConfirm(h.Page(c, "Revoke credentials", "hygiene"), views.RevokeConfirmView{Rows: rows, Slug: r.scope.Agency.Slug}))
}

// RevokeSelected revokes the confirmed credentials as one linked operation.
func (h *Hygiene) RevokeSelected(c echo.Context) error {
	r := h.req(c)
	s := r.scope
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "bad form")
	}
	rows, keys, err := h.selectedItems(c, form["item"])
	if err != nil {
		return err
	}
	reason := strings.TrimSpace(form.Get("reason"))
	errs := views.FieldErrors{}
	if len(keys) == 0 {
		errs["item"] = "Select at least one credential on the hygiene review."
	}
	if strings.TrimSpace(form.Get("confirm")) != s.Agency.Slug {
		errs["confirm"] = "Type the agency's short name, " + s.Agency.Slug + ", exactly to confirm."
	}
	if len(reason) > 300 || strings.ContainsAny(reason, "\r\n") {
		errs["reason"] = "The reason must be a single line of at most 300 characters."
	}
	if len(errs) > 0 {
		return Render(c, http.StatusUnprocessableEntity, views.RevokeConfirm(h.Page(c, "Revoke credentials", "hygiene"),
			views.RevokeConfirmView{Rows: rows, Slug: s.Agency.Slug, Reason: reason, Errors: errs}))
	}
	op, err := h.Inventory.BulkRevoke(r.ctx, inventory.BulkRevoke{AgencyID: r.agency(), Actor: r.actor, Origin: r.origin, Keys: keys, Reason: reason})
	if err != nil {
		return notFoundOr(err)
	}
	if n := op.Failed(); n > 0 {
		h.Flashf(c, "error", fmt.Sprintf("%d of %d credentials could not be revoked; see the summary.", n, len(op.Results)))
	} else {
		h.Flashf(c, "success", fmt.Sprintf("%d credentials revoked.", len(op.Results)))
	}
	return SeeOther(c, agencyPath(s, "operations", op.ID))
}

var actionLabels = map[string]string{
	audit.ActionHygieneRevokeStart:   "bulk revocation started",
	audit.ActionHygieneRevoke:        "revoke",
	audit.ActionHygieneRevokeEnd:     "bulk revocation ended",
	audit.ActionPersonnelStart:       "personnel change started",
	audit.ActionPersonnelRotate:      "rotate",
	audit.ActionPersonnelRevoke:      "revoke",
	audit.ActionPersonnelSessionsEnd: "sessions ended",
	audit.ActionUserDisable:          "user deactivated",
	audit.ActionPersonnelEnd:         "personnel change ended",
}

// operationView rebuilds the summary of an operation from its audit records.
func operationView(id string, recs []inventory.OperationRecord) views.OperationView {
	v := views.OperationView{ID: id, Kind: "Operation"}
	for _, r := range recs {
		target := r.TargetName
		if target == "" {
			target = r.TargetID
		}
		v.Records = append(v.Records, views.OperationRecordView{When: views.When(r.When), Actor: r.Actor, Action: r.Action, Target: target,
			TargetType: r.TargetType, Outcome: r.Outcome, Reason: r.Reason})
		label := actionLabels[r.Action]
		switch r.Action {
		case audit.ActionHygieneRevokeStart:
			v.Kind, v.Actor, v.Started = "Bulk revocation", r.Actor, views.When(r.When)
		case audit.ActionPersonnelStart:
			v.Kind, v.Actor, v.Started, v.Subject = "Personnel change", r.Actor, views.When(r.When), r.TargetName
		case audit.ActionHygieneRevokeEnd, audit.ActionPersonnelEnd:
			v.Ended = views.When(r.When)
			v.Outcome = "completed"
			if r.Outcome != audit.OutcomeSuccess {
				v.Outcome = "completed with failures"
			}
		case audit.ActionHygieneRevoke, audit.ActionPersonnelRotate, audit.ActionPersonnelRevoke:
			line := fmt.Sprintf("%s %s (%s): %s", strings.ToUpper(label[:1])+label[1:], target, policy.TypeLabel(r.TargetType), r.Outcome)
			if r.Reason != "" && r.Outcome != audit.OutcomeSuccess {
				line += " — " + r.Reason
			}
			v.Lines = append(v.Lines, line)
		case audit.ActionUserDisable:
			if r.Outcome == audit.OutcomeSuccess {
				v.Lines = append(v.Lines, "Deactivated "+target+" in the console")
			} else {
				v.Lines = append(v.Lines, "Deactivating "+target+" failed: "+r.Reason)
			}
		case audit.ActionPersonnelSessionsEnd:
			v.Lines = append(v.Lines, "Ended "+r.Details["sessions_ended"]+" open sessions of "+target)
		}
	}
	if v.Ended == "" {
		v.Ended, v.Outcome = "not recorded", "interrupted"
	}
	return v
}

// Operation shows the printable summary of a linked operation.
func (h *Hygiene) Operation(c echo.Context) error {
	r := h.req(c)
	recs, err := h.Inventory.OperationLog(r.ctx, r.agency(), c.Param("op"))
	if err != nil {
		return notFoundOr(err)
	}
	v := operationView(c.Param("op"), recs)
	return Render(c, http.StatusOK, views.OperationSummary(h.Page(c, v.Kind+" summary", "policy"), v))
}
