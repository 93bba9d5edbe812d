package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/agencies"
	"keyconsole/services/audit"
)

// refuseAuditInserts installs a trigger on the test database that makes
// every insert into audit_events fail, and returns a function removing it.
func refuseAuditInserts(t *testing.T, db *models.DB) func() {
	t.Helper()
	var stmts, undo []string
	if db.Dialect == models.SQLite {
		stmts = []string{`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit store refused the record'); END`}
		undo = []string{`DROP TRIGGER refuse_audit`}
	} else {
		stmts = []string{
			`CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit store refused the record'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()`,
		}
		undo = []string{`DROP TRIGGER refuse_audit ON audit_events`, `DROP FUNCTION refuse_audit()`}
	}
	for _, s := range stmts {
		if err := db.Gorm.Exec(s).Error; err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return func() {
		for _, s := range undo {
			if err := db.Gorm.Exec(s).Error; err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
}

func TestNoChangeWithoutItsAuditRecord(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		now := func() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }
		store := models.NewAuditStore(db)
		agencyStore := models.NewAgencyStore(db)
		svc := agencies.NewService(db, agencyStore, audit.NewRecorder(db, store, now), now)
		actor := audit.Actor{Type: audit.ActorSystem, ID: "test"}

		restore := refuseAuditInserts(t, db)
		_, err := svc.Create(ctx, actor, audit.Origin{}, "lost-county", "Lost County")
		if err == nil {
			t.Fatal("the agency was created although its audit record could not be written")
		}
		if _, err := agencyStore.BySlug(ctx, "lost-county"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("the agency row was written without its audit record: %v", err)
		}
		if heads, err := store.Heads(ctx); err != nil || len(heads) != 0 {
			t.Fatalf("a chain head was written without a record: %+v %v", heads, err)
		}

		restore()
		a, err := svc.Create(ctx, actor, audit.Origin{}, "lost-county", "Lost County")
		if err != nil {
			t.Fatalf("create once the audit store accepts records again: %v", err)
		}
		evs, err := store.Page(ctx, models.AuditFilter{AgencyID: a.ID, Action: audit.ActionAgencyCreate}, 5)
		if err != nil || len(evs) != 1 || evs[0].TargetName != a.Slug {
			t.Fatalf("audit records of the create: %+v %v", evs, err)
		}
		rep, err := audit.NewVerifier(store).Verify(ctx, a.ID)
		if err != nil || !rep.Intact || rep.Records != 1 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
	})
}
