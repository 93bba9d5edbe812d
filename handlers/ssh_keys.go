package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/models"
	"keyconsole/services/policy"
	"keyconsole/services/sshkeys"
	"keyconsole/services/validation"
	"keyconsole/views"
)

// SSHKeys serves the SSH keys pages: SFTP accounts, key upload and revocation.
type SSHKeys struct {
	*Handler
	Svc *sshkeys.Service
}

// NewSSHKeys returns the SSH keys handlers.
func NewSSHKeys(h *Handler, svc *sshkeys.Service) *SSHKeys { return &SSHKeys{Handler: h, Svc: svc} }

// List shows the agency's SFTP accounts and their keys.
func (h *SSHKeys) List(c echo.Context) error {
	return h.renderList(c, http.StatusOK, nil)
}

func (h *SSHKeys) renderList(c echo.Context, status int, errs views.FieldErrors) error {
	r := h.req(c)
	sc := r.scope
	ov, err := h.Svc.Overview(r.ctx, r.agency())
	if err != nil {
		return err
	}
	base := agencyPath(sc, "ssh-keys")
	d := views.SSHKeysData{
		MaxAgeDays:     int(ov.Policy.MaxAge(policy.TypeSSHKey) / (24 * time.Hour)),
		MinRSABits:     sshkeys.ParsePolicy{MinRSABits: ov.Policy.MinRSABits}.MinimumRSABits(),
		AccountErrors:  errs,
		CreateAccount:  base + "/accounts",
		AccountNameFor: sc.Agency.Slug,
	}
	taken := map[string]bool{}
	for _, a := range ov.Accounts {
		taken[a.Account.Environment] = true
		av := views.SFTPAccountView{
			ID: itoa(a.Account.ID), Name: a.Account.Name, Environment: a.Account.Environment,
			EnvLabel: sshkeys.EnvironmentLabel(a.Account.Environment), Created: views.Day(a.Account.CreatedAt),
			CreatedBy: a.Account.CreatedByName, Active: a.Active,
			UploadPath: base + "/accounts/" + itoa(a.Account.ID) + "/upload",
		}
		for _, k := range a.Keys {
			av.Keys = append(av.Keys, keyView(k, base))
		}
		d.Accounts = append(d.Accounts, av)
	}
	for _, env := range sshkeys.Environments() {
		if !taken[env] {
			d.NewEnvs = append(d.NewEnvs, views.EnvChoice{Value: env, Label: sshkeys.EnvironmentLabel(env)})
		}
	}
	return Render(c, status, views.SSHKeys(h.Page(c, "SSH keys", "ssh"), d))
}

func keyView(k sshkeys.KeyRow, base string) views.SSHKeyView {
	v := views.SSHKeyView{
		ID: itoa(k.Key.ID), Type: k.Key.KeyType, Bits: k.Key.Bits, Fingerprint: k.Key.Fingerprint, Comment: k.Key.Comment,
		CreatedBy: k.Key.CreatedByName, Created: views.When(k.Key.CreatedAt), Expires: views.WhenPtr(k.Key.ExpiresAt, "never"),
		LastUsed: views.WhenPtr(k.Key.LastUsedAt, "never"), Status: k.Status,
		AgeState: k.Eval.AgeState, UseState: k.Eval.UseState,
		RevokePath: base + "/keys/" + itoa(k.Key.ID) + "/revoke",
	}
	age := strconv.Itoa(int(k.Eval.Age/(24*time.Hour))) + " days old"
	if k.Eval.AgeState == policy.AgeOverdue {
		v.Age = age + ", overdue since " + views.Day(k.Eval.DueAt)
	} else {
		v.Age = age + ", due " + views.Day(k.Eval.DueAt)
	}
	return v
}

// CreateAccount creates the agency's SFTP account for an environment.
func (h *SSHKeys) CreateAccount(c echo.Context) error {
	r := h.req(c)
	a, err := h.Svc.CreateAccount(r.ctx, r.actor, r.origin, r.scope.Agency, c.FormValue("environment"))
	var ve *validation.Error
	if errors.As(err, &ve) {
		return h.renderList(c, http.StatusUnprocessableEntity, ve.Fields)
	}
	if err != nil {
		return err
	}
	h.Flashf(c, "success", "SFTP account "+a.Name+" created. Upload a public key so it can sign in.")
	return SeeOther(c, agencyPath(r.scope, "ssh-keys"))
}

// account resolves :id to one of the agency's accounts; anything else is
// the one 404.
func (h *SSHKeys) account(c echo.Context) (models.SFTPAccount, error) {
	r := h.req(c)
	id, err := pathID(c, "id")
	if err != nil {
		return models.SFTPAccount{}, err
	}
	a, err := h.Svc.Account(r.ctx, r.agency(), id)
	if err != nil {
		return models.SFTPAccount{}, notFoundOr(err)
	}
	return a, nil
}

