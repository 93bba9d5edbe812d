package auth_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

// operatorService is the sign-in service of the fixture's database with
// the given KEYCONSOLE_OPERATORS entries.
func operatorService(f fixture, operators ...string) *auth.Service {
	rec := audit.NewRecorder(f.db, f.audits, f.clock.Now)
	return auth.NewService(f.db, f.users, models.NewAgencyStore(f.db), models.NewSessionStore(f.db), rec, auth.Config{Operators: operators, Clock: f.clock.Now})
}

// TestFinding01_UnverifiedEmailGrantsNoOperator: an operator entry by
// e-mail counts only when the provider kind vouches for the address (a
// true email_verified from okta, generic and google; never Azure's email
// claim); an entry by subject counts whatever the e-mail says. A refused
// match is audited and the no-access page says why.
func TestFinding01_UnverifiedEmailGrantsNoOperator(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		generic := auth.ProviderInfo{ID: "corp", Kind: auth.KindGeneric, Label: "Corp IdP"}
		azure := auth.ProviderInfo{ID: "azure", Kind: auth.KindAzure, Label: "Azure AD"}
		svc := operatorService(f, "okta:ops@platform.gov", "corp:ops@platform.gov", "azure:ops@platform.gov", "okta:sub:00uOPS",
			"azure:oid:5f0e7b52-1c3d-4e5f-8a9b-0c1d2e3f4a5b")

		// Unverified e-mail, no agency group: no operator and no session, and
		// the refusal names the reason.
		for _, tc := range []struct {
			p   auth.ProviderInfo
			c   auth.Claims
			why string
		}{
			{okta, auth.Claims{Subject: "00u-mallory", Email: "ops@platform.gov"}, "did not confirm"},
			{generic, auth.Claims{Subject: "self-service-1", Email: "OPS@platform.gov"}, "did not confirm"},
			{azure, auth.Claims{Subject: "az-1", Email: "ops@platform.gov", EmailVerified: true}, "Microsoft does not verify"},
		} {
			_, tok, err := svc.SignIn(ctx, tc.p, tc.c, audit.Origin{})
			var msg string
			if rf, ok := err.(*auth.Refusal); ok {
				msg = rf.Message
			}
			if refusalCode(err) != auth.RefusedNoAccess || tok != "" || !strings.Contains(msg, tc.why) || !strings.Contains(msg, tc.p.ID+":sub:"+tc.c.Subject) {
				t.Fatalf("%s unverified operator e-mail: %v", tc.p.ID, err)
			}
			u, err := f.users.ByIdentity(ctx, tc.p.ID, tc.c.Subject)
			if err != nil || u.IsOperator {
				t.Fatalf("%s user stored as operator: %+v %v", tc.p.ID, u, err)
			}
			if ev := lastEvent(t, f, models.PlatformAgencyID); ev.Action != audit.ActionSignInRefused || !strings.Contains(ev.Details, "email_not_verified") {
				t.Fatalf("%s refusal audit does not say why: %+v", tc.p.ID, ev)
			}
		}

		// Unverified e-mail with an agency group: signed in with the group's
		// role only, and the sign-in record says the operator entry was refused.
		pr, _, err := svc.SignIn(ctx, okta, auth.Claims{Subject: "00u-mallory", Email: "ops@platform.gov", Groups: []string{"reviewers"}}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		if pr.IsOperator() || pr.RoleIn(f.agency.ID) != models.RoleReviewer {
			t.Fatalf("unverified operator e-mail: operator %v role %q", pr.IsOperator(), pr.RoleIn(f.agency.ID))
		}
		if ev := lastEvent(t, f, f.agency.ID); ev.Action != audit.ActionSignIn || !strings.Contains(ev.Details, "email_not_verified") {
			t.Fatalf("sign-in audit does not record the refused operator entry: %+v", ev)
		}

		// Verified e-mail at okta: operator.
		pr, _, err = svc.SignIn(ctx, okta, auth.Claims{Subject: "00u-ops", Email: "ops@platform.gov", EmailVerified: true}, audit.Origin{})
		if err != nil || !pr.IsOperator() {
			t.Fatalf("verified operator e-mail: %v %v", pr.IsOperator(), err)
		}
		// By subject: operator without any e-mail; subjects are case-sensitive.
		pr, _, err = svc.SignIn(ctx, okta, auth.Claims{Subject: "00uOPS"}, audit.Origin{})
		if err != nil || !pr.IsOperator() {
			t.Fatalf("operator by subject: %v %v", pr.IsOperator(), err)
		}
		if _, _, err := svc.SignIn(ctx, okta, auth.Claims{Subject: "00uops", Email: "x@y.gov", EmailVerified: true}, audit.Origin{}); refusalCode(err) != auth.RefusedNoAccess {
			t.Fatalf("subject matched case-insensitively: %v", err)
		}
		// By Azure object id, read from the oid claim.
		c, err := auth.ReadClaims(azure, map[string]json.RawMessage{"sub": json.RawMessage(`"pairwise-sub"`), "oid": json.RawMessage(`"5F0E7B52-1C3D-4E5F-8A9B-0C1D2E3F4A5B"`)})
		if err != nil {
			t.Fatal(err)
		}
		if pr, _, err = svc.SignIn(ctx, azure, c, audit.Origin{}); err != nil || !pr.IsOperator() {
			t.Fatalf("operator by object id: %v %v", pr.IsOperator(), err)
		}
		// The same subject at another provider is somebody else.
		if _, _, err := svc.SignIn(ctx, generic, auth.Claims{Subject: "00uOPS"}, audit.Origin{}); refusalCode(err) != auth.RefusedNoAccess {
			t.Fatalf("operator subject of okta accepted from corp: %v", err)
		}
	})
}
