package models_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// TestSessionPrincipalReadsSessionUserAndRoles checks the one-query read
// of a session with its user and roles against the separate reads.
func TestSessionPrincipalReadsSessionUserAndRoles(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		users, sessions := models.NewUserStore(db), models.NewSessionStore(db)
		b, a := newAgency(t, db, "other-county"), newAgency(t, db, "demo-county")
		now := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
		signedIn := now.Add(-time.Hour)
		mk := func(subject string, operator bool, roles map[int64]string) models.User {
			u := models.User{Provider: "okta", Subject: subject, Email: subject + "@example.gov", Name: "User " + subject, IsOperator: operator,
				LastSignInAt: &signedIn, CreatedAt: now.Add(-48 * time.Hour), UpdatedAt: now}
			if err := users.Create(ctx, &u); err != nil {
				t.Fatal(err)
			}
			grant(t, db, u, roles)
			return u
		}
		two := mk("two", false, map[int64]string{a.ID: models.RoleAdmin, b.ID: models.RoleViewer})
		none := mk("none", true, nil)
		agency := a.ID
		for _, tc := range []struct {
			id   string
			user models.User
			cur  *int64
		}{{"session-two", two, &agency}, {"session-none", none, nil}} {
			sess := models.Session{ID: tc.id, UserID: tc.user.ID, Provider: "okta", CurrentAgencyID: tc.cur, CreatedAt: now, LastSeenAt: now.Add(time.Minute),
				AuthTime: now.Add(-time.Second), SourceIP: "192.0.2.1", UserAgent: "test"}
			if err := sessions.Create(ctx, &sess); err != nil {
				t.Fatal(err)
			}
			got, err := sessions.Principal(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := sessions.ByID(ctx, tc.id)
			want.SourceIP, want.UserAgent = "", ""
			wantUser, _ := users.ByID(ctx, tc.user.ID)
			wantRoles, _ := users.Roles(ctx, tc.user.ID)
			if tc.user.ID == two.ID && (len(wantRoles) != 2 || wantRoles[a.ID] != models.RoleAdmin || wantRoles[b.ID] != models.RoleViewer) {
				t.Fatalf("roles of two: %v", wantRoles)
			}
			if !sameSession(got.Session, want) {
				t.Errorf("%s: session %+v, want %+v", tc.id, got.Session, want)
			}
			if !sameUser(got.User, wantUser) {
				t.Errorf("%s: user %+v, want %+v", tc.id, got.User, wantUser)
			}
			if got.Roles == nil || len(got.Roles) != len(wantRoles) {
				t.Errorf("%s: roles %v, want %v", tc.id, got.Roles, wantRoles)
			}
			for k, v := range wantRoles {
				if got.Roles[k] != v {
					t.Errorf("%s: roles %v, want %v", tc.id, got.Roles, wantRoles)
				}
			}
			ids := make([]int64, 0, len(wantRoles))
			for id := range wantRoles {
				ids = append(ids, id)
			}
			wantAgencies, _ := models.NewAgencyStore(db).ByIDs(ctx, ids)
			if got.Agencies == nil || len(got.Agencies) != len(wantAgencies) {
				t.Fatalf("%s: agencies %+v, want %+v", tc.id, got.Agencies, wantAgencies)
			}
			for i, a := range wantAgencies {
				if g := got.Agencies[i]; g.ID != a.ID || g.Slug != a.Slug || g.Name != a.Name || !g.CreatedAt.Equal(a.CreatedAt) || !g.UpdatedAt.Equal(a.UpdatedAt) {
					t.Errorf("%s: agency %d %+v, want %+v", tc.id, i, g, a)
				}
			}
		}

		// Revocation and disabling show on the next read.
		if _, err := sessions.Revoke(ctx, "session-two", "sign_out", now); err != nil {
			t.Fatal(err)
		}
		if got, err := sessions.Principal(ctx, "session-two"); err != nil || got.Session.RevokedAt == nil || !got.Session.RevokedAt.Equal(now) {
			t.Errorf("revoked session: %+v, %v", got.Session, err)
		}
		none.DisabledAt = &now
		if err := users.Save(ctx, &none); err != nil {
			t.Fatal(err)
		}
		if got, err := sessions.Principal(ctx, "session-none"); err != nil || got.User.DisabledAt == nil || !got.User.DisabledAt.Equal(now) {
			t.Errorf("disabled user: %+v, %v", got.User, err)
		}
		if _, err := sessions.Principal(ctx, "no-such-session"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("missing session: %v, want ErrNotFound", err)
		}
	})
}

// grant gives a user roles the way sign-in does: groups of their latest
// sign-in, mapped to the roles. Each agency also gets a weaker mapping of
// a second group of the user and a mapping of the same group at another
// provider, and the user a group no mapping names, so the strongest of
// several rows must win and the others must not count.
func grant(t *testing.T, db *models.DB, u models.User, roles map[int64]string) {
	t.Helper()
	ctx := context.Background()
	as := models.NewAgencyStore(db)
	groups := []string{"unmapped-" + u.Subject}
	for agencyID, role := range roles {
		g := fmt.Sprintf("g-%s-%d-%s", u.Subject, agencyID, role)
		weak := g + "-weak"
		for _, m := range []models.RoleMapping{
			{AgencyID: agencyID, Provider: u.Provider, GroupValue: g, Role: role},
			{AgencyID: agencyID, Provider: u.Provider, GroupValue: weak, Role: models.RoleViewer},
			{AgencyID: agencyID, Provider: "elsewhere", GroupValue: g, Role: models.RoleAdmin},
		} {
			m.CreatedAt = time.Now().UTC()
			if err := as.AddMapping(ctx, &m); err != nil {
				t.Fatal(err)
			}
		}
		groups = append(groups, g, weak)
	}
	if err := models.NewUserStore(db).SetGroups(ctx, u.ID, groups); err != nil {
		t.Fatal(err)
	}
}

func sameTime(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

func sameSession(a, b models.Session) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Provider == b.Provider && a.RevokeReason == b.RevokeReason &&
		(a.CurrentAgencyID == nil) == (b.CurrentAgencyID == nil) && (a.CurrentAgencyID == nil || *a.CurrentAgencyID == *b.CurrentAgencyID) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastSeenAt.Equal(b.LastSeenAt) && a.AuthTime.Equal(b.AuthTime) && sameTime(a.RevokedAt, b.RevokedAt)
}

func sameUser(a, b models.User) bool {
	return a.ID == b.ID && a.Provider == b.Provider && a.Subject == b.Subject && a.Email == b.Email && a.Name == b.Name && a.IsOperator == b.IsOperator &&
		sameTime(a.DisabledAt, b.DisabledAt) && sameTime(a.LastSignInAt, b.LastSignInAt) && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}