// UploadForm shows the form that adds a key to an account.
func (h *SSHKeys) UploadForm(c echo.Context) error {
	a, err := h.account(c)
	if err != nil {
		return err
	}
	return h.renderUpload(c, http.StatusOK, a, views.SSHKeyUploadData{})
}

func (h *SSHKeys) renderUpload(c echo.Context, status int, a models.SFTPAccount, d views.SSHKeyUploadData) error {
	r := h.req(c)
	base := agencyPath(r.scope, "ssh-keys")
	d.Account = a.Name
	d.Action = base + "/accounts/" + itoa(a.ID) + "/upload"
	d.BackPath = base
	d.MaxKiB = sshkeys.MaxInputSize >> 10
	d.MinDate = h.Clock().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	pol, err := h.Svc.Policy(r.ctx, r.agency())
	if err != nil {
		return err
	}
	d.MinRSABits = sshkeys.ParsePolicy{MinRSABits: pol.MinRSABits}.MinimumRSABits()
	// Nothing the user submitted is echoed back into the form.
	noStore(c)
	return Render(c, status, views.SSHKeyUpload(h.Page(c, "Upload an SSH key", "ssh"), d))
}

// Upload adds a pasted or uploaded public key to an account. Every refusal
// re-renders the form with its reason (422) and never shows, stores or logs
// the submitted text.
func (h *SSHKeys) Upload(c echo.Context) error {
	a, err := h.account(c)
	if err != nil {
		return err
	}
	r := h.req(c)
	d := views.SSHKeyUploadData{ExpiresOn: strings.TrimSpace(c.FormValue("expires_on"))}
	input, fieldErrs, refusal := readUpload(c)
	defer clear(input)
	if refusal != nil {
		d.Refusal = refusal.Message
		return h.renderUpload(c, http.StatusUnprocessableEntity, a, d)
	}
	if len(fieldErrs) > 0 {
		d.Errors = fieldErrs
		return h.renderUpload(c, http.StatusUnprocessableEntity, a, d)
	}
	var expires *time.Time
	if d.ExpiresOn != "" {
		day, err := time.Parse(time.DateOnly, d.ExpiresOn)
		// A private key is refused and audited whatever else is wrong with
		// the form, so a bad date does not stop it reaching the service.
		if err != nil && !sshkeys.IsPrivateKey(input) {
			d.Errors = views.FieldErrors{"expires_on": "Enter the expiry date as YYYY-MM-DD, or leave it empty."}
			d.ExpiresOn = ""
			return h.renderUpload(c, http.StatusUnprocessableEntity, a, d)
		}
		if err == nil {
			end := day.UTC().Add(24 * time.Hour)
			expires = &end
		}
	}
	k, err := h.Svc.Upload(r.ctx, r.actor, r.origin, r.agency(), a.ID, input, expires)
	var re *sshkeys.RefusalError
	var ve *validation.Error
	switch {
	case errors.As(err, &re):
		d.Refusal, d.PrivateKey = re.Message, re.PrivateKey
		return h.renderUpload(c, http.StatusUnprocessableEntity, a, d)
	case errors.As(err, &ve):
		d.Errors = ve.Fields
		return h.renderUpload(c, http.StatusUnprocessableEntity, a, d)
	case err != nil:
		return notFoundOr(err)
	}
	h.Flashf(c, "success", "Key "+k.Fingerprint+" added to "+a.Name+".")
	return SeeOther(c, agencyPath(r.scope, "ssh-keys"))
}

// readUpload returns the pasted or uploaded key. A file larger than the
// limit is refused without being read.
func readUpload(c echo.Context) ([]byte, views.FieldErrors, *sshkeys.RefusalError) {
	pasted := c.FormValue("public_key")
	fh, err := c.FormFile("public_key_file")
	switch {
	case errors.Is(err, http.ErrMissingFile), errors.Is(err, http.ErrNotMultipart):
		return []byte(pasted), nil, nil
	case err != nil:
		return nil, views.FieldErrors{"public_key_file": "The file could not be read. Choose the .pub file again."}, nil
	}
	if fh.Size > sshkeys.MaxInputSize {
		return nil, nil, &sshkeys.RefusalError{Code: sshkeys.CodeTooLarge, Message: "The file is " + strconv.FormatInt(fh.Size>>10, 10) +
			" KiB; a public key is much smaller and the limit is " + strconv.Itoa(sshkeys.MaxInputSize>>10) + " KiB. Choose the .pub file."}
	}
	f, err := fh.Open()
	if err != nil {
		return nil, views.FieldErrors{"public_key_file": "The file could not be read. Choose the .pub file again."}, nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, sshkeys.MaxInputSize+1))
	if err != nil {
		return nil, views.FieldErrors{"public_key_file": "The file could not be read. Choose the .pub file again."}, nil
	}
	if strings.TrimSpace(pasted) != "" && len(data) > 0 {
		// Both were given: still refuse a private key in either of them.
		if sshkeys.IsPrivateKey(data) {
			return data, nil, nil
		}
		if sshkeys.IsPrivateKey([]byte(pasted)) {
			return []byte(pasted), nil, nil
		}
		return nil, views.FieldErrors{"public_key": "Paste the key or choose its file, not both."}, nil
	}
	if len(data) == 0 {
		return []byte(pasted), nil, nil
	}
	return data, nil, nil
}

