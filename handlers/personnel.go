package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"keyconsole/models"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/views"
)

func memberStatus(u models.User) string {
	if u.Disabled() {
		return "deactivated " + views.WhenPtr(u.DisabledAt, "")
	}
	return "active"
}

// PersonnelIndex lists the agency's users to start a personnel change.
func (h *Hygiene) PersonnelIndex(c echo.Context) error {
	r := h.req(c)
	members, err := h.Inventory.Members(r.ctx, r.agency())
	if err != nil {
		return err
	}
	var v views.PersonnelIndexView
	for _, m := range members {
		v.Members = append(v.Members, views.MemberRow{ID: strconv.FormatInt(m.ID, 10), Name: m.Display(), Email: m.Email, Role: m.Role,
			LastSignIn: views.WhenPtr(m.LastSignInAt, "never"), Status: memberStatus(m.User), Disabled: m.Disabled()})
	}
	return Render(c, http.StatusOK, views.PersonnelIndex(h.Page(c, "Personnel change", "policy"), v))
}

// reviewView builds the personnel review of a user; actions, when given,
// are the admin's choices to show again.
func (h *Hygiene) reviewView(c echo.Context, userID int64, actions map[string]string) (views.PersonnelReviewView, inventory.Review, error) {
	r := h.req(c)
	s := r.scope
	pr, _ := PrincipalOf(c)
	rv, err := h.Inventory.Review(r.ctx, r.agency(), userID)
	if err != nil {
		return views.PersonnelReviewView{}, rv, notFoundOr(err)
	}
	m := rv.Member
	v := views.PersonnelReviewView{UserID: strconv.FormatInt(m.ID, 10), Name: m.Display(), Email: m.Email, Role: m.Role,
		Status: memberStatus(m.User), Disabled: m.Disabled(), Slug: s.Agency.Slug}
	switch {
	case m.ID == pr.User.ID:
		v.DeactivateBlocked = "You cannot deactivate yourself; another admin must do it."
	case m.IsOperator:
		v.DeactivateBlocked = "This person is a platform operator; only a platform operator can deactivate them."
		v.ReenableBlocked = "This person is a platform operator; only a platform operator can re-enable them."
	case rv.OtherAgencies > 0:
		v.DeactivateBlocked = fmt.Sprintf("This person also holds a role in %d other agencies; ask a platform operator to deactivate them, or have their identity-provider groups changed.", rv.OtherAgencies)
		v.ReenableBlocked = fmt.Sprintf("This person also holds a role in %d other agencies; only a platform operator can re-enable them.", rv.OtherAgencies)
	}
	base := agencyPath(s)
	for _, e := range rv.Entries {
		row := views.PersonnelEntryRow{Key: e.Key(), Name: e.Name, Extra: e.Extra, TypeLabel: policy.TypeLabel(e.Type), Environment: e.Environment,
			Status: e.Status, Active: e.Active() && h.revocable(e.Type), CanRotate: e.CanRotate}
		if row.Status == "" {
			row.Status = inventory.StatusActive
		}
		for _, t := range e.Touches {
			if t.Count == 1 {
				row.Relations = append(row.Relations, fmt.Sprintf("%s on %s", t.Relation, views.Day(t.LastAt)))
			} else {
				row.Relations = append(row.Relations, fmt.Sprintf("%s %d times, last on %s", t.Relation, t.Count, views.Day(t.LastAt)))
			}
		}
		if e.Reachable {
			row.Relations = append(row.Relations, inventory.RelReachable)
		}
		if e.DetailPath != "" {
			row.DetailPath = base + e.DetailPath
		}
		// Suggest rotating what the person handled or could reach, revoking
		// what the console cannot rotate but they handled themselves.
		switch {
		case actions != nil:
			row.Action = actions[row.Key]
		case e.CanRotate:
			row.Action = "rotate"
		case len(e.Touches) > 0:
			row.Action = "revoke"
		}
		if row.Action == "" {
			row.Action = "keep"
		}
		v.Entries = append(v.Entries, row)
	}
	return v, rv, nil
}

// PersonnelReview shows one user's credentials and the change form.
func (h *Hygiene) PersonnelReview(c echo.Context) error {
	id, err := pathID(c, "user")
	if err != nil {
		return err
	}
	v, _, err := h.reviewView(c, id, nil)
	if err != nil {
		return err
	}
	v.Deactivate = c.QueryParam("deactivate") == "1"
	return Render(c, http.StatusOK, views.PersonnelReview(h.Page(c, "Personnel change: "+v.Name, "policy"), v))
}

