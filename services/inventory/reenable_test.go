package inventory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/inventory"
)

// TestFinding03_ReenableRules: an agency admin re-enables the members they
// may deactivate (this agency's alone, not an operator); another agency's
// user answers like a missing one; a platform operator re-enables anyone;
// each re-enabling is audited (the operator's in the platform chain and
// every agency of the user) and lifts the pause of refused sign-ins.
func TestFinding03_ReenableRules(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		st := newStack(t, db)
		ada, _ := st.member(t, "ada", "Ada Admin", map[int64]string{st.demo.ID: models.RoleAdmin})
		bob, _ := st.member(t, "bob", "Bob Back", map[int64]string{st.demo.ID: models.RoleViewer})
		mo, _ := st.member(t, "mo", "Mo Multi", map[int64]string{st.demo.ID: models.RoleViewer, st.other.ID: models.RoleViewer})
		olga, _ := st.member(t, "olga", "Olga Other", map[int64]string{st.other.ID: models.RoleViewer})
		ops, _ := st.member(t, "ops", "Otto Operator", map[int64]string{st.demo.ID: models.RoleViewer})
		ops.IsOperator = true
		if err := st.users.Save(ctx, &ops); err != nil {
			t.Fatal(err)
		}
		disable := func(u models.User) {
			t.Helper()
			now := time.Now().UTC()
			u.DisabledAt = &now
			if err := st.users.Save(ctx, &u); err != nil {
				t.Fatal(err)
			}
		}
		byAdmin := func(u models.User) error {
			_, err := st.inv.Reenable(ctx, inventory.ReenableChange{AgencyID: st.demo.ID, Actor: actorOf(ada), ActorID: ada.ID, UserID: u.ID, Reason: "back"})
			return err
		}
		for _, u := range []models.User{bob, mo, olga, ops} {
			disable(u)
		}
		if err := st.failures().Record(ctx, &models.SignInFailure{Provider: "okta", Subject: "bob", Reason: "user_disabled", FailedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			u    models.User
			want error
		}{{mo, inventory.ErrOtherAgencies}, {ops, inventory.ErrOperator}, {olga, models.ErrNotFound}, {ada, inventory.ErrSelf}} {
			if err := byAdmin(tc.u); !errors.Is(err, tc.want) {
				t.Errorf("admin re-enables %s: %v, want %v", tc.u.Name, err, tc.want)
			}
			if u, _ := st.users.ByID(ctx, tc.u.ID); tc.u.ID != ada.ID && !u.Disabled() {
				t.Fatalf("%s re-enabled by a refused request", tc.u.Name)
			}
		}
		if err := byAdmin(bob); err != nil {
			t.Fatal(err)
		}
		if u, _ := st.users.ByID(ctx, bob.ID); u.Disabled() {
			t.Fatal("bob still disabled")
		}
		if n, _ := st.failures().Since(ctx, "okta", "bob", time.Now().Add(-time.Hour), 10); len(n) != 0 {
			t.Fatalf("refused sign-ins kept after re-enabling: %d", len(n))
		}
		if err := byAdmin(bob); !errors.Is(err, inventory.ErrNotDisabled) {
			t.Fatalf("re-enabling an active user: %v", err)
		}
		evs, err := st.audits.Page(ctx, models.AuditFilter{AgencyID: st.demo.ID, Action: audit.ActionUserEnable}, 10)
		if err != nil || len(evs) != 1 || evs[0].TargetID != itoa(bob.ID) || evs[0].ActorID != itoa(ada.ID) || evs[0].Reason != "back" {
			t.Fatalf("re-enable audit: %+v %v", evs, err)
		}

		// The operator re-enables Mo, who holds roles in both agencies.
		op := audit.Actor{Type: audit.ActorUser, ID: itoa(ops.ID), Name: "Otto Operator"}
		if _, err := st.inv.Reenable(ctx, inventory.ReenableChange{AgencyID: models.PlatformAgencyID, Actor: op, UserID: mo.ID, Reason: "checked"}); err != nil {
			t.Fatal(err)
		}
		for _, chain := range []int64{models.PlatformAgencyID, st.demo.ID, st.other.ID} {
			evs, err := st.audits.Page(ctx, models.AuditFilter{AgencyID: chain, Action: audit.ActionUserEnable}, 10)
			if err != nil || len(evs) == 0 || evs[0].TargetID != itoa(mo.ID) || evs[0].Reason != "checked" {
				t.Errorf("operator re-enable in chain %d: %+v %v", chain, evs, err)
			}
			if rep, err := audit.NewVerifier(st.audits).Verify(ctx, chain); err != nil || !rep.Intact {
				t.Errorf("chain %d: %+v %v", chain, rep, err)
			}
		}
		list, err := st.inv.Disabled(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("still disabled: %+v %v", list, err)
		}
	})
}

func (st *stack) failures() *models.SignInFailureStore { return models.NewSignInFailureStore(st.db) }