// RevokeConfirm asks for confirmation before revoking a key.
func (h *SSHKeys) RevokeConfirm(c echo.Context) error {
	r, k, a, err := h.key(c)
	if err != nil {
		return err
	}
	ctx := r.ctx
	base := agencyPath(r.scope, "ssh-keys")
	now := h.Clock()
	if k.Status(now) != models.SSHKeyActive {
		h.Flashf(c, "info", "Key "+k.Fingerprint+" is already "+k.Status(now)+".")
		return SeeOther(c, base)
	}
	ov, err := h.Svc.Overview(ctx, r.agency())
	if err != nil {
		return err
	}
	others := 0
	var row sshkeys.KeyRow
	for _, acc := range ov.Accounts {
		if acc.Account.ID != a.ID {
			continue
		}
		for _, kr := range acc.Keys {
			if kr.Key.ID == k.ID {
				row = kr
			} else if kr.Status == models.SSHKeyActive {
				others++
			}
		}
	}
	if row.Key.ID == 0 {
		row = sshkeys.KeyRow{Key: k, Status: k.Status(now)}
	}
	d := views.SSHKeyRevokeData{Account: a.Name, Key: keyView(row, base), Action: base + "/keys/" + itoa(k.ID) + "/revoke",
		BackPath: base, OthersActive: others}
	return Render(c, http.StatusOK, views.SSHKeyRevoke(h.Page(c, "Revoke an SSH key", "ssh"), d))
}

// key resolves :id to one of the agency's keys and its account; anything
// else is the one 404.
func (h *SSHKeys) key(c echo.Context) (request, models.SSHKey, models.SFTPAccount, error) {
	r := h.req(c)
	id, err := pathID(c, "id")
	if err != nil {
		return r, models.SSHKey{}, models.SFTPAccount{}, err
	}
	k, a, err := h.Svc.Key(r.ctx, r.agency(), id)
	if err != nil {
		return r, models.SSHKey{}, models.SFTPAccount{}, notFoundOr(err)
	}
	return r, k, a, nil
}

// Revoke revokes a key after confirmation.
func (h *SSHKeys) Revoke(c echo.Context) error {
	r, k, a, err := h.key(c)
	if err != nil {
		return err
	}
	base := agencyPath(r.scope, "ssh-keys")
	err = h.Svc.Revoke(r.ctx, r.actor, r.origin, r.agency(), k.ID, "")
	switch {
	case errors.Is(err, sshkeys.ErrNotActive):
		h.Flashf(c, "info", "Key "+k.Fingerprint+" was already revoked or expired.")
	case err != nil:
		return notFoundOr(err)
	default:
		h.Flashf(c, "success", "Key "+k.Fingerprint+" of "+a.Name+" revoked. It can no longer sign in.")
	}
	return SeeOther(c, base)
}

// Tiles is the SSH keys figure of the agency dashboard.
func (h *SSHKeys) Tiles(ctx context.Context, s Scope) ([]views.DashboardTile, error) {
	sum, err := h.Svc.Summarize(ctx, s.Agency.ID)
	if err != nil {
		return nil, err
	}
	active, overdue, soon := sum.Active, sum.Overdue, sum.DueSoon
	hint := strconv.Itoa(sum.Accounts) + " SFTP " + map[bool]string{true: "account", false: "accounts"}[sum.Accounts == 1]
	if overdue > 0 || soon > 0 {
		hint += "; " + strconv.Itoa(overdue) + " overdue, " + strconv.Itoa(soon) + " due soon"
	}
	return []views.DashboardTile{{Label: "SSH keys", Value: strconv.Itoa(active), Hint: hint,
		Link: agencyPath(s, "ssh-keys"), Warn: overdue > 0}}, nil
}
