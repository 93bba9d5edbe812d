package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/web/devidp"
)

// Seeded development identities and their groups.
const (
	devAgencySlug = "demo-county"
	devOperator   = "operator@keyconsole.test"
)

func devUsers() []devidp.User {
	return []devidp.User{
		{Subject: "dev-admin", Name: "Ada Admin", Email: "admin@demo-county.test", Groups: []string{"demo-county-admins"}, Hint: "Demo County admin"},
		{Subject: "dev-reviewer", Name: "Rita Reviewer", Email: "reviewer@demo-county.test", Groups: []string{"demo-county-reviewers"}, Hint: "Demo County compliance reviewer"},
		{Subject: "dev-viewer", Name: "Victor Viewer", Email: "viewer@demo-county.test", Groups: []string{"demo-county-viewers"}, Hint: "Demo County viewer"},
		{Subject: "dev-operator", Name: "Olive Operator", Email: devOperator, Groups: nil, Hint: "Platform operator"},
		{Subject: "dev-nobody", Name: "Nora Nobody", Email: "nobody@elsewhere.test", Groups: []string{"unmapped-group"}, Hint: "Has no agency role: shows the no-access page"},
	}
}

// seedDev creates Demo County and its mappings once; later runs leave them be.
func seedDev(ctx context.Context, a *tool) error {
	op := "dev:" + devOperator
	found := false
	for _, o := range a.cfg.Operators {
		found = found || o == op
	}
	if !found {
		a.cfg.Operators = append(a.cfg.Operators, op)
	}
	_, err := a.agencySv.BySlug(ctx, devAgencySlug)
	if err == nil {
		return nil
	}
	if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	actor := audit.Actor{Type: audit.ActorSystem, ID: "dev-seed", Name: "development seed"}
	origin := audit.Origin{RequestID: "dev-seed"}
	ag, err := a.agencySv.Create(ctx, actor, origin, devAgencySlug, "Demo County")
	if err != nil {
		return err
	}
	for group, role := range map[string]string{"demo-county-admins": models.RoleAdmin, "demo-county-reviewers": models.RoleReviewer, "demo-county-viewers": models.RoleViewer} {
		if _, err := a.agencySv.Map(ctx, actor, origin, ag.ID, auth.KindDev, group, role); err != nil {
			return err
		}
	}
	return nil
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
