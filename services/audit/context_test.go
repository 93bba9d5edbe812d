package audit_test

import (
	"context"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
)

func TestContextDetailsReachRecords(t *testing.T) {
	db := modelstest.Open(t, models.SQLite)
	store := models.NewAuditStore(db)
	rec := audit.NewRecorder(db, store, nil)
	ctx := audit.WithDetails(context.Background(), map[string]string{"operation": "op-1", "note": "outer"})
	err := rec.Record(ctx, audit.Event{AgencyID: 1, Actor: audit.Actor{Type: audit.ActorSystem}, Action: "x.y", Outcome: audit.OutcomeSuccess,
		Details: map[string]string{"note": "own"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := store.Page(context.Background(), models.AuditFilter{AgencyID: 1}, 1)
	if err != nil || len(ev) != 1 {
		t.Fatal(err)
	}
	if ev[0].Details != `{"note":"own","operation":"op-1"}` {
		t.Fatalf("details = %s", ev[0].Details)
	}
}