// PersonnelApply runs the chosen rotations, revocations and deactivation
// as one linked operation and shows its summary, with any new secret shown
// once (the response is never cached).
func (h *Hygiene) PersonnelApply(c echo.Context) error {
	r := h.req(c)
	s := r.scope
	pr, _ := PrincipalOf(c)
	id, err := pathID(c, "user")
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "bad form")
	}
	actions := map[string]string{}
	for k, vals := range form {
		key, ok := strings.CutPrefix(k, "action.")
		if !ok || len(vals) == 0 {
			continue
		}
		if _, _, ok := inventory.ParseKey(key); !ok {
			return ErrNotFound
		}
		switch vals[0] {
		case "rotate", "revoke":
			actions[key] = vals[0]
		case "keep":
		default:
			return echo.NewHTTPError(http.StatusBadRequest, "bad action")
		}
	}
	if len(actions) > 500 {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "too many items")
	}
	deactivate := form.Get("deactivate") == "1"
	reason := strings.TrimSpace(form.Get("reason"))
	errs := views.FieldErrors{}
	if strings.TrimSpace(form.Get("confirm")) != s.Agency.Slug {
		errs["confirm"] = "Type the agency's short name, " + s.Agency.Slug + ", exactly to confirm."
	}
	if msg := reasonError(reason); msg != "" {
		errs["reason"] = msg
	}
	var res inventory.PersonnelResult
	if len(errs) == 0 {
		res, err = h.Inventory.Personnel(r.ctx, inventory.PersonnelChange{AgencyID: r.agency(), AgencyName: s.Agency.Name,
			Actor: r.actor, ActorID: pr.User.ID, Origin: r.origin, UserID: id, Actions: actions, Deactivate: deactivate, Reason: reason})
		switch {
		case errors.Is(err, inventory.ErrSelf), errors.Is(err, inventory.ErrOperator), errors.Is(err, inventory.ErrOtherAgencies):
			errs["deactivate"] = "This person cannot be deactivated here; see step 2."
		case errors.Is(err, inventory.ErrNothingToDo):
			errs["deactivate"] = "Choose at least one credential to rotate or revoke, or deactivate the user."
		case err != nil:
			return notFoundOr(err)
		}
	}
	if len(errs) > 0 {
		v, _, err := h.reviewView(c, id, actions)
		if err != nil {
			return err
		}
		v.Deactivate, v.Reason, v.Errors = deactivate, reason, errs
		return Render(c, http.StatusUnprocessableEntity, views.PersonnelReview(h.Page(c, "Personnel change: "+v.Name, "policy"), v))
	}
	recs, err := h.Inventory.OperationLog(r.ctx, r.agency(), res.ID)
	if err != nil {
		return err
	}
	v := operationView(res.ID, recs)
	for _, done := range res.Results {
		if done.Rotation == nil || done.Rotation.NewSecret == nil {
			continue
		}
		v.Secrets = append(v.Secrets, views.NewSecretView{Name: done.Item.Name, TypeLabel: policy.TypeLabel(done.Item.Type),
			Label: done.Rotation.SecretLabel, Value: done.Rotation.NewSecret.Reveal(), Note: done.Rotation.Note})
	}
	noStore(c)
	return Render(c, http.StatusOK, views.OperationSummary(h.Page(c, "Personnel change summary", "policy"), v))
}

// reasonError checks an audit reason typed in a form: one line of at most
// 300 characters.
func reasonError(reason string) string {
	if len(reason) > 300 || strings.ContainsAny(reason, "\r\n") {
		return "The reason must be a single line of at most 300 characters."
	}
	return ""
}

