package models_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// TestAuditAscendingMatchesGORM reads the same filtered batches with
// Ascending's direct scan and through GORM, and expects the same events.
func TestAuditAscendingMatchesGORM(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		ag := newAgency(t, db, "scan-county")
		other := newAgency(t, db, "other-county")
		base := time.Date(2026, 2, 3, 4, 5, 6, 789000, time.UTC)
		for i := range 25 {
			for _, a := range []int64{ag.ID, other.ID} {
				e := models.AuditEvent{AgencyID: a, Seq: int64(i + 1), OccurredAt: base.Add(time.Duration(i) * time.Minute), ActorType: "user",
					ActorID: fmt.Sprint(i), ActorName: "Zoë, \"quoted\"", Action: []string{"a.one", "a.two"}[i%2], TargetType: "t", TargetID: "id",
					TargetName: "name", Outcome: "success", Reason: "", SourceIP: "192.0.2.1", UserAgent: "ua", RequestID: "r",
					Details: `{"k":"v"}`, PrevHash: fmt.Sprintf("%064d", i), Hash: fmt.Sprintf("%064d", i+1)}
				if err := db.Gorm.Create(&e).Error; err != nil {
					t.Fatal(err)
				}
			}
		}
		store := models.NewAuditStore(db)
		for _, f := range []models.AuditFilter{
			{AgencyID: ag.ID},
			{AgencyID: ag.ID, Action: "a.two"},
			{AgencyID: other.ID, AfterID: 10},
		} {
			var got, want []models.AuditEvent
			for cur := f; ; {
				var b []models.AuditEvent
				q := db.Gorm.Where("agency_id = ? AND id > ?", cur.AgencyID, cur.AfterID)
				if cur.Action != "" {
					q = q.Where("action = ?", cur.Action)
				}
				if err := q.Order("id ASC").Limit(4).Find(&b).Error; err != nil {
					t.Fatal(err)
				}
				buf, err := store.Ascending(ctx, cur, 4)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, b...)
				got = append(got, buf...)
				if len(b) < 4 {
					break
				}
				cur.AfterID = b[len(b)-1].ID
			}
			if len(want) == 0 || len(got) != len(want) {
				t.Fatalf("%+v: %d events, want %d", f, len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if !g.OccurredAt.Equal(w.OccurredAt) {
					t.Fatalf("%+v event %d: time %v, want %v", f, i, g.OccurredAt, w.OccurredAt)
				}
				g.OccurredAt, w.OccurredAt = time.Time{}, time.Time{}
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("%+v event %d:\n%+v\nwant\n%+v", f, i, g, w)
				}
			}
		}
	})
}
