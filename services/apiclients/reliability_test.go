package apiclients_test

import (
	"context"
	"strconv"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/guard"
	"keyconsole/services/oauth"
)

// refusedCount sums the counts of the token_refused records of a client_id.
func refusedCount(t *testing.T, db *models.DB, clientID string) int {
	t.Helper()
	var evs []models.AuditEvent
	if err := db.Gorm.Where("action = ? AND target_id = ?", audit.ActionAPICredentialTokenRefused, clientID).Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		for _, kv := range audit.DecodeDetails(ev.Details) {
			if kv[0] == "count" {
				c, err := strconv.Atoi(kv[1])
				if err != nil {
					t.Fatalf("count %q: %v", kv[1], err)
				}
				n += c
			}
		}
	}
	return n
}

// TestFault01_RefusalsSurviveAFailedFlush aggregates refused token
// requests while the PostgreSQL database refuses writes: the first refusal
// of a key is written at once, a flush that fails keeps its summaries, and
// the next flush once the database takes writes again writes them, so
// every refusal is counted exactly once.
func TestFault01_RefusalsSurviveAFailedFlush(t *testing.T) {
	db := modelstest.Open(t, models.Postgres)
	e := newEnv(t, db)
	ctx := context.Background()
	c, _ := e.create(t, e.demo.ID, "sync", "staging")
	agg, err := guard.NewFailureAggregator(guard.FailureAggregatorConfig{Flush: e.svc.RecordRefusals})
	if err != nil {
		t.Fatal(err)
	}
	known := guard.FailureKey{Agency: "demo-county", ClientID: c.ClientID, Addr: "192.0.2.7", Reason: oauth.ReasonInvalidSecret}
	unknown := guard.FailureKey{ClientID: "ecd_stg_aaaaaaaaaaaaaaaaaaaa", Addr: "192.0.2.8", Reason: oauth.ReasonUnknownClient}
	now := e.clock.Now()

	agg.Record(known, now)
	if n := refusedCount(t, db, c.ClientID); n != 1 {
		t.Errorf("the first refusal of a key is not written at once: %d recorded", n)
	}
	restore := modelstest.RefuseWrites(t, db)
	for range 4 {
		agg.Record(known, now)
	}
	agg.Record(unknown, now) // its first record cannot be written now
	agg.Record(unknown, now)
	agg.Flush(ctx)
	restore()
	agg.Flush(ctx)
	if n := refusedCount(t, db, c.ClientID); n != 5 {
		t.Errorf("refusals of the known client recorded: %d, want 5", n)
	}
	if n := refusedCount(t, db, unknown.ClientID); n != 2 {
		t.Errorf("refusals of the unknown client recorded: %d, want 2", n)
	}
	agg.Flush(ctx)
	if n := refusedCount(t, db, c.ClientID) + refusedCount(t, db, unknown.ClientID); n != 7 {
		t.Errorf("a further flush changed the counts: %d, want 7", n)
	}
}
