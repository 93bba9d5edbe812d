package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

// TestFinding03_MappingChangesTakeEffectNextRequest: roles follow the group
// mappings live. Removing a mapping, changing a mapping's role (remove and
// add), deleting an agency or disabling the user changes what an open
// session may do on its next request, on every replica (two services over
// one database here), not at the next sign-in; the member lists follow too.
func TestFinding03_MappingChangesTakeEffectNextRequest(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		sys := audit.Actor{Type: audit.ActorSystem, ID: "test"}
		// A second replica: its own service over the same database.
		replica := operatorService(f)
		other, err := f.agencies.Create(ctx, sys, audit.Origin{}, "other-county", "Other County")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.agencies.Map(ctx, sys, audit.Origin{}, other.ID, "okta", "other-staff", models.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		_, tok, err := f.svc.SignIn(ctx, okta, auth.Claims{Subject: "00u-pat", Groups: []string{"admins", "reviewers", "other-staff"}}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		roles := func(want map[int64]string) {
			t.Helper()
			for name, svc := range map[string]*auth.Service{"replica 1": f.svc, "replica 2": replica} {
				pr, err := svc.Resolve(ctx, tok, audit.Origin{})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if len(pr.Roles) != len(want) || len(pr.Agencies) != len(want) {
					t.Fatalf("%s: roles %v agencies %d, want %v", name, pr.Roles, len(pr.Agencies), want)
				}
				for id, r := range want {
					if pr.RoleIn(id) != r {
						t.Fatalf("%s: role in %d is %q, want %q (roles %v)", name, id, pr.RoleIn(id), r, pr.Roles)
					}
				}
				for _, a := range pr.Agencies {
					if want[a.ID] == "" {
						t.Fatalf("%s: agency %s listed without a role", name, a.Slug)
					}
				}
			}
		}
		mapping := func(agencyID int64, group, role string) int64 {
			t.Helper()
			ms, err := f.agencies.Mappings(ctx, agencyID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.GroupValue == group && m.Role == role {
					return m.ID
				}
			}
			t.Fatalf("no mapping %s=%s", group, role)
			return 0
		}
		member := func(agencyID int64) string {
			t.Helper()
			ms, err := f.users.Members(ctx, agencyID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.Subject == "00u-pat" {
					return m.Role
				}
			}
			return ""
		}
		roles(map[int64]string{f.agency.ID: models.RoleAdmin, other.ID: models.RoleAdmin})

		// Unmap admins: the reviewers mapping is what is left.
		if err := f.agencies.Unmap(ctx, sys, audit.Origin{}, f.agency.ID, mapping(f.agency.ID, "admins", models.RoleAdmin)); err != nil {
			t.Fatal(err)
		}
		roles(map[int64]string{f.agency.ID: models.RoleReviewer, other.ID: models.RoleAdmin})
		if r := member(f.agency.ID); r != models.RoleReviewer {
			t.Fatalf("member list after unmapping: %q", r)
		}
		// Change a mapping's role: reviewers become viewers.
		if err := f.agencies.Unmap(ctx, sys, audit.Origin{}, f.agency.ID, mapping(f.agency.ID, "reviewers", models.RoleReviewer)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.agencies.Map(ctx, sys, audit.Origin{}, f.agency.ID, "okta", "reviewers", models.RoleViewer); err != nil {
			t.Fatal(err)
		}
		roles(map[int64]string{f.agency.ID: models.RoleViewer, other.ID: models.RoleAdmin})
		// Delete the other agency.
		if err := db.Gorm.Exec("DELETE FROM agencies WHERE id = ?", other.ID).Error; err != nil {
			t.Fatal(err)
		}
		roles(map[int64]string{f.agency.ID: models.RoleViewer})
		if r := member(other.ID); r != "" {
			t.Fatalf("member of a deleted agency: %q", r)
		}
		// Unmap the last mapping: no role left anywhere.
		if err := f.agencies.Unmap(ctx, sys, audit.Origin{}, f.agency.ID, mapping(f.agency.ID, "reviewers", models.RoleViewer)); err != nil {
			t.Fatal(err)
		}
		roles(map[int64]string{})
		if r := member(f.agency.ID); r != "" {
			t.Fatalf("member list after removing every mapping: %q", r)
		}
		// Disable the user: the next request on either replica ends the session.
		if _, err := f.agencies.Map(ctx, sys, audit.Origin{}, f.agency.ID, "okta", "admins", models.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		roles(map[int64]string{f.agency.ID: models.RoleAdmin})
		u, err := f.users.ByIdentity(ctx, "okta", "00u-pat")
		if err != nil {
			t.Fatal(err)
		}
		now := f.clock.Now().Add(time.Second)
		u.DisabledAt = &now
		if err := f.users.Save(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if _, err := replica.Resolve(ctx, tok, audit.Origin{}); !errors.Is(err, auth.ErrDisabled) {
			t.Fatalf("disabled user on the second replica: %v", err)
		}
		if _, err := f.svc.Resolve(ctx, tok, audit.Origin{}); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("disabled user's session on the first replica: %v", err)
		}
	})
}