// PersonnelReenable lets a deactivated member of the agency sign in again:
// the people the admin may deactivate (this agency's alone, not a platform
// operator); anyone else is re-enabled by a platform operator. Audited.
func (h *Hygiene) PersonnelReenable(c echo.Context) error {
	r := h.req(c)
	pr, _ := PrincipalOf(c)
	id, err := pathID(c, "user")
	if err != nil {
		return err
	}
	// Like deactivating, it needs a recent sign-in; back to the review page.
	if ok, err := h.recentOr(c, agencyPath(r.scope, "personnel", itoa(id))); !ok {
		return err
	}
	reason := strings.TrimSpace(c.FormValue("reenable_reason"))
	errs := views.FieldErrors{}
	if msg := reasonError(reason); msg != "" {
		errs["reenable_reason"] = msg
	} else {
		u, err := h.Inventory.Reenable(r.ctx, inventory.ReenableChange{AgencyID: r.agency(), Actor: r.actor, ActorID: pr.User.ID,
			Origin: r.origin, UserID: id, Reason: reason})
		switch {
		case err == nil:
			h.Flashf(c, "success", u.Display()+" can sign in again, with the roles their identity-provider groups give them.")
			return SeeOther(c, agencyPath(r.scope, "personnel", itoa(id)))
		case errors.Is(err, inventory.ErrSelf), errors.Is(err, inventory.ErrOperator), errors.Is(err, inventory.ErrOtherAgencies):
			errs["reenable_reason"] = "This person cannot be re-enabled here; ask a platform operator."
		case errors.Is(err, inventory.ErrNotDisabled):
			errs["reenable_reason"] = u.Display() + " is not deactivated."
		default:
			return notFoundOr(err)
		}
	}
	v, _, err := h.reviewView(c, id, nil)
	if err != nil {
		return err
	}
	v.ReenableReason, v.Errors = reason, errs
	return Render(c, http.StatusUnprocessableEntity, views.PersonnelReview(h.Page(c, "Personnel change: "+v.Name, "policy"), v))
}

// OperatorUsers lists every deactivated user for a platform operator.
func (h *Hygiene) OperatorUsers(c echo.Context) error {
	return h.renderOperatorUsers(c, http.StatusOK, nil, nil)
}

func (h *Hygiene) renderOperatorUsers(c echo.Context, status int, reasons map[string]string, errs views.FieldErrors) error {
	ctx := c.Request().Context()
	list, err := h.Inventory.Disabled(ctx)
	if err != nil {
		return err
	}
	var ids []int64
	for _, u := range list {
		for id := range u.Roles {
			ids = append(ids, id)
		}
	}
	names := map[int64]string{}
	if len(ids) > 0 {
		as, err := h.Agencies.ByIDs(ctx, ids)
		if err != nil {
			return err
		}
		for _, a := range as {
			names[a.ID] = a.Name
		}
	}
	rows := make([]views.DisabledUserRow, 0, len(list))
	for _, u := range list {
		r := views.DisabledUserRow{ID: itoa(u.ID), Name: u.Display(), Email: u.Email, Provider: u.Provider, Since: views.WhenPtr(u.DisabledAt, "")}
		for id, role := range u.Roles {
			r.Agencies = append(r.Agencies, names[id]+": "+role)
		}
		sort.Strings(r.Agencies)
		rows = append(rows, r)
	}
	return Render(c, status, views.OperatorUsers(h.Page(c, "Deactivated users", "operator-users"), rows, reasons, errs))
}

// OperatorUserEnable re-enables any deactivated user (platform operators
// only), audited in the platform chain and every agency of the user.
func (h *Hygiene) OperatorUserEnable(c echo.Context) error {
	r := h.req(c)
	pr, _ := PrincipalOf(c)
	id, err := pathID(c, "user")
	if err != nil {
		return err
	}
	if ok, err := h.recentOr(c, "/operator/users"); !ok {
		return err
	}
	key := "reason-" + itoa(id)
	reason := strings.TrimSpace(c.FormValue("reason"))
	if msg := reasonError(reason); msg != "" {
		return h.renderOperatorUsers(c, http.StatusUnprocessableEntity, map[string]string{itoa(id): reason}, views.FieldErrors{key: msg})
	}
	u, err := h.Inventory.Reenable(r.ctx, inventory.ReenableChange{AgencyID: models.PlatformAgencyID, Actor: r.actor, ActorID: pr.User.ID,
		Origin: r.origin, UserID: id, Reason: reason})
	switch {
	case errors.Is(err, inventory.ErrNotDisabled):
		return h.renderOperatorUsers(c, http.StatusUnprocessableEntity, nil, views.FieldErrors{key: u.Display() + " is not deactivated."})
	case err != nil:
		return notFoundOr(err)
	}
	h.Flashf(c, "success", u.Display()+" can sign in again, with the roles their identity-provider groups give them.")
	return SeeOther(c, "/operator/users")
}
